"""Verify, then load: the policy's gate runs first, and what loads is what was verified.

Every loader calls ``open_verified``: it authenticates the signature against the policy, reads
or copies the signed files while checking them, checks the log proof and (if required)
provenance, and scans what it read. Only then is anything deserialised:

* ``load_safetensors``: a dict of tensors;
* ``load_pretrained``: a ``transformers`` model; ``trust_remote_code`` only when every code
  file is signed, scanned and listed in the policy;
* ``load_torch``: a PyTorch zip checkpoint through the allowlist unpickler, only if the policy
  allows pickles;
* ``load_gguf``: a ``gguf.GGUFReader`` (metadata fields and tensors).

The trust rule, "the verified bytes are the loaded bytes", holds on three paths:

* **Verified store** (the default, every loader): each signed file is copied once into a
  private, content-addressed directory only Glassbox writes, hashed from the bytes written
  there, made read-only, and its identity recorded; loaders then map the *store's* file by path,
  lazily, as a plain load maps the user's. A warm load checks identities and reads no byte. A
  rewrite of the user's directory after the gate cannot reach the load; a store file changed
  behind Glassbox's back is copied again, a symbolic link in the store refused
  (``glassbox.trust.store``, whose docstring states the threat model).
* **In memory** (``store=False`` or ``GLASSBOX_VERIFIED_STORE=off``; safetensors weights, for
  ``load_safetensors`` and ``load_pretrained``): each file is opened once and read into
  anonymous private memory from that descriptor, hashed while it is read (cold) or vouched for
  by the digest cache on the *open* descriptor's identity, checked again once the last byte is
  in (warm). The tensors are views into that memory (``glassbox.trust.memory``). No disk space,
  but every load reads every byte and holds the weights in process memory.
* **Private copy** (without a store, for everything else: pickles, GGUF, remote code): each
  file is copied from one descriptor into a private directory removed after the load
  (``glassbox.trust.copy``).

What none can rule out: a writer with the user's own rights can change the digest cache
database and the store alike, and so make a warm load accept changed bytes (``use_cache=False``
copies and hashes everything).

A refusal raises a ``TrustRefused`` subclass naming each failed link.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.errors import InputError
from glassbox.trust.copy import VerifiedCopy, make_verified_copy
from glassbox.trust.errors import Reason, RemoteCodeRefused, refusal
from glassbox.trust.gate import (
    GateResult,
    authenticate,
    check_log_and_provenance,
    check_scan,
    model_identity,
    model_name,
    sha256_of,
)
from glassbox.trust.policy import TrustPolicy, load_policy
from glassbox.trust.store import store_root

if TYPE_CHECKING:
    from gguf import GGUFReader

PolicyArg = TrustPolicy | str | os.PathLike[str]
#: A verified store's root, ``None`` for the default one, ``False`` for none.
StoreArg = str | os.PathLike[str] | bool | None


class _Clock:
    """Seconds per gate link, for the bench's split (``GateResult.timings``)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, link: str) -> None:
        now = time.perf_counter()
        self.times[link] = self.times.get(link, 0.0) + now - self._last
        self._last = now


@dataclass
class VerifiedModel:
    """A model that passed the gate: its private copy (``path``) and the gate's findings."""

    path: Path
    copy: VerifiedCopy
    result: GateResult

    def tensors(self, name: str = ".") -> dict[str, Any]:
        """The tensors of a safetensors file the gate read into memory (views into it)."""
        buffer = self.copy.buffers.get(name)
        if buffer is None:
            raise InputError(f"{self.result.model}: {name} was not read into memory")
        where = self.result.model if name == "." else f"{self.result.model}/{name}"
        return buffer.tensors(where)


def _policy(policy: PolicyArg) -> TrustPolicy:
    return policy if isinstance(policy, TrustPolicy) else load_policy(policy)


@contextmanager
def open_verified(
    model: str | os.PathLike[str],
    policy: PolicyArg,
    *,
    name: str | None = None,
    signature: str | os.PathLike[str] | None = None,
    proofs: list[Path] | None = None,
    provenance: list[Path] | None = None,
    use_cache: bool = True,
    workdir: str | os.PathLike[str] | None = None,
    store: StoreArg = None,
    skip_unused_pickles: bool = False,
    in_memory: Callable[[str], bool] | None = None,
) -> Iterator[VerifiedModel]:
    """Run the gate on ``model`` and yield what may be loaded: the verified store's tree for
    this release (the default; ``glassbox.trust.store``), or, with ``store=False`` (or
    ``GLASSBOX_VERIFIED_STORE=off``), a private copy removed on exit.

    ``store``: the store's root (default ``$GLASSBOX_VERIFIED_STORE``, else
    ``verified-store`` in Glassbox's cache directory); ``False`` for no store.

    ``in_memory`` (without a store only): files (by manifest name) read into private memory
    instead of copied, each from one descriptor, hashed as read (``VerifiedModel.tensors``
    makes them tensors).

    ``skip_unused_pickles``: when the policy refuses pickles and the model also ships
    safetensors weights (many repositories carry both), leave the pickle files out of the copy
    instead of refusing the model; they are still verified and scanned, never loaded.

    Raises a ``TrustRefused`` subclass (exit code 1) when any link fails, ``InputError`` for
    unreadable input.
    """
    from glassbox.sign import default_signature_path

    clock = _Clock()
    trust = _policy(policy)
    location = model_identity(model)
    result = GateResult(str(model), model_name(location, name))
    result.timings = clock.times
    sig_path = Path(signature) if signature is not None else default_signature_path(location.path)
    clock.lap("policy")
    auth, reason = authenticate(sig_path, trust, result.model_name)
    clock.lap("signature")
    if auth is None:
        raise refusal(str(model), [reason] if reason else [])
    root = store_root(store)
    # With a store, each file is scanned as soon as it is verified there, in a second thread,
    # while the larger files are still being hashed.
    background = None if root is None else _BackgroundScan(trust, auth.expected, use_cache)
    result.publisher = auth.publisher.name
    result.key_id = auth.key_id
    result.signer = auth.signer
    result.root_digest = "sha256:" + auth.expected.root_digest.hex()
    try:
        copy = make_verified_copy(
            location.path,
            auth.expected,
            sig_path,
            link_root=location.repo_root,
            use_cache=use_cache,
            workdir=workdir,
            store=root,
            in_memory=in_memory,
            on_file=None if background is None else background.put,
        )
    except BaseException:
        if background is not None:
            background.finish(check=False)
        raise
    clock.lap("files")
    try:
        result.reasons.extend(copy.reasons)
        if not copy.reasons:
            result.manifest = auth.expected
        check_log_and_provenance(result, trust, auth, location, proofs, provenance)
        clock.lap("log")
        if not copy.reasons:
            from glassbox.trust.scancache import scan_files

            # The copy matched the signature, so its files' digests are the signed ones.
            signed = sha256_of(auth.expected)
            files = dict(copy.files)
            files.update((n, copy.in_memory_path(n)) for n in copy.buffers)
            if background is not None:
                report = background.finish()
                report.root = str(copy.directory)
            else:
                report = scan_files(
                    copy.directory,
                    files,
                    signed,
                    use_cache=use_cache,
                    buffers={n: b.view() for n, b in copy.buffers.items()},
                    allow=trust.scan_allow,
                )
            summary, reasons = check_scan(trust, report, signed)
            if skip_unused_pickles and any(
                n.endswith(".safetensors") for n in (*copy.files, *copy.buffers)
            ):
                reasons = _leave_out_pickles(copy, summary, reasons, result.notes)
            result.scan = summary
            result.reasons.extend(reasons)
        clock.lap("scan")
        result.raise_if_refused()
        yield VerifiedModel(copy.root, copy, result)
    finally:
        if background is not None:
            background.finish(check=False)
        copy.remove()


_WORKERS: dict[int, Any] = {}


def _scan_worker() -> Any:
    """This process's one scanning thread: long-lived, so its pooled scan-cache connection
    (``glassbox.sqlitepool``) serves every load; one per process, as threads do not survive a
    ``fork``."""
    from concurrent.futures import ThreadPoolExecutor

    pid = os.getpid()
    worker = _WORKERS.get(pid)
    if worker is None:
        worker = _WORKERS[pid] = ThreadPoolExecutor(1, thread_name_prefix="glassbox-scan")
    return worker


class _BackgroundScan:
    """``scan_files`` over the files the store verified, as they come: ``put`` hands it one,
    ``finish`` returns the report (or re-raises its error).

    The scan moves to the process's scanning thread at the first file that had to be read (a
    cold load: the scan then overlaps the hashing of the larger files); while every file was
    vouched for by the digest cache (a warm load), their results come from the scan cache and
    ``finish`` scans here, sparing the thread hand-off.
    """

    def __init__(self, trust: TrustPolicy, expected: Any, use_cache: bool) -> None:
        import queue

        from glassbox.scan import ScanReport

        self._queue: queue.SimpleQueue[tuple[str, Path] | None] = queue.SimpleQueue()
        self._deferred: list[tuple[str, Path]] = []
        self._report: ScanReport | None = None
        self._error: BaseException | None = None
        self._done = False
        self._future: Any = None
        self._signed = sha256_of(expected)
        self._use_cache = use_cache
        self._allow = trust.scan_allow

    def _scan(self, files: Any) -> None:
        from glassbox.trust.scancache import scan_files

        try:
            self._report = scan_files(
                Path(), files, self._signed, use_cache=self._use_cache, allow=self._allow
            )
        except BaseException as exc:  # re-raised by finish, in the loading thread
            self._error = exc
            if self._future is not None:
                while self._queue.get() is not None:
                    pass

    def put(self, name: str, path: Path, cached: bool) -> None:
        if self._future is None and not cached:
            for item in self._deferred:
                self._queue.put(item)
            self._deferred.clear()
            self._future = _scan_worker().submit(self._scan, iter(self._queue.get, None))
        if self._future is None:
            self._deferred.append((name, path))
        else:
            self._queue.put((name, path))

    def finish(self, *, check: bool = True) -> Any:
        """The report; ``check=False`` only stops the scan (cleanup after another error)."""
        if not self._done:
            self._done = True
            if self._future is not None:
                self._queue.put(None)
                self._future.result()
            elif check:
                self._scan(self._deferred)
        if check and self._error is not None:
            raise self._error
        return self._report


def _leave_out_pickles(
    copy: VerifiedCopy, summary: dict[str, Any], reasons: list[Reason], notes: list[str]
) -> list[Reason]:
    """Drop the "pickles not allowed" reason by removing those files from the private copy."""
    pickles = [n for n in summary.get("pickle_files", []) if n in copy.files]
    if not pickles or any(
        r.link == "pickle" and not r.message.startswith("pickle-based") for r in reasons
    ):
        return reasons
    for name in pickles:
        path = copy.files.pop(name)
        if not copy.persistent:
            path.unlink()
    copy.left_out.extend(pickles)
    notes.append(
        f"left out of the load (pickles not allowed; safetensors used): {', '.join(pickles)}"
    )
    return [r for r in reasons if r.link != "pickle"]


def load_safetensors(
    path: str | os.PathLike[str], policy: PolicyArg, **options: Any
) -> dict[str, Any]:
    """The tensors of a verified ``.safetensors`` file (torch tensors).

    With the verified store (the default), ``safetensors.torch.load_file`` maps the store's
    copy lazily. Without one (``store=False``), the file is read once into private memory,
    hashed (or vouched for) as read, and parsed there: the tensors are views into that memory,
    never into the file.
    """
    with open_verified(path, policy, in_memory=lambda name: name == ".", **options) as verified:
        if verified.copy.buffers:
            return verified.tensors()
        _expect_file(verified, path)
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(verified.path)
        except (SafetensorError, ValueError, OSError) as exc:
            raise InputError(f"{path}: not a readable safetensors file: {exc}") from None


def load_torch(path: str | os.PathLike[str], policy: PolicyArg, **options: Any) -> Any:
    """A verified PyTorch zip checkpoint, unpickled with the scanner's allowlist only."""
    from glassbox.trust.errors import PickleRefused
    from glassbox.trust.unpickler import load_torch_file

    trust = _policy(policy)
    if not trust.allow_pickle:
        raise PickleRefused(
            str(path),
            [
                Reason(
                    "pickle",
                    "the policy does not allow pickle-based files ([pickle] allow = false)",
                )
            ],
        )
    with open_verified(path, trust, **options) as verified:
        _expect_file(verified, path)
        return load_torch_file(verified.path, str(path), allow=_allowed(trust))


def load_gguf(path: str | os.PathLike[str], policy: PolicyArg, **options: Any) -> GGUFReader:
    """A ``gguf.GGUFReader`` over the verified copy (fields: metadata; tensors: arrays)."""
    from gguf import GGUFReader

    with open_verified(path, policy, **options) as verified:
        _expect_file(verified, path)
        try:
            return GGUFReader(verified.path)
        except (ValueError, KeyError, IndexError) as exc:
            raise InputError(f"{path}: not a readable GGUF file: {exc}") from None


# from_pretrained options the in-memory path passes through unchanged; any other option (which
# might change how files are found or the config is read) takes the copy-on-disk path.
DIRECT_KWARGS = frozenset({"dtype", "torch_dtype", "attn_implementation"})
_SHARD = re.compile(r"model-\d+-of-\d+\.safetensors")
SAFETENSORS_INDEX = "model.safetensors.index.json"


def is_weights_file(name: str) -> bool:
    """The safetensors weights ``from_pretrained`` reads (top level, unsharded or sharded)."""
    return name == "model.safetensors" or _SHARD.fullmatch(name) is not None


def load_pretrained(
    model: str | os.PathLike[str],
    policy: PolicyArg,
    *,
    model_class: Any = None,
    trust_remote_code: bool = False,
    name: str | None = None,
    signature: str | os.PathLike[str] | None = None,
    proofs: list[Path] | None = None,
    provenance: list[Path] | None = None,
    use_cache: bool = True,
    workdir: str | os.PathLike[str] | None = None,
    store: StoreArg = None,
    **kwargs: Any,
) -> Any:
    """A ``transformers`` model from a verified directory or cache snapshot (or ``hf:`` name).

    ``model_class`` defaults to ``AutoModel``; ``kwargs`` go to ``from_pretrained``.

    By default ``from_pretrained`` reads the verified store's tree for this release
    (``glassbox.trust.store``), mapping its weights lazily as a plain load does; a warm load
    reads no byte of them. With ``store=False`` (or ``GLASSBOX_VERIFIED_STORE=off``),
    safetensors weights (``model.safetensors``, or shards ``model-NNNNN-of-NNNNN.safetensors``)
    are read into private memory, hashed as they are read, and handed to ``from_pretrained``
    as a state dict of tensors that own that memory; the small files are copied privately.
    Remote code and options other than ``dtype``/``torch_dtype``/``attn_implementation`` then
    take a private copy on disk instead.
    """
    trust = _policy(policy)
    root = store_root(store)
    direct = root is None and not trust_remote_code and set(kwargs) <= DIRECT_KWARGS
    with open_verified(
        model,
        trust,
        name=name,
        signature=signature,
        proofs=proofs,
        provenance=provenance,
        use_cache=use_cache,
        workdir=workdir,
        store=root if root is not None else False,
        skip_unused_pickles=True,
        in_memory=is_weights_file if direct else None,
    ) as verified:
        if trust_remote_code:
            _check_remote_code(verified, str(model))
        if model_class is None:
            from transformers import AutoModel

            model_class = AutoModel
        if verified.copy.buffers:
            state_dict = _in_memory_state_dict(verified)
            return _from_state_dict(verified, model_class, state_dict, kwargs)
        scan = verified.result.scan or {}
        pickles = [n for n in scan.get("pickle_files", []) if n in verified.copy.files]
        if pickles:
            # Weights only as pickles (the policy allows them): unpickled here, with the
            # scanner's allowlist, never by transformers' own torch.load.
            if trust_remote_code:
                raise InputError(
                    f"{verified.result.model}: remote code with pickle weights is not loaded; "
                    "publish safetensors weights"
                )
            state_dict = _pickled_state_dict(verified, pickles, _allowed(trust))
            return _from_state_dict(verified, model_class, state_dict, kwargs)
        if verified.copy.left_out:
            # The store's tree still holds the pickles the gate left out: never let
            # from_pretrained fall back to them.
            kwargs = {**kwargs, "use_safetensors": True}
        return model_class.from_pretrained(
            str(verified.path),
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )


def _in_memory_state_dict(verified: VerifiedModel) -> dict[str, Any]:
    """The weights as ``from_pretrained`` would pick them: ``model.safetensors``, else the
    shards the (verified) index names, every one of which must have been read."""
    buffers = verified.copy.buffers
    if "model.safetensors" in buffers:
        return verified.tensors("model.safetensors")
    index = verified.copy.files.get(SAFETENSORS_INDEX)
    where = f"{verified.result.model}/{SAFETENSORS_INDEX}"
    if index is None:
        raise InputError(f"{verified.result.model}: sharded weights without {SAFETENSORS_INDEX}")
    try:
        weight_map = json.loads(index.read_bytes())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: unreadable ({exc})") from None
    missing = [s for s in shards if not isinstance(s, str) or s not in buffers]
    if missing or not shards:
        raise InputError(f"{where}: names shards that were not verified: {missing[:5]}")
    state_dict: dict[str, Any] = {}
    for shard in shards:
        state_dict.update(verified.tensors(shard))
    return state_dict


def _allowed(trust: TrustPolicy) -> list[str]:
    """The policy's reviewed ``[[scan.allow]]`` callables, for the unpickler."""
    return [entry.callable for entry in trust.scan_allow]


def _pickled_state_dict(
    verified: VerifiedModel, pickles: list[str], allow: list[str]
) -> dict[str, Any]:
    """The state dict read from the verified copy by the allowlist unpickler."""
    from glassbox.trust.unpickler import load_torch_file

    weights = [n for n in pickles if not n.endswith(".json")]
    state_dict: dict[str, Any] = {}
    for name in sorted(weights):
        loaded = load_torch_file(
            verified.copy.files[name], f"{verified.result.model}/{name}", allow=allow
        )
        if not isinstance(loaded, dict):
            raise InputError(f"{verified.result.model}/{name}: not a state dict")
        state_dict.update(loaded)
    return state_dict


def _from_state_dict(
    verified: VerifiedModel, model_class: Any, state_dict: dict[str, Any], kwargs: dict[str, Any]
) -> Any:
    """``from_pretrained(None, config=..., state_dict=...)``, the config (and a generation
    config, as a path load would read it) from the verified private copy."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(verified.path), local_files_only=True)
    mapping = getattr(model_class, "_model_mapping", None)
    if mapping is not None:
        try:
            cls = mapping[type(config)]
        except KeyError:
            raise InputError(
                f"{verified.result.model}: {model_class.__name__} has no model for "
                f"{type(config).__name__}"
            ) from None
    else:
        cls = model_class
    loaded = cls.from_pretrained(None, config=config, state_dict=state_dict, **kwargs)
    if (
        "generation_config.json" in verified.copy.files
        and getattr(loaded, "can_generate", lambda: False)()
    ):
        from transformers import GenerationConfig

        loaded.generation_config = GenerationConfig.from_pretrained(
            str(verified.path), local_files_only=True
        )
    return loaded


def _expect_file(verified: VerifiedModel, path: str | os.PathLike[str]) -> None:
    if "." not in verified.copy.files:
        raise InputError(f"{path}: is a model directory; this loader reads one file")


def _check_remote_code(verified: VerifiedModel, model: str) -> None:
    """``trust_remote_code`` runs Python from the model: every module its config names must be
    among the signed files (the private copy holds nothing else) and the gate's scan must have
    covered it; code the signer left out of the signature is refused."""
    manifest = verified.result.manifest
    reasons: list[Reason] = []
    if manifest is None:  # pragma: no cover - the gate refused already
        reasons.append(Reason("remote-code", "the files were not verified"))
    else:
        excluded = [p for p in manifest.ignore_paths if p.endswith(".py") or "*" in p]
        if excluded:
            reasons.append(
                Reason(
                    "remote-code",
                    f"the signature leaves out {', '.join(excluded[:5])}: code outside the "
                    "signature cannot be trusted",
                )
            )
    modules = _auto_map_modules(verified.path / "config.json", model)
    for module in modules:
        if module not in verified.copy.files:
            reasons.append(
                Reason(
                    "remote-code",
                    f"config.json names code {module} that is not covered by the signature",
                )
            )
    if not modules:
        reasons.append(
            Reason("remote-code", "trust_remote_code asked, but config.json names no code")
        )
    if reasons:
        raise RemoteCodeRefused(model, reasons)


def _auto_map_modules(config: Path, model: str) -> list[str]:
    """The ``.py`` files a config's ``auto_map`` points at (``module.Class`` -> ``module.py``);
    references into other repositories (``org/repo--module.Class``) are not allowed."""
    try:
        doc = json.loads(config.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"{model}: config.json is unreadable: {exc}") from None
    auto_map = doc.get("auto_map") if isinstance(doc, dict) else None
    if not isinstance(auto_map, dict):
        return []
    modules: set[str] = set()
    for value in auto_map.values():
        for ref in value if isinstance(value, list) else [value]:
            if not isinstance(ref, str):
                continue
            if "--" in ref:
                raise RemoteCodeRefused(
                    model,
                    [Reason("remote-code", f"auto_map points into another repository: {ref}")],
                )
            module = ref.rsplit(".", 1)[0]
            modules.add(module.replace(".", "/") + ".py")
    return sorted(modules)

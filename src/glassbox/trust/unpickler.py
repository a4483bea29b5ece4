"""Load PyTorch checkpoints through an unpickler that calls only what the scanner allows.

``pickle`` runs whatever callables a file names; ``torch.load`` trusts its own list. This
unpickler resolves a global only when ``glassbox.scan.callables.classify`` says it is on the
scanner's reviewed allowlist (tensor and storage rebuilders, dtypes, plain containers), so what
the loader accepts and what the scanner passes are one list, reviewed once. Anything else stops
the load with ``PickleRefused`` naming the global, before it is imported.

Only the zip checkpoint format (``torch.save`` since 1.6: ``data.pkl`` plus one entry per
storage) is read; storages come from the zip's own entries, never from the pickle's choice of
file. The legacy tar/raw formats are refused.

The policy's reviewed ``[[scan.allow]]`` entries (``allow``) extend the list exactly as they
extend the scanner's: a global they name resolves unless the scanner knows it is dangerous.
Because an entry may name a whole module (``mylab.*``), and a module can re-export anything
under a harmless name, what such an entry resolved is judged again by its own ``__module__``
and ``__qualname__``: ``mylab.run = os.system`` is still ``posix.system`` and still refused.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError, InputError
from glassbox.scan.callables import Verdict, classify
from glassbox.scan.context import Limits
from glassbox.trust.errors import PickleRefused, Reason

MAX_PICKLE_BYTES = 1 << 30


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` is the scanner's allowlist."""

    def __init__(self, file: io.BufferedIOBase, *, where: str, allow: Sequence[str] = ()) -> None:
        super().__init__(file)
        self.where = where
        self.allow = Limits(allow=frozenset(allow))

    def find_class(self, module: str, name: str) -> Any:
        verdict = classify(module, name)
        if verdict.verdict is Verdict.ALLOWED:
            return super().find_class(module, name)
        if verdict.verdict is Verdict.DANGEROUS or not self.allow.allows(module, name):
            raise self._refuse(f"{module}.{name}", verdict.reason)
        try:
            found = super().find_class(module, name)
        except (ImportError, AttributeError) as exc:
            why = f"allowed, but cannot be imported: {exc}"
            raise self._refuse(f"{module}.{name}", why) from None
        real_module = getattr(found, "__module__", None)
        real_name = getattr(found, "__qualname__", None)
        if not isinstance(real_module, str) or not isinstance(real_name, str):
            raise self._refuse(
                f"{module}.{name}", "allowed, but resolves to an object, not a class or function"
            )
        again = classify(real_module, real_name)
        if again.verdict is Verdict.DANGEROUS:
            raise self._refuse(
                f"{module}.{name}", f"allowed, but it is {real_module}.{real_name}: {again.reason}"
            )
        return found

    def _refuse(self, qualname: str, why: str) -> PickleRefused:
        return PickleRefused(
            self.where, [Reason("pickle", f"{self.where} calls {qualname}: {why}")]
        )


class _TorchUnpickler(RestrictedUnpickler):
    def __init__(
        self,
        file: io.BufferedIOBase,
        *,
        where: str,
        archive: zipfile.ZipFile,
        allow: Sequence[str] = (),
    ) -> None:
        super().__init__(file, where=where, allow=allow)
        self.archive = archive
        self.prefix = _prefix(archive, where)
        self.storages: dict[str, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        import torch

        if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) != 5:
            raise InputError(f"{self.where}: unexpected persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, _numel = pid
        if not isinstance(key, str) or "/" in key or key in ("", ".", ".."):
            raise InputError(f"{self.where}: bad storage key {key!r}")
        with warnings.catch_warnings():  # legacy storage classes warn when asked their dtype
            warnings.simplefilter("ignore", UserWarning)
            dtype: Any = (
                torch.uint8
                if storage_type is torch.UntypedStorage
                else getattr(storage_type, "dtype", None)
            )
        if not isinstance(dtype, torch.dtype):
            raise InputError(f"{self.where}: storage type {storage_type!r} has no dtype")
        if key not in self.storages:
            try:
                raw = self.archive.read(f"{self.prefix}data/{key}")
            except KeyError:
                raise InputError(f"{self.where}: storage {key} is missing from the zip") from None
            untyped = torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage()
            self.storages[key] = untyped
        typed = torch.storage.TypedStorage  # untyped in torch's stubs
        return typed(wrap_storage=self.storages[key], dtype=dtype, _internal=True)  # type: ignore[no-untyped-call]


def _prefix(archive: zipfile.ZipFile, where: str) -> str:
    names = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if len(names) != 1:
        raise InputError(f"{where}: not a PyTorch zip checkpoint (expected one data.pkl)")
    return names[0][: -len("data.pkl")]


def load_torch_file(path: Path, where: str, *, allow: Sequence[str] = ()) -> Any:
    """Unpickle the zip checkpoint at ``path`` (verified bytes) with the allowlist, extended by
    ``allow`` (the policy's reviewed ``[[scan.allow]]`` callables)."""
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{where}: not a PyTorch zip checkpoint (the legacy torch format is not loaded; "
            "re-save it with torch.save, or convert it to safetensors)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _prefix(archive, where)
            info = archive.getinfo(f"{prefix}data.pkl")
            if info.file_size > MAX_PICKLE_BYTES:
                raise InputError(f"{where}: data.pkl is larger than {MAX_PICKLE_BYTES} bytes")
            data = archive.read(info)
            unpickler = _TorchUnpickler(io.BytesIO(data), where=where, archive=archive, allow=allow)
            return unpickler.load()
    except GlassboxError:
        raise
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{where}: malformed checkpoint: {_one_line(exc)}") from None
    except Exception as exc:  # a malformed stream can fail inside any allowed constructor
        raise InputError(
            f"{where}: malformed checkpoint: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def unpickle_restricted(data: bytes, where: str, *, allow: Sequence[str] = ()) -> Any:
    """One pickle stream through the allowlist; any malformation is one ``InputError``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), where=where, allow=allow).load()
    except GlassboxError:
        raise
    except Exception as exc:  # truncated, bad opcodes, wrong arguments to allowed callables
        raise InputError(
            f"{where}: malformed pickle: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]

"""Build recipes: the TOML file that declares everything a model comes from.

A recipe is the "source" of a model build. It is parsed strictly: an unknown key is an error,
not a silently ignored typo, because a key the build does not read is a declaration nobody
checks. Every error names the recipe line and says how to fix it, since the person reading it
is usually editing the file by hand.

Schema (buildType ``https://glassbox.dev/build/recipe/v1``)::

    name = "digits-mlp"
    version = "1.0.0"
    licence = "Apache-2.0"          # SPDX expression
    description = "..."             # optional

    [code]
    dir = "."                       # recipe directory, relative to this file
    entry = "train:train"           # module:function, called with a TrainingContext

    [model]
    factory = "model:build"         # module:function returning the torch.nn.Module
    config = { hidden = 32 }        # keyword arguments for the factory

    [[datasets]]
    name = "digits"
    path = "data/digits.jsonl"      # relative to the recipe directory
    format = "jsonl"                # optional; record format for the commitment
    commitment = "<hex root>"       # dataset commitment (RFC 9162 root of its records)
    records = 1797                  # optional
    licence = "BSD-3-Clause"

    [base_model]                    # optional
    path = "base/"
    digest = "sha256:<hex>"         # OMS manifest root digest
    key = "publisher.pub"           # optional: the base must carry an OMS signature by this key
    signature = "base/model.sig"    # optional: where that signature is (default: the base's own)

    [hyperparameters]               # free-form, passed to the training code
    lr = 0.1

    [run]
    seed = 0
    threads = 1
    checkpoint_interval = 10
    cpu_capability = "default"      # ATEN_CPU_CAPABILITY kernel path

    [outputs]
    keep = ["model.safetensors"]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import InputError
from glassbox.tomlkeys import TomlValidator, is_integer, parse_toml, read_toml
from glassbox.tomlkeys import line_for as _line_for

BUILD_TYPE = "https://glassbox.dev/build/recipe/v1"
MAX_RECIPE_BYTES = 1 << 20
CPU_CAPABILITIES = ("default", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "sve256", "zvector")

_ENTRY_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
_SPDX_ID_RE = re.compile(
    r"^(LicenseRef-|DocumentRef-[A-Za-z0-9.\-]+:LicenseRef-)?[A-Za-z0-9.\-]+\+?$"
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")

_TOP_KEYS = {
    "name",
    "version",
    "licence",
    "description",
    "code",
    "model",
    "datasets",
    "base_model",
    "hyperparameters",
    "run",
    "outputs",
}
_CODE_KEYS = {"dir", "entry"}
_MODEL_KEYS = {"factory", "config"}
_DATASET_KEYS = {"name", "path", "format", "commitment", "records", "licence"}
_BASE_KEYS = {"path", "digest", "key", "signature"}
_RUN_KEYS = {"seed", "threads", "checkpoint_interval", "cpu_capability"}
_OUTPUT_KEYS = {"keep"}


class RecipeError(InputError):
    """A recipe that cannot be used as written; the message names the line and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """One declared dataset; ``path`` is resolved against the recipe directory."""

    name: str
    path: Path
    relpath: str
    commitment: str
    licence: str
    format: str | None = None
    records: int | None = None
    line: int = 0


@dataclass(frozen=True)
class BaseModelSpec:
    path: Path
    relpath: str
    digest: str
    line: int = 0
    #: The public key whose OMS signature the base must carry (resolved, and as written).
    key: Path | None = None
    key_relpath: str | None = None
    #: Where that signature is; ``None``: the base's default (``BASE/model.sig``).
    signature: Path | None = None
    signature_relpath: str | None = None


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. ``source`` is the recipe file; ``code_dir`` the directory it declares."""

    source: Path
    code_dir: Path
    name: str
    version: str
    licence: str
    entry: str
    factory: str
    model_config: Mapping[str, Any]
    datasets: tuple[DatasetSpec, ...]
    hyperparameters: Mapping[str, Any]
    seed: int
    threads: int
    checkpoint_interval: int
    cpu_capability: str
    keep: tuple[str, ...]
    base_model: BaseModelSpec | None = None
    description: str = ""
    lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, *path: str | int) -> int:
        return _line_for(self.lines, path)

    def where(self, *path: str | int) -> str:
        """``recipe.toml:LINE`` for messages."""
        return f"{self.source}:{self.line_of(*path)}"

    @property
    def recipe_relpath(self) -> str:
        """The recipe file's path inside the code directory (how a rebuild finds it again)."""
        try:
            return self.source.resolve().relative_to(self.code_dir.resolve()).as_posix()
        except ValueError:
            return self.source.name

    def parameters(self) -> dict[str, Any]:
        """Everything the recipe declares that shapes the build: SLSA ``externalParameters``.

        A rebuild compares these key by key, so a changed hyper-parameter is named, not just
        detected as "the code manifest differs".
        """
        out: dict[str, Any] = {
            "recipe": self.recipe_relpath,
            "name": self.name,
            "version": self.version,
            "licence": self.licence,
            "entry": self.entry,
            "model": {"factory": self.factory, "config": dict(self.model_config)},
            "hyperparameters": dict(self.hyperparameters),
            "seed": self.seed,
            "threads": self.threads,
            "checkpoint_interval": self.checkpoint_interval,
            "cpu_capability": self.cpu_capability,
            "outputs": list(self.keep),
            "datasets": [
                {
                    "name": d.name,
                    "path": d.relpath,
                    "format": d.format,
                    "commitment": d.commitment,
                    "records": d.records,
                    "licence": d.licence,
                }
                for d in self.datasets
            ],
        }
        if self.base_model is not None:
            base: dict[str, Any] = {
                "path": self.base_model.relpath,
                "digest": self.base_model.digest,
            }
            if self.base_model.key_relpath is not None:
                base["key"] = self.base_model.key_relpath
            if self.base_model.signature_relpath is not None:
                base["signature"] = self.base_model.signature_relpath
            out["base_model"] = base
        return out


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file (structure only; digests are checked by the build)."""
    source = Path(path)
    if source.is_dir():
        source = source / "recipe.toml"
    data, lines = read_toml(source, MAX_RECIPE_BYTES, "recipe", RecipeError)
    return _Validator(source, data, lines).recipe()


def parse_recipe(text: str, source: Path) -> Recipe:
    """Validate recipe ``text``; ``source`` locates it (relative paths resolve against it)."""
    data, lines = parse_toml(text, source, "recipe", RecipeError)
    return _Validator(source, data, lines).recipe()


class _Validator(TomlValidator):
    error = RecipeError

    def unknown_message(
        self, key: str, close: str | None, allowed: set[str], path: Sequence[str | int]
    ) -> str:
        hint = f"did you mean '{close}'?" if close else f"allowed: {', '.join(sorted(allowed))}"
        where = ".".join(str(p) for p in path if not isinstance(p, int)) or "top level"
        return f"unknown key '{key}' in {where} ({hint})"

    def table(self, key: str, *, required: bool) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail([], f"missing [{key}] table: add it (see the recipe schema)")
            return {}
        if not isinstance(value, dict):
            raise self.fail([key], f"'{key}' must be a table: write it as [{key}]")
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        path: Sequence[str | int],
        *,
        default: str | None = None,
    ) -> str:
        value = table.get(key, default)
        if value is None:
            where = ".".join(str(p) for p in path) or "the top level"
            raise self.fail(path, f"missing '{key}' in {where}: add {key} = \"...\"")
        if not isinstance(value, str) or not value.strip():
            raise self.fail([*path, key], f"'{key}' must be a non-empty string")
        return value

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        path: Sequence[str | int],
        *,
        default: int | None = None,
        minimum: int = 0,
    ) -> int:
        value = table.get(key, default)
        if value is None:
            raise self.fail(path, f"missing '{key}' in [{'.'.join(map(str, path))}]: add {key} = N")
        if not is_integer(value) or value < minimum:
            raise self.fail([*path, key], f"'{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    def licence(self, value: str, path: Sequence[str | int]) -> str:
        if not _is_spdx_expression(value):
            raise self.fail(
                path,
                f"licence {value!r} is not an SPDX expression: use an identifier such as "
                "'Apache-2.0' or 'CC-BY-4.0', combined with AND/OR/WITH, or 'LicenseRef-...'",
            )
        return value

    def entry(self, value: str, path: Sequence[str | int]) -> str:
        if not _ENTRY_RE.match(value):
            raise self.fail(path, f"{value!r} is not 'module:function' (for example 'train:train')")
        return value

    def relative(self, base: Path, value: str, path: Sequence[str | int], what: str) -> Path:
        candidate = Path(value)
        resolved = candidate if candidate.is_absolute() else base / candidate
        if not resolved.exists():
            raise self.fail(
                path, f"{what} {value!r} not found (looked for {resolved}); fix the path"
            )
        return resolved

    def recipe(self) -> Recipe:
        data = self.data
        self.unknown(data, _TOP_KEYS, [])
        name = self.string(data, "name", [])
        if not _NAME_RE.match(name):
            raise self.fail(
                ["name"], f"name {name!r} may use letters, digits, '.', '_' and '-' only"
            )
        version = self.string(data, "version", [])
        licence = self.licence(self.string(data, "licence", []), ["licence"])
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail(["description"], "'description' must be a string")

        code = self.table("code", required=True)
        self.unknown(code, _CODE_KEYS, ["code"])
        recipe_dir = self.source.parent
        code_dir = self.relative(
            recipe_dir,
            self.string(code, "dir", ["code"], default="."),
            ["code", "dir"],
            "code directory",
        )
        if not code_dir.is_dir():
            raise self.fail(["code", "dir"], f"code directory {code_dir} is not a directory")
        entry = self.entry(self.string(code, "entry", ["code"]), ["code", "entry"])

        model = self.table("model", required=True)
        self.unknown(model, _MODEL_KEYS, ["model"])
        factory = self.entry(self.string(model, "factory", ["model"]), ["model", "factory"])
        config = model.get("config", {})
        if not isinstance(config, dict):
            raise self.fail(["model", "config"], "'config' must be a table of keyword arguments")

        datasets_raw = data.get("datasets", [])
        if not isinstance(datasets_raw, list):
            raise self.fail(["datasets"], "datasets must be an array of tables: write [[datasets]]")
        datasets: list[DatasetSpec] = []
        seen: set[str] = set()
        for index, item in enumerate(datasets_raw):
            path: list[str | int] = ["datasets", index]
            if not isinstance(item, dict):
                raise self.fail(path, "each dataset must be a table: write [[datasets]]")
            self.unknown(item, _DATASET_KEYS, path)
            ds_name = self.string(item, "name", path)
            if ds_name in seen:
                raise self.fail([*path, "name"], f"dataset name {ds_name!r} is declared twice")
            seen.add(ds_name)
            rel = self.string(item, "path", path)
            ds_path = self.relative(code_dir, rel, [*path, "path"], f"dataset {ds_name!r} path")
            commitment = self.string(item, "commitment", path)
            commitment = _normalise_hex(commitment, "sha256")
            if not _HEX_RE.match(commitment):
                raise self.fail(
                    [*path, "commitment"],
                    f"commitment of dataset {ds_name!r} must be a 64-digit hex root "
                    "(its dataset commitment root, optionally prefixed 'sha256:')",
                )
            fmt = item.get("format")
            if fmt is not None and (not isinstance(fmt, str) or not fmt):
                raise self.fail([*path, "format"], "'format' must be a string such as 'jsonl'")
            records = item.get("records")
            if records is not None:
                records = self.integer(item, "records", path, minimum=1)
            ds_licence = self.licence(self.string(item, "licence", path), [*path, "licence"])
            datasets.append(
                DatasetSpec(
                    name=ds_name,
                    path=ds_path,
                    relpath=rel,
                    commitment=commitment,
                    licence=ds_licence,
                    format=fmt,
                    records=records,
                    line=_line_for(self.lines, path),
                )
            )

        base_model: BaseModelSpec | None = None
        if "base_model" in data:
            base = self.table("base_model", required=True)
            self.unknown(base, _BASE_KEYS, ["base_model"])
            rel = self.string(base, "path", ["base_model"])
            base_path = self.relative(code_dir, rel, ["base_model", "path"], "base model")
            digest = _normalise_hex(self.string(base, "digest", ["base_model"]), "sha256")
            if not _HEX_RE.match(digest):
                raise self.fail(
                    ["base_model", "digest"],
                    "base model digest must be 'sha256:<64 hex digits>' (its OMS manifest root)",
                )
            key_rel = base.get("key")
            key_path = None
            if key_rel is not None:
                key_rel = self.string(base, "key", ["base_model"])
                key_path = self.relative(code_dir, key_rel, ["base_model", "key"], "base model key")
            sig_rel = base.get("signature")
            sig_path = None
            if sig_rel is not None:
                if key_rel is None:
                    raise self.fail(
                        ["base_model", "signature"],
                        "'signature' needs 'key': name the public key it must verify with",
                    )
                sig_rel = self.string(base, "signature", ["base_model"])
                sig_path = self.relative(
                    code_dir, sig_rel, ["base_model", "signature"], "base model signature"
                )
            base_model = BaseModelSpec(
                base_path,
                rel,
                digest,
                _line_for(self.lines, ["base_model"]),
                key_path,
                key_rel,
                sig_path,
                sig_rel,
            )

        hyper = self.table("hyperparameters", required=False)

        run = self.table("run", required=True)
        self.unknown(run, _RUN_KEYS, ["run"])
        seed = self.integer(run, "seed", ["run"])
        threads = self.integer(run, "threads", ["run"], default=1, minimum=1)
        interval = self.integer(run, "checkpoint_interval", ["run"], minimum=1)
        capability = self.string(run, "cpu_capability", ["run"], default="default")
        if capability not in CPU_CAPABILITIES:
            raise self.fail(
                ["run", "cpu_capability"],
                f"cpu_capability {capability!r} is not an ATEN_CPU_CAPABILITY value "
                f"({', '.join(CPU_CAPABILITIES)}); 'default' rebuilds on any CPU",
            )

        outputs = self.table("outputs", required=True)
        self.unknown(outputs, _OUTPUT_KEYS, ["outputs"])
        keep = outputs.get("keep")
        if not isinstance(keep, list) or not keep or not all(isinstance(k, str) for k in keep):
            raise self.fail(
                ["outputs", "keep"], "'keep' must be a non-empty list of output file names"
            )
        for name_ in keep:
            if not _safe_relative(name_):
                raise self.fail(
                    ["outputs", "keep"],
                    f"output {name_!r} must be a relative path inside the output directory",
                )
        if len(set(keep)) != len(keep):
            raise self.fail(["outputs", "keep"], "an output is listed twice in 'keep'")

        return Recipe(
            source=self.source,
            code_dir=code_dir,
            name=name,
            version=version,
            licence=licence,
            entry=entry,
            factory=factory,
            model_config=config,
            datasets=tuple(datasets),
            hyperparameters=hyper,
            seed=seed,
            threads=threads,
            checkpoint_interval=interval,
            cpu_capability=capability,
            keep=tuple(keep),
            base_model=base_model,
            description=description,
            lines=self.lines,
        )


def _normalise_hex(value: str, prefix: str) -> str:
    value = value.strip().lower()
    if value.startswith(prefix + ":"):
        value = value[len(prefix) + 1 :]
    return value


def _safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\\" not in name


def _is_spdx_expression(value: str) -> bool:
    """Syntax check of an SPDX license expression (identifiers joined by AND/OR/WITH).

    The identifier list itself is not bundled (it changes yearly); the syntax check catches
    free text such as "MIT licence" or "see LICENSE", which is what goes wrong in practice.
    """
    tokens = re.findall(r"\(|\)|[^\s()]+", value)
    if not tokens:
        return False
    depth = 0
    expect_operand = True
    for token in tokens:
        if token == "(":  # noqa: S105
            if not expect_operand:
                return False
            depth += 1
        elif token == ")":  # noqa: S105
            if expect_operand or depth == 0:
                return False
            depth -= 1
        elif token in ("AND", "OR", "WITH"):
            if expect_operand:
                return False
            expect_operand = True
        else:
            if not expect_operand or not _SPDX_ID_RE.match(token):
                return False
            expect_operand = False
    return depth == 0 and not expect_operand

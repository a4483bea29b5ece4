"""Pipeline files: the TOML that declares a DAG of steps from upstream data to a model.

Parsed as strictly as recipes (``glassbox.pipeline.recipe``): an unknown key is an error, and
every error names the file, the line and the fix. Schema (``schema = 1``, buildType
``https://glassbox.dev/pipeline/v1``)::

    schema = 1
    name = "digits-pipeline"
    version = "1.0.0"
    licence = "Apache-2.0"

    [labellers]                      # who may label: name -> public key file
    alice = "keys/alice.pub"

    [[upstream]]                     # an upstream dataset, pinned by its commitment
    name = "digits"
    path = "data/digits.jsonl"
    commitment = "<hex root>"
    licence = "BSD-3-Clause"
    key = "id"                       # optional: the field that identifies a record
    format = "jsonl"                 # optional

    [[steps]]
    name = "filter"
    kind = "filter"                  # ingest filter clean label split export train fine-tune
    inputs = { digits = "upstream.digits" }   # name -> "upstream.NAME" or "STEP.OUTPUT"
    code = "steps"                   # code directory (not for label steps)
    entry = "filter:run"             # module:function, called with a StepContext
    params = { min_ink = 20 }
    outputs = ["digits.jsonl"]       # files written under ctx.output_dir; "filter.digits"
    allow = ["removed"]              # record changes the step may make (default by kind)
    key = "id"                       # record key for that check (default: the input's)

A ``label`` step has no code: it takes ``decisions`` (CSV/JSONL of id, label, labeller) and
``attestations`` (one signed statement per labeller per batch, ``glassbox label sign``). A
``train`` or ``fine-tune`` step declares what a recipe declares (``entry``, ``factory``,
``config``, ``hyperparameters``, ``seed``, ``threads``, ``checkpoint_interval``, ``keep``) and a
fine-tune names ``base = "STEP"``, an earlier train step whose model it starts from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import InputError
from glassbox.pipeline.recipe import CPU_CAPABILITIES
from glassbox.tomlkeys import (
    TomlValidator,
    is_integer,
    is_string_list,
    line_for,
    parse_toml,
    read_toml,
)

PIPELINE_TYPE = "https://glassbox.dev/pipeline/v1"
SCHEMA_VERSION = 1
MAX_PIPELINE_BYTES = 1 << 20
DATA_KINDS = ("ingest", "filter", "clean", "label", "split", "export")
MODEL_KINDS = ("train", "fine-tune")
KINDS = DATA_KINDS + MODEL_KINDS
CHANGES = ("added", "removed", "modified", "relabelled")
# What each kind of data step may do to the records it derives from, unless it says otherwise.
DEFAULT_ALLOW: dict[str, tuple[str, ...]] = {
    "ingest": CHANGES,
    "filter": ("removed",),
    "clean": ("removed", "modified"),
    "label": ("relabelled",),
    "split": ("removed",),
    "export": CHANGES,
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")

_TOP = {"schema", "name", "version", "licence", "description", "labellers", "upstream", "steps"}
_UPSTREAM = {"name", "path", "commitment", "licence", "key", "format"}
_COMMON = {"name", "kind", "inputs", "description"}
_DATA = _COMMON | {"code", "entry", "params", "outputs", "allow", "key", "derives", "seed"}
_LABEL = _COMMON | {"decisions", "attestations", "outputs", "allow", "key", "label_field"}
_MODEL = _COMMON | {
    "code",
    "entry",
    "factory",
    "config",
    "hyperparameters",
    "seed",
    "threads",
    "checkpoint_interval",
    "cpu_capability",
    "keep",
    "base",
    "licence",
}


class PipelineError(InputError):
    """A pipeline file that cannot be used as written; the message names the line and the fix."""


@dataclass(frozen=True)
class Upstream:
    name: str
    path: Path
    relpath: str
    commitment: str
    licence: str
    key: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Step:
    """One step; which fields are set depends on ``kind`` (see the module docstring)."""

    name: str
    kind: str
    inputs: Mapping[str, str]
    line: int
    code_dir: Path | None = None
    entry: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    key: str | None = None
    derives: str | None = None
    seed: int = 0
    decisions: Path | None = None
    attestations: tuple[Path, ...] = ()
    label_field: str = "label"
    factory: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 1
    checkpoint_interval: int = 1
    cpu_capability: str = "default"
    keep: tuple[str, ...] = ()
    base: str | None = None
    licence: str = ""
    description: str = ""

    @property
    def is_model(self) -> bool:
        return self.kind in MODEL_KINDS

    def output_names(self) -> dict[str, str]:
        """Output reference name (file stem) -> file name, for data steps."""
        return {Path(o).name.split(".")[0]: o for o in self.outputs}

    def depends_on(self) -> set[str]:
        """Names of the earlier steps this one reads from."""
        deps = {ref.split(".", 1)[0] for ref in self.inputs.values()} - {"upstream"}
        if self.base:
            deps.add(self.base)
        return deps


@dataclass(frozen=True)
class Pipeline:
    source: Path
    name: str
    version: str
    licence: str
    upstream: Mapping[str, Upstream]
    steps: tuple[Step, ...]  # in a topological order
    labellers: Mapping[str, Path]
    lines: Mapping[str, int]
    description: str = ""

    @property
    def root(self) -> Path:
        return self.source.parent

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def where(self, *path: str | int) -> str:
        return f"{self.source}:{line_for(self.lines, path)}"


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file (structure, references and the DAG; not digests)."""
    source = Path(path)
    if source.is_dir():
        source = source / "pipeline.toml"
    return _Check(
        source, *read_toml(source, MAX_PIPELINE_BYTES, "pipeline", PipelineError)
    ).pipeline()


def parse_pipeline(text: str, source: Path) -> Pipeline:
    """Validate pipeline ``text``; ``source`` locates it (relative paths resolve against it)."""
    return _Check(source, *parse_toml(text, source, "pipeline", PipelineError)).pipeline()


class _Check(TomlValidator):
    error = PipelineError

    def text(
        self, table: Mapping[str, Any], key: str, path: list[str | int], default: str | None = None
    ) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(path, f"missing '{key}': add {key} = \"...\"")
        if not isinstance(value, str) or not value.strip():
            raise self.fail([*path, key], f"'{key}' must be a non-empty string")
        return value

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        path: list[str | int],
        default: int,
        minimum: int = 0,
    ) -> int:
        value = table.get(key, default)
        if not is_integer(value) or value < minimum:
            raise self.fail([*path, key], f"'{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    def name(self, value: str, path: list[str | int]) -> str:
        if not _NAME.match(value):
            raise self.fail(path, f"name {value!r} may use letters, digits, '_' and '-' only")
        return value

    def file(
        self, value: str, path: list[str | int], what: str, *, directory: bool = False
    ) -> Path:
        candidate = Path(value)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise self.fail(path, f"{what} {value!r} must be a path inside the pipeline directory")
        resolved = self.source.parent / candidate
        if not resolved.exists():
            raise self.fail(
                path, f"{what} {value!r} not found (looked for {resolved}); fix the path"
            )
        if directory and not resolved.is_dir():
            raise self.fail(path, f"{what} {value!r} is not a directory")
        return resolved

    def later(self, value: str, path: list[str | int], what: str) -> Path:
        """A path checked for shape only: keys and signatures may be made after the pipeline
        file (a labeller signs what the filter step produced); the step reports them missing."""
        candidate = Path(value)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise self.fail(path, f"{what} {value!r} must be a path inside the pipeline directory")
        return self.source.parent / candidate

    def strings(self, table: Mapping[str, Any], key: str, path: list[str | int]) -> tuple[str, ...]:
        value = table.get(key, [])
        if not is_string_list(value):
            raise self.fail([*path, key], f"'{key}' must be a list of strings")
        if len(set(value)) != len(value):
            raise self.fail([*path, key], f"'{key}' lists an entry twice")
        return tuple(value)

    def relative_names(self, names: tuple[str, ...], path: list[str | int]) -> None:
        for name in names:
            p = Path(name)
            if p.is_absolute() or ".." in p.parts or "\\" in name or not p.parts:
                raise self.fail(
                    path, f"output {name!r} must be a relative path inside the step's output"
                )

    def pipeline(self) -> Pipeline:
        d = self.data
        self.unknown(d, _TOP, [])
        schema = d.get("schema")
        if schema != SCHEMA_VERSION:
            raise self.fail(
                ["schema"],
                f"schema must be {SCHEMA_VERSION} (got {schema!r}); "
                f"this Glassbox reads pipeline schema {SCHEMA_VERSION}",
            )
        name = self.name(self.text(d, "name", []), ["name"])
        version = self.text(d, "version", [])
        licence = self.text(d, "licence", [])
        description = d.get("description", "")
        if not isinstance(description, str):
            raise self.fail(["description"], "'description' must be a string")
        labellers_raw = d.get("labellers", {})
        if not isinstance(labellers_raw, dict):
            raise self.fail(
                ["labellers"], 'labellers must be a table: [labellers] name = "key.pub"'
            )
        labellers = {
            self.name(k, ["labellers", k]): self.later(
                self.text(labellers_raw, k, ["labellers"]), ["labellers", k], f"labeller {k!r} key"
            )
            for k in labellers_raw
        }
        upstream: dict[str, Upstream] = {}
        raw_up = d.get("upstream", [])
        if not isinstance(raw_up, list) or not raw_up:
            raise self.fail(["upstream"], "declare at least one upstream dataset: [[upstream]]")
        for i, item in enumerate(raw_up):
            p: list[str | int] = ["upstream", i]
            if not isinstance(item, dict):
                raise self.fail(p, "each upstream must be a table: write [[upstream]]")
            self.unknown(item, _UPSTREAM, p)
            up_name = self.name(self.text(item, "name", p), [*p, "name"])
            if up_name in upstream:
                raise self.fail([*p, "name"], f"upstream {up_name!r} is declared twice")
            rel = self.text(item, "path", p)
            commitment = self.text(item, "commitment", p).strip().lower().removeprefix("sha256:")
            if not _HEX.match(commitment):
                raise self.fail(
                    [*p, "commitment"],
                    f"commitment of {up_name!r} must be a 64-digit hex root "
                    "(glassbox digest --dataset)",
                )
            upstream[up_name] = Upstream(
                up_name,
                self.file(rel, [*p, "path"], f"upstream {up_name!r} path"),
                rel,
                commitment,
                self.text(item, "licence", p),
                item.get("key") if isinstance(item.get("key"), str) else None,
                item.get("format") if isinstance(item.get("format"), str) else None,
            )
        raw_steps = d.get("steps", [])
        if not isinstance(raw_steps, list) or not raw_steps:
            raise self.fail(["steps"], "declare at least one step: [[steps]]")
        steps: dict[str, Step] = {}
        for i, item in enumerate(raw_steps):
            step = self.step(i, item, upstream, steps, labellers)
            steps[step.name] = step
        return Pipeline(
            source=self.source,
            name=name,
            version=version,
            licence=licence,
            upstream=upstream,
            steps=tuple(steps.values()),
            labellers=labellers,
            lines=self.lines,
            description=description,
        )

    def step(
        self,
        i: int,
        item: Any,
        upstream: Mapping[str, Upstream],
        earlier: Mapping[str, Step],
        labellers: Mapping[str, Path],
    ) -> Step:
        p: list[str | int] = ["steps", i]
        if not isinstance(item, dict):
            raise self.fail(p, "each step must be a table: write [[steps]]")
        name = self.name(self.text(item, "name", p), [*p, "name"])
        if name in earlier or name == "upstream":
            raise self.fail([*p, "name"], f"step name {name!r} is used twice (or is reserved)")
        kind = self.text(item, "kind", p)
        if kind not in KINDS:
            raise self.fail([*p, "kind"], f"kind {kind!r} is not one of {', '.join(KINDS)}")
        allowed = _MODEL if kind in MODEL_KINDS else _LABEL if kind == "label" else _DATA
        self.unknown(item, allowed, p)
        inputs = item.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise self.fail(
                [*p, "inputs"], 'inputs must be a table of name = "upstream.NAME" or "STEP.OUTPUT"'
            )
        for in_name, ref in inputs.items():
            self.name(in_name, [*p, "inputs"])
            self.reference(ref, [*p, "inputs"], upstream, earlier)
        description = item.get("description", "")
        fields: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "inputs": dict(inputs),
            "line": line_for(self.lines, p),
            "description": str(description),
        }
        if kind == "label":
            if len(inputs) != 1:
                raise self.fail([*p, "inputs"], "a label step labels exactly one input dataset")
            if not labellers:
                raise self.fail(p, "a label step needs a [labellers] table naming who may label")
            fields["decisions"] = self.file(
                self.text(item, "decisions", p), [*p, "decisions"], "decisions file"
            )
            atts = self.strings(item, "attestations", p)
            if not atts:
                raise self.fail(
                    [*p, "attestations"], "a label step needs the labellers' signed attestations"
                )
            fields["attestations"] = tuple(
                self.later(a, [*p, "attestations"], "attestation") for a in atts
            )
            fields["label_field"] = self.text(item, "label_field", p, default="label")
        elif kind in MODEL_KINDS:
            fields["code_dir"] = self.file(
                self.text(item, "code", p), [*p, "code"], "code directory", directory=True
            )
            for key in ("entry", "factory"):
                value = self.text(item, key, p)
                if not _ENTRY.match(value):
                    raise self.fail([*p, key], f"{value!r} is not 'module:function'")
                fields[key] = value
            for key in ("config", "hyperparameters"):
                value = item.get(key, {})
                if not isinstance(value, dict):
                    raise self.fail([*p, key], f"'{key}' must be a table")
                fields["config" if key == "config" else "params"] = value
            fields["seed"] = self.integer(item, "seed", p, 0)
            fields["threads"] = self.integer(item, "threads", p, 1, minimum=1)
            fields["checkpoint_interval"] = self.integer(
                item, "checkpoint_interval", p, 10, minimum=1
            )
            capability = self.text(item, "cpu_capability", p, default="default")
            if capability not in CPU_CAPABILITIES:
                raise self.fail(
                    [*p, "cpu_capability"],
                    f"cpu_capability {capability!r} is not one of {', '.join(CPU_CAPABILITIES)}",
                )
            fields["cpu_capability"] = capability
            keep = self.strings(item, "keep", p)
            if not keep:
                raise self.fail([*p, "keep"], "'keep' must name the model's output files")
            self.relative_names(keep, [*p, "keep"])
            fields["keep"] = keep
            fields["licence"] = self.text(item, "licence", p, default="NOASSERTION")
            base = item.get("base")
            if kind == "fine-tune":
                if not isinstance(base, str) or base not in earlier or not earlier[base].is_model:
                    raise self.fail(
                        [*p, "base"], 'a fine-tune step names base = "STEP", an earlier train step'
                    )
                fields["base"] = base
            elif base is not None:
                raise self.fail([*p, "base"], "only a fine-tune step has a base model")
            if not inputs:
                raise self.fail([*p, "inputs"], "a model step needs at least one dataset input")
        else:
            fields["code_dir"] = self.file(
                self.text(item, "code", p), [*p, "code"], "code directory", directory=True
            )
            entry = self.text(item, "entry", p)
            if not _ENTRY.match(entry):
                raise self.fail([*p, "entry"], f"{entry!r} is not 'module:function'")
            fields["entry"] = entry
            params = item.get("params", {})
            if not isinstance(params, dict):
                raise self.fail([*p, "params"], "'params' must be a table")
            fields["params"] = params
            fields["seed"] = self.integer(item, "seed", p, 0)
            derives = item.get("derives")
            if derives is not None and derives not in inputs:
                raise self.fail(
                    [*p, "derives"],
                    f"derives names {derives!r}, which is not one of the step's inputs",
                )
            fields["derives"] = derives
        if (kind != "label" or "outputs" in item) and kind not in MODEL_KINDS:
            outputs = self.strings(item, "outputs", p)
            if not outputs:
                raise self.fail([*p, "outputs"], "'outputs' must name the files the step writes")
            self.relative_names(outputs, [*p, "outputs"])
            stems = [Path(o).name.split(".")[0] for o in outputs]
            if len(set(stems)) != len(stems):
                raise self.fail([*p, "outputs"], "two outputs share a name before the extension")
            fields["outputs"] = outputs
        if kind == "label" and "outputs" not in item:
            fields["outputs"] = (
                Path(next(iter(inputs.values())).split(".", 1)[1]).name + ".jsonl",
            )
        if kind not in MODEL_KINDS:
            allow: tuple[str, ...] = (
                self.strings(item, "allow", p) if "allow" in item else DEFAULT_ALLOW[kind]
            )
            for change in allow:
                if change not in CHANGES:
                    raise self.fail(
                        [*p, "allow"], f"allow lists {change!r}; changes are {', '.join(CHANGES)}"
                    )
            fields["allow"] = tuple(allow)
            key_field = item.get("key")
            if key_field is not None and not isinstance(key_field, str):
                raise self.fail([*p, "key"], "'key' must be a field name")
            fields["key"] = key_field
        return Step(**fields)

    def reference(
        self,
        ref: str,
        path: list[str | int],
        upstream: Mapping[str, Upstream],
        earlier: Mapping[str, Step],
    ) -> None:
        owner, dot, name = ref.partition(".")
        if not dot:
            raise self.fail(path, f"input {ref!r} must be 'upstream.NAME' or 'STEP.OUTPUT'")
        if owner == "upstream":
            if name not in upstream:
                raise self.fail(path, f"input {ref!r}: no upstream dataset named {name!r}")
            return
        if owner not in earlier:
            raise self.fail(
                path,
                f"input {ref!r}: no earlier step named {owner!r} "
                "(a step can only read from steps declared above it)",
            )
        step = earlier[owner]
        if step.is_model or name not in step.output_names():
            outputs = ", ".join(step.output_names()) or "none"
            raise self.fail(
                path,
                f"input {ref!r}: step {owner!r} has no dataset output {name!r} (it has: {outputs})",
            )

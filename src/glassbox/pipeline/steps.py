"""Build one pipeline step: hermetically, in its own process, with signed SLSA v1 provenance.

A data step runs through the same child process, audit hook and refusals as ``glassbox build``
(``runner.run_child``, mode ``step``); a train or fine-tune step *is* a ``glassbox build`` of a
recipe made from the pipeline file, with the datasets its earlier steps produced
(``builder.build_recipe``). Either way the step's outputs are committed (datasets) and hashed
(files), its record changes are checked against what it may do (a filter only removes), and
its provenance names every input by digest: the upstream or earlier step's commitment, the code
manifest, and for a label step the decisions and every labeller's signed attestation.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassbox.digest import Manifest, hash_file, hash_model
from glassbox.errors import InputError, VerificationError
from glassbox.pipeline.inputs import CACHE_DIRS, DATASET_DIGEST_KEY, record_chunks
from glassbox.pipeline.provenance import BUNDLE_NAME, STATEMENT_NAME
from glassbox.pipeline.spec import PIPELINE_TYPE, Pipeline, Step

if TYPE_CHECKING:
    from glassbox.digest.diff import DatasetDiff

STEP_BUILD_TYPE = "https://glassbox.dev/pipeline/step/v1"
STEP_RECORD = "step.json"
DATA_DIR = "data"
HERMETICITY = "application/vnd.glassbox.hermeticity+json"
ENVIRONMENT = "application/vnd.glassbox.environment+json"
OUTPUTS = "application/vnd.glassbox.step-outputs+json"
DIFFS = "application/vnd.glassbox.dataset-diffs+json"


@dataclass(frozen=True)
class DatasetRef:
    """A dataset one step hands to the next: where it is and what it commits to."""

    ref: str
    path: Path
    root: str
    size: int
    fmt: str
    key: str | None
    licence: str


@dataclass
class StepResult:
    """What running (or reusing) a step gave: its outputs and the record kept beside them."""

    name: str
    kind: str
    status: str  # built | reused
    out_dir: Path
    key: str
    outputs: dict[str, DatasetRef] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "dir": str(self.out_dir),
            "key": self.key,
            "files": self.files,
            "outputs": {
                n: {"ref": d.ref, "path": str(d.path), "root": d.root, "size": d.size}
                for n, d in self.outputs.items()
            },
            "seconds": round(self.seconds, 3),
            "note": self.note,
        }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()


def code_manifest(code_dir: Path, name: str) -> Manifest:
    ignores = []
    for path in code_dir.rglob("*"):
        if path.is_dir() and path.name in CACHE_DIRS:
            ignores.append(path.relative_to(code_dir).as_posix())
    return hash_model(code_dir, ignore_paths=ignores, use_cache=False, model_name=name)


# --- what decides a step's outputs --------------------------------------------------------


@dataclass
class StepPlan:
    """Everything a step reads, hashed: equal plans mean the step's outputs can be reused."""

    step: Step
    inputs: dict[str, DatasetRef]
    code: Manifest | None = None
    decisions: dict[str, Any] | None = None
    attestations: list[dict[str, Any]] = field(default_factory=list)
    base: StepResult | None = None

    def key(self) -> str:
        from glassbox import __version__

        step = self.step
        return _digest(
            {
                "type": PIPELINE_TYPE,
                "glassbox": __version__,
                "kind": step.kind,
                "entry": step.entry,
                "factory": step.factory,
                "params": step.params,
                "config": step.config,
                "seed": step.seed,
                "threads": step.threads,
                "interval": step.checkpoint_interval,
                "cpu": step.cpu_capability,
                "outputs": step.outputs,
                "keep": step.keep,
                "allow": step.allow,
                "key": step.key,
                "code": self.code.root_digest.hex() if self.code else None,
                "inputs": {n: d.root for n, d in self.inputs.items()},
                "decisions": self.decisions["sha256"] if self.decisions else None,
                "attestations": [a["sha256"] for a in self.attestations],
                "base": self.base.files if self.base else None,
            }
        )


def plan_step(
    pipeline: Pipeline, step: Step, inputs: dict[str, DatasetRef], base: StepResult | None
) -> StepPlan:
    """Hash the step's code, and for a label step verify the labellers' signatures first."""
    plan = StepPlan(step, inputs, base=base)
    if step.code_dir is not None:
        plan.code = code_manifest(step.code_dir, f"{pipeline.name}-{step.name}")
    if step.kind == "label":
        plan_labels(pipeline, step, plan)
    return plan


def plan_labels(pipeline: Pipeline, step: Step, plan: StepPlan) -> None:
    from glassbox.pipeline.labels import check_labels, read_attestation, read_decisions
    from glassbox.sign import load_public_key, public_key_id, public_pem

    assert step.decisions is not None
    (dataset,) = plan.inputs.values()
    decisions = read_decisions(step.decisions)
    bundles = {str(p): read_attestation(p) for p in step.attestations}
    keys = {name: load_public_key(path) for name, path in pipeline.labellers.items()}
    check = check_labels(decisions, bundles, keys, dataset_root=dataset.root)
    if not check.ok:
        raise VerificationError(
            f"{pipeline.where('steps', _index(pipeline, step))}: step {step.name!r}: "
            f"{check.problems[0]}"
        )
    if dataset.key is None:
        raise InputError(
            f"{pipeline.where('steps', _index(pipeline, step))}: step {step.name!r} labels "
            'records by key, but its input declares none (set key = "..." on the upstream)'
        )
    plan.decisions = {
        "path": str(step.decisions.resolve()),
        "sha256": hash_file(step.decisions).hex(),
        "count": len(decisions),
        "applied": [{"id": k, "label": d.label} for k, d in sorted(check.covered.items())],
    }
    for path, bundle in zip(step.attestations, bundles.values(), strict=True):
        entry = next(a for a in check.attestations if a["attestation"] == str(path))
        labeller = entry["labeller"]
        plan.attestations.append(
            {
                "path": str(path.resolve()),
                "sha256": hash_file(path).hex(),
                "labeller": labeller,
                "key_id": public_key_id(keys[labeller]),
                "public_key": public_pem(keys[labeller]).decode("ascii"),
                "decisions": entry.get("decisions"),
                "decisions_sha256": entry.get("decisions_sha256"),
                "bundle": bundle,
            }
        )


def _index(pipeline: Pipeline, step: Step) -> int:
    return [s.name for s in pipeline.steps].index(step.name)


# --- reuse --------------------------------------------------------------------------------


def reusable(out_dir: Path, key: str) -> StepResult | None:
    """The recorded result in ``out_dir`` if it was made from the same plan and its files are
    still the recorded bytes; ``None`` otherwise (the step must run)."""
    record_path = out_dir / STEP_RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("key") != key:
            return None
        for rel, sha in record["files"].items():
            path = out_dir / rel
            if not path.is_file() or hash_file(path).hex() != sha:
                return None
        result = load_result(out_dir, record)
        from glassbox.digest import commit_dataset

        for dataset in result.outputs.values():  # what the next step will be told it reads
            if commit_dataset(dataset.path, fmt=dataset.fmt).root.hex() != dataset.root:
                return None
        return result
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_result(out_dir: Path, record: dict[str, Any]) -> StepResult:
    outputs = {
        name: DatasetRef(
            ref=o["ref"],
            path=out_dir / o["file"],
            root=o["root"],
            size=int(o["size"]),
            fmt=o["format"],
            key=o.get("key"),
            licence=o.get("licence", "NOASSERTION"),
        )
        for name, o in record.get("outputs", {}).items()
    }
    return StepResult(
        name=record["name"],
        kind=record["kind"],
        status="reused",
        out_dir=out_dir,
        key=record["key"],
        outputs=outputs,
        files=dict(record["files"]),
    )


def write_record(result: StepResult) -> None:
    record = {
        "type": PIPELINE_TYPE,
        "name": result.name,
        "kind": result.kind,
        "key": result.key,
        "files": result.files,
        "outputs": {
            name: {
                "ref": d.ref,
                "file": d.path.relative_to(result.out_dir).as_posix(),
                "root": d.root,
                "size": d.size,
                "format": d.fmt,
                "key": d.key,
                "licence": d.licence,
            }
            for name, d in result.outputs.items()
        },
    }
    (result.out_dir / STEP_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


# --- running ------------------------------------------------------------------------------


def run_step(
    pipeline: Pipeline,
    plan: StepPlan,
    out_dir: Path,
    *,
    signing_key: Any = None,
    timeout: float | None = None,
) -> StepResult:
    """Build ``plan`` into ``out_dir`` (created; must not exist)."""
    if plan.step.is_model:
        return _run_model(pipeline, plan, out_dir, signing_key, timeout)
    return _run_data(pipeline, plan, out_dir, signing_key, timeout)


def _run_data(
    pipeline: Pipeline, plan: StepPlan, out_dir: Path, signing_key: Any, timeout: float | None
) -> StepResult:
    from glassbox.pipeline.hermetic import Hermeticity
    from glassbox.pipeline.runner import ChildSettings, run_child

    step = plan.step
    where = pipeline.where("steps", _index(pipeline, step))
    out_dir.mkdir(parents=True)
    scratch = out_dir / ".glassbox-step"
    produced = scratch / "outputs"
    declared_files = [str(p) for p in _code_files(plan)]
    roots = [str(d.path.resolve()) for d in plan.inputs.values()]
    params: dict[str, Any] = dict(step.params)
    if step.kind == "label":
        assert plan.decisions is not None
        (dataset,) = plan.inputs.values()
        params = {
            "label_field": step.label_field,
            "key": dataset.key,
            "decisions": plan.decisions["applied"],
        }
    job = {
        "mode": "step",
        "builtin": "label" if step.kind == "label" else None,
        "code_dir": str(step.code_dir.resolve()) if step.code_dir else "",
        "entry": step.entry,
        "params": params,
        "seed": step.seed,
        "inputs": [
            {"name": n, "path": str(d.path.resolve()), "format": d.fmt}
            for n, d in plan.inputs.items()
        ],
        "outputs": list(step.outputs),
        "output_dir": str(produced.absolute()),
        "declared_files": declared_files,
        "declared_roots": roots,
        "internal_roots": [str(scratch.resolve())],
    }
    started = _now()
    try:
        result = run_child(
            job, ChildSettings(threads=1, cpu_capability="default", timeout=timeout), scratch
        )
    except BaseException:
        _keep_log(scratch, out_dir)
        raise
    finished = _now()
    hermeticity = Hermeticity.from_dict(result["hermeticity"])
    if not hermeticity.hermetic:
        listed = ", ".join([*hermeticity.undeclared_reads, *hermeticity.undeclared_writes][:5])
        raise VerificationError(
            f"{where}: step {step.name!r} is not hermetic: undeclared file access: {listed}"
        )
    data_dir = out_dir / DATA_DIR
    data_dir.mkdir()
    for name in step.outputs:
        src = produced / name
        if not src.is_file() or src.is_symlink():
            raise VerificationError(
                f"{where}: step {step.name!r} did not write its output {name!r}"
            )
        dst = data_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
    extra = sorted(p.relative_to(produced).as_posix() for p in produced.rglob("*") if p.is_file())
    if extra:
        raise VerificationError(
            f"{where}: step {step.name!r} wrote undeclared outputs: {', '.join(extra[:5])}"
        )
    _keep_log(scratch, out_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    outcome = StepResult(
        step.name, step.kind, "built", out_dir, plan.key(), seconds=float(result["seconds"])
    )
    derived_from = _derived_from(step, plan)
    diffs: dict[str, Any] = {}
    for file_name, stem in ((o, Path(o).name.split(".")[0]) for o in step.outputs):
        path = data_dir / file_name
        outcome.files[f"{DATA_DIR}/{file_name}"] = hash_file(path).hex()
        committed, diff = _commit_output(step, where, stem, path, derived_from)
        if committed is None:
            continue
        outcome.outputs[stem] = committed
        if diff is not None:
            diffs[stem] = diff
    statement = step_provenance(
        pipeline, plan, outcome, hermeticity, result["environment"], diffs, started, finished
    )
    _write_provenance(out_dir, statement, signing_key)
    write_record(outcome)
    return outcome


def _code_files(plan: StepPlan) -> list[Path]:
    if plan.code is None or plan.step.code_dir is None:
        return []
    root = plan.step.code_dir.resolve()
    return [root / item.path for item in plan.code.items]


def _derived_from(step: Step, plan: StepPlan) -> DatasetRef | None:
    if step.derives is not None:
        return plan.inputs[step.derives]
    if len(plan.inputs) == 1:
        return next(iter(plan.inputs.values()))
    return None


def _commit_output(
    step: Step, where: str, stem: str, path: Path, source: DatasetRef | None
) -> tuple[DatasetRef | None, dict[str, Any] | None]:
    """The output's commitment, and its diff against ``source`` (the input it derives from).

    With a source, one diff pass does both: it commits to the output on its way (checking
    each record, as a commitment does) and takes the source's records as already checked
    when it was committed, comparing its root instead. One read of each file, not three.
    """
    from glassbox.digest import commit_dataset
    from glassbox.digest.records import detect_format

    try:
        fmt = detect_format(path)
    except InputError:
        return None, None  # not a dataset (an exported file): hashed, not committed
    key = step.key or (source.key if source else None)
    licence = source.licence if source else "NOASSERTION"
    if source is None:
        commitment = commit_dataset(path, fmt=fmt)
        ref = DatasetRef(
            f"{step.name}.{stem}",
            path,
            commitment.root.hex(),
            commitment.size,
            commitment.fmt,
            key,
            licence,
        )
        return ref, None
    from glassbox.digest.diff import diff_datasets

    result = diff_datasets(
        source.path,
        path,
        key=key,
        label=step.label_field if step.kind == "label" else "label",
        upstream_format=source.fmt,
        derived_format=fmt,
        proofs=False,
        limit=20,
        upstream_root=bytes.fromhex(source.root),
    )
    commitment = result.derived
    ref = DatasetRef(
        f"{step.name}.{stem}",
        path,
        commitment.root.hex(),
        commitment.size,
        commitment.fmt,
        key,
        licence,
    )
    return ref, check_changes(step, where, source, ref, result)


def check_changes(
    step: Step, where: str, source: DatasetRef, output: DatasetRef, result: DatasetDiff
) -> dict[str, Any]:
    """Refuse the changes from ``source`` to ``output`` (``result``) the step may not make."""
    forbidden = sorted(result.kinds() - set(step.allow))
    summary = {
        "from": source.ref,
        "from_root": source.root,
        "to_root": output.root,
        "key": output.key,
        "summary": {**result.counts, "unchanged": result.unchanged},
        "allowed": list(step.allow),
    }
    if forbidden:
        examples = [f"{c.kind} {c.key}" for c in result.changes if c.kind in forbidden][:5]
        raise VerificationError(
            f"{where}: step {step.name!r} ({step.kind}) made changes it may not make to "
            f"{source.ref}: {', '.join(f'{result.counts[k]} {k}' for k in forbidden)} "
            f"(allowed: {', '.join(step.allow) or 'none'}; e.g. {'; '.join(examples)})"
        )
    return summary


def _keep_log(scratch: Path, out_dir: Path) -> None:
    log = scratch / "train.log"
    if log.exists():
        shutil.move(str(log), str(out_dir / "step.log"))


def _write_provenance(out_dir: Path, statement: dict[str, Any], signing_key: Any) -> None:
    from glassbox.sign import sign_statement, write_bundle

    (out_dir / STATEMENT_NAME).write_text(json.dumps(statement, indent=2) + "\n")
    if signing_key is not None:
        write_bundle(sign_statement(statement, signing_key), out_dir / BUNDLE_NAME)


def _byproduct(name: str, media_type: str, content: Any) -> dict[str, Any]:
    return {
        "name": name,
        "digest": {"sha256": _digest(content)},
        "mediaType": media_type,
        "annotations": content,
    }


def step_provenance(
    pipeline: Pipeline,
    plan: StepPlan,
    outcome: StepResult,
    hermeticity: Any,
    environment: dict[str, Any],
    diffs: dict[str, Any],
    started: str,
    finished: str,
) -> dict[str, Any]:
    """SLSA v1 provenance of a data step: same shape and byproducts as a build's."""
    from glassbox import __version__
    from glassbox.pipeline.provenance import BUILDER_ID
    from glassbox.sign import make_statement, subject

    step = plan.step
    deps: list[dict[str, Any]] = []
    if plan.code is not None and step.code_dir is not None:
        deps.append(
            {
                "name": "code",
                "digest": {"sha256": plan.code.root_digest.hex()},
                "annotations": {
                    "kind": "code",
                    "localPath": str(step.code_dir.resolve()),
                    "manifest": plan.code.to_dict(),
                },
            }
        )
    for name, dataset in plan.inputs.items():
        deps.append(
            {
                "name": f"dataset:{name}",
                "digest": {DATASET_DIGEST_KEY: dataset.root},
                "annotations": {
                    "kind": "dataset",
                    "ref": dataset.ref,
                    "records": dataset.size,
                    "key": dataset.key,
                    "localPath": str(dataset.path.resolve()),
                    "format": dataset.fmt,
                    "chunks": record_chunks(dataset.path, dataset.fmt, dataset.size),
                },
            }
        )
    if plan.decisions is not None:
        deps.append(
            {
                "name": "label-decisions",
                "digest": {"sha256": plan.decisions["sha256"]},
                "annotations": {
                    "kind": "label-decisions",
                    "localPath": plan.decisions["path"],
                    "count": plan.decisions["count"],
                },
            }
        )
    for att in plan.attestations:
        deps.append(
            {
                "name": f"label-attestation:{att['labeller']}",
                "digest": {"sha256": att["sha256"]},
                "annotations": {
                    "kind": "label-attestation",
                    "localPath": att["path"],
                    "labeller": att["labeller"],
                    "keyId": att["key_id"],
                    "publicKey": att["public_key"],
                    "decisions": att["decisions"],
                    "decisionsDigest": att["decisions_sha256"],
                    "bundle": att["bundle"],
                },
            }
        )
    subjects = [subject(rel, sha) for rel, sha in sorted(outcome.files.items())]
    predicate = {
        "buildDefinition": {
            "buildType": STEP_BUILD_TYPE,
            "externalParameters": {
                "pipeline": pipeline.source.name,
                "pipelineName": pipeline.name,
                "step": step.name,
                "kind": step.kind,
                "entry": step.entry or ("builtin:label" if step.kind == "label" else ""),
                "params": dict(step.params),
                "inputs": dict(step.inputs),
                "outputs": list(step.outputs),
                "allow": list(step.allow),
                "key": step.key,
                "labelField": step.label_field,
            },
            "internalParameters": {"seed": step.seed, "network": "refused", "stepKey": outcome.key},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"glassbox": __version__}},
            "metadata": {
                "invocationId": f"urn:uuid:{uuid.uuid4()}",
                "startedOn": started,
                "finishedOn": finished,
            },
            "byproducts": [
                _byproduct("hermeticity", HERMETICITY, hermeticity.to_dict()),
                _byproduct("environment", ENVIRONMENT, environment),
                _byproduct(
                    "step-outputs",
                    OUTPUTS,
                    {
                        n: {
                            "ref": d.ref,
                            "file": d.path.relative_to(outcome.out_dir).as_posix(),
                            DATASET_DIGEST_KEY: d.root,
                            "records": d.size,
                            "key": d.key,
                        }
                        for n, d in outcome.outputs.items()
                    },
                ),
                _byproduct("dataset-diffs", DIFFS, diffs),
            ],
        },
    }
    return make_statement(subjects, "https://slsa.dev/provenance/v1", predicate)


def _run_model(
    pipeline: Pipeline, plan: StepPlan, out_dir: Path, signing_key: Any, timeout: float | None
) -> StepResult:
    from glassbox.pipeline.builder import build_recipe
    from glassbox.pipeline.recipe import BaseModelSpec, DatasetSpec, Recipe

    step = plan.step
    assert step.code_dir is not None
    datasets = tuple(
        DatasetSpec(
            name=n,
            path=d.path,
            relpath=d.ref,
            commitment=d.root,
            licence=d.licence,
            format=d.fmt,
            records=d.size,
        )
        for n, d in plan.inputs.items()
    )
    base = None
    if plan.base is not None:
        model_dir = plan.base.out_dir / "model"
        base = BaseModelSpec(
            model_dir,
            f"{plan.base.name}.model",
            hash_model(model_dir, use_cache=False).root_digest.hex(),
        )
    recipe = Recipe(
        source=pipeline.source,
        code_dir=step.code_dir,
        name=f"{pipeline.name}-{step.name}",
        version=pipeline.version,
        licence=step.licence,
        entry=step.entry,
        factory=step.factory,
        model_config=dict(step.config),
        datasets=datasets,
        hyperparameters=dict(step.params),
        seed=step.seed,
        threads=step.threads,
        checkpoint_interval=step.checkpoint_interval,
        cpu_capability=step.cpu_capability,
        keep=step.keep,
        base_model=base,
        description=step.description,
        lines=pipeline.lines,
    )
    built = build_recipe(recipe, out_dir, key=signing_key, strict=True, timeout=timeout)
    outcome = StepResult(step.name, step.kind, "built", out_dir, plan.key(), seconds=built.seconds)
    for item in built.outputs.items:
        outcome.files[f"model/{item.name}"] = item.digest.hex()
    write_record(outcome)
    return outcome

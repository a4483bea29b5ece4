"""Walk a model's data back through every pipeline step to the upstream commitments.

Starting from a pipeline run's ``pipeline.lock.json`` (beside the step directories), each step
is judged on its own signed provenance, never on the unsigned lock or ``step.json``:

* the provenance verifies with a trusted key (unsigned or untrusted: unknown);
* its subjects are the step's output files as they are now (a changed output is named);
* each input commitment is what the producing step's *signed* provenance says it produced, or
  the upstream's pinned commitment, and the input file still commits to it (otherwise the
  changed records are named, from the chunk roots the consumer recorded);
* a data step's records changed only as it declared: its input and output are diffed again
  (a filter only removes), and for a label step every relabelled record must be covered by a
  valid signature of a listed labeller, whose attestation is re-verified here.

A record that appears or changes outside any declared step shows up as one of those findings,
named by key where the data is at hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError, InputError
from glassbox.files import read_small_file
from glassbox.pipeline.provenance import safe_relative

LOCK_NAME = "pipeline.lock.json"
# A step's directory is a plain name inside the run directory (the lock is untrusted input).
_STEP_DIR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
MAX_LOCK_BYTES = 64 << 20


@dataclass
class StepVerdict:
    name: str
    kind: str
    verdict: str  # pass | fail | unknown
    inputs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed_by: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # The step's provenance, relative to the run directory (``STEP/provenance.sigstore.json``).
    provenance: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "inputs": self.inputs,
            "problems": self.problems,
            "notes": self.notes,
            "signed_by": self.signed_by,
            "outputs": self.outputs,
            "provenance": self.provenance,
        }


@dataclass
class LineageReport:
    lock: Path
    pipeline: str
    upstream: dict[str, Any]
    steps: list[StepVerdict]
    model_step: str | None = None

    @property
    def verdict(self) -> str:
        verdicts = {s.verdict for s in self.steps}
        return "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "pass"

    @property
    def findings(self) -> list[str]:
        return [f"step {s.name}: {p}" for s in self.steps for p in s.problems]

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset in the lineage: upstream ones and each step's outputs, with parents."""
        out = [
            {
                "ref": f"upstream.{n}",
                "root": u.get("commitment"),
                "licence": u.get("licence"),
                "producer": None,
                "parents": [],
            }
            for n, u in self.upstream.items()
        ]
        for step in self.steps:
            for name, o in step.outputs.items():
                out.append(
                    {
                        "ref": f"{step.name}.{name}",
                        "root": o.get("root"),
                        "records": o.get("records"),
                        "producer": step.name,
                        "kind": step.kind,
                        "parents": sorted(step.inputs.values()),
                        "verdict": step.verdict,
                        "provenance": step.provenance,
                        "signed_by": step.signed_by,
                    }
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock": str(self.lock),
            "pipeline": self.pipeline,
            "verdict": self.verdict,
            "model_step": self.model_step,
            "upstream": self.upstream,
            "steps": [s.to_dict() for s in self.steps],
            "datasets": self.datasets(),
        }


def find_lock(provenance_path: Path) -> Path | None:
    """The pipeline lock of the run a step's provenance belongs to (``OUT/STEP/provenance``)."""
    for candidate in (
        provenance_path.parent.parent / LOCK_NAME,
        provenance_path.parent / LOCK_NAME,
    ):
        if candidate.is_file():
            return candidate
    return None


def verify_lineage(
    lock_path: Path,
    trusted_keys: list[Any],
    *,
    labellers: dict[str, Any] | None = None,
    model_step: str | None = None,
) -> LineageReport:
    """Judge every step of the run ``lock_path`` records (see the module docstring).

    ``trusted_keys`` verify the steps' provenance; ``labellers`` (name -> public key) is the
    consumer's own list of labellers; without it the keys recorded in the provenance are used
    and a note says that they were not independently trusted.
    """
    try:
        lock = json.loads(read_small_file(lock_path, MAX_LOCK_BYTES, "pipeline lock"))
        steps = list(lock["steps"])
        upstream = dict(lock["upstream"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{lock_path}: not a pipeline lock: {exc}") from None
    out = lock_path.parent
    produced: dict[str, str] = {
        f"upstream.{n}": str(u.get("commitment")) for n, u in upstream.items()
    }
    report = LineageReport(
        lock_path, str(lock.get("pipeline", {}).get("name")), upstream, [], model_step
    )
    located: dict[str, Path] = {
        f"upstream.{n}": upstream_path(lock_path, lock, u) for n, u in upstream.items()
    }
    for name, up in upstream.items():
        _check_upstream(name, up, located[f"upstream.{name}"])
    for entry in steps:
        for stem, o in dict(entry.get("outputs", {})).items():
            if _STEP_DIR.match(str(entry.get("dir"))) and safe_relative(o.get("file")):
                located[f"{entry.get('name')}.{stem}"] = (
                    out / str(entry.get("dir")) / str(o.get("file"))
                )
    for entry in steps:
        verdict = _check_step(out, entry, trusted_keys, produced, labellers, located)
        report.steps.append(verdict)
    return report


def upstream_path(lock_path: Path, lock: dict[str, Any], up: dict[str, Any]) -> Path:
    """Where an upstream dataset the lock names is now. The lock records it relative to the
    pipeline file, and the pipeline file relative to the lock, so a run moved together with its
    pipeline still finds its data; an absolute path (older locks) is taken as it is."""
    path = Path(str(up.get("path")))
    if path.is_absolute():
        return path
    recorded = lock.get("pipeline")
    pipeline = recorded.get("path") if isinstance(recorded, dict) else None
    if not isinstance(pipeline, str) or not pipeline:
        return lock_path.parent / path
    return (lock_path.parent / pipeline).parent / path


def _check_upstream(name: str, up: dict[str, Any], path: Path) -> None:
    from glassbox.digest import commit_dataset

    if not path.is_file():
        up["verified"] = None
        return
    try:
        root = commit_dataset(path).root.hex()
    except GlassboxError:
        root = ""
    up["verified"] = root == up.get("commitment")


def _load_statement(step_dir: Path, keys: list[Any], verdict: StepVerdict) -> dict[str, Any] | None:
    from glassbox.sign import parse_statement, public_key_id, read_bundle, verify_bundle

    bundle_path = step_dir / "provenance.sigstore.json"
    if not bundle_path.is_file():
        plain = step_dir / "provenance.intoto.json"
        if plain.is_file():
            verdict.provenance = f"{step_dir.name}/{plain.name}"
            verdict.verdict = "unknown"
            verdict.problems.append("provenance is not signed, so it cannot be trusted")
            try:
                return parse_statement(plain.read_bytes(), where=str(plain))
            except GlassboxError:
                return None
        verdict.verdict = "fail"
        verdict.problems.append("no provenance")
        return None
    verdict.provenance = f"{step_dir.name}/{bundle_path.name}"
    try:
        bundle = read_bundle(bundle_path)
    except GlassboxError as exc:
        verdict.verdict = "fail"
        verdict.problems.append(f"provenance unreadable: {exc}")
        return None
    if not keys:
        verdict.verdict = "unknown"
        verdict.problems.append("provenance is signed, but no trusted key was given")
        from glassbox.sign import bundle_envelope

        return parse_statement(bundle_envelope(bundle).payload)
    for key in keys:
        try:
            statement = verify_bundle(bundle, key, where=str(bundle_path))
        except GlassboxError:
            continue
        verdict.signed_by = public_key_id(key)
        return statement
    verdict.verdict = "fail"
    verdict.problems.append("provenance signature does not verify with any trusted key")
    return None


def _check_step(
    out: Path,
    entry: dict[str, Any],
    keys: list[Any],
    produced: dict[str, str],
    labellers: dict[str, Any] | None,
    located: dict[str, Path],
) -> StepVerdict:
    from glassbox.bom.provenance import byproduct
    from glassbox.digest import hash_file

    name, kind = str(entry.get("name")), str(entry.get("kind"))
    verdict = StepVerdict(name, kind, "pass", inputs=dict(entry.get("inputs", {})))
    if not _STEP_DIR.match(str(entry.get("dir", name))):
        _fail(verdict, f"the lock names step directory {entry.get('dir')!r}, outside the run")
        return verdict
    step_dir = out / str(entry.get("dir", name))
    statement = _load_statement(step_dir, keys, verdict)
    if statement is None:
        return verdict
    build = statement.get("predicate", {}).get("buildDefinition", {})
    model_step = kind in ("train", "fine-tune")
    # Outputs: the subjects, as the files are now.
    for subject in statement.get("subject", []):
        rel = str(subject.get("name"))
        path = step_dir / ("model/" + rel if model_step else rel)
        want = subject.get("digest", {}).get("sha256")
        if not safe_relative(rel) or not path.is_file():
            _fail(verdict, f"output {rel} named in the provenance is missing")
        elif hash_file(path).hex() != want:
            _fail(verdict, f"output {rel} differs from its signed provenance")
    outputs = byproduct(statement, "step-outputs")
    for stem, o in outputs.items():
        produced[f"{name}.{stem}"] = str(o.get("rfc9162-sha256"))
        verdict.outputs[stem] = {
            "root": o.get("rfc9162-sha256"),
            "records": o.get("records"),
            "file": o.get("file"),
        }
    # Inputs: each consumed commitment must be what its producer signed for.
    deps = [d for d in build.get("resolvedDependencies", []) if isinstance(d, dict)]
    refs = dict(entry.get("inputs", {}))
    for dep in deps:
        dep_name = str(dep.get("name", ""))
        if not dep_name.startswith("dataset:"):
            continue
        input_name = dep_name.split(":", 1)[1]
        ref = refs.get(input_name)
        root = dep.get("digest", {}).get("rfc9162-sha256")
        if ref is None:
            _fail(verdict, f"input {input_name} is not in the pipeline lock")
            continue
        expected = produced.get(ref)
        if expected is None:
            _unknown(verdict, f"input {ref}: its producer's provenance could not be verified")
        elif root != expected:
            _fail(
                verdict,
                f"input {ref} ({str(root)[:16]}…) is not what its producer signed for "
                f"({expected[:16]}…): records changed between steps",
            )
        _check_input_file(verdict, ref, dep, located.get(ref))
    if not model_step:
        source = located.get(next(iter(refs.values()), ""))
        _check_changes(verdict, entry, statement, deps, out, labellers, source)
    herm = byproduct(statement, "hermeticity")
    if herm.get("hermetic") is False:
        _fail(verdict, "the step was not hermetic")
    return verdict


def _fail(verdict: StepVerdict, problem: str) -> None:
    verdict.verdict = "fail"
    verdict.problems.append(problem)


def _unknown(verdict: StepVerdict, problem: str) -> None:
    if verdict.verdict == "pass":
        verdict.verdict = "unknown"
    verdict.problems.append(problem)


def _check_input_file(verdict: StepVerdict, ref: str, dep: dict[str, Any], at: Path | None) -> None:
    """If the input file is still at hand, it must commit to the recorded root; if it does
    not, name the changed records (from the chunk roots the step recorded)."""
    from glassbox.digest import commit_dataset
    from glassbox.pipeline.inputs import changed_records, record_chunks

    ann = dep.get("annotations", {})
    local = str(at) if at is not None else ann.get("localPath")
    root = dep.get("digest", {}).get("rfc9162-sha256")
    if not isinstance(local, str) or not Path(local).is_file():
        verdict.notes.append(f"input {ref}: data not at hand; checked by commitment only")
        return
    try:
        commitment = commit_dataset(Path(local), fmt=ann.get("format"))
    except GlassboxError as exc:
        _fail(verdict, f"input {ref}: unreadable: {exc}")
        return
    if commitment.root.hex() == root:
        return
    chunks = ann.get("chunks") or {}
    ranges = []
    if chunks:
        current = record_chunks(Path(local), ann.get("format"), commitment.size)
        ranges = changed_records(chunks, current)
    where = ", ".join(
        f"records {a}..{b - 1}" if b - a > 1 else f"record {a}" for a, b in ranges[:5]
    )
    _fail(
        verdict,
        f"input {ref} at {local} no longer commits to what the step read"
        + (f" ({where})" if where else ""),
    )


def _check_changes(
    verdict: StepVerdict,
    entry: dict[str, Any],
    statement: dict[str, Any],
    deps: list[dict[str, Any]],
    out: Path,
    labellers: dict[str, Any] | None,
    source: Path | None,
) -> None:
    """Diff the step's input and output again: only declared changes, only signed relabels."""
    from glassbox.digest.diff import diff_datasets

    params = statement.get("predicate", {}).get("buildDefinition", {}).get("externalParameters", {})
    allow = set(params.get("allow", []))
    label_field = str(params.get("labelField") or "label")
    datasets = [d for d in deps if str(d.get("name", "")).startswith("dataset:")]
    if len(datasets) != 1:
        verdict.notes.append("several inputs: record changes not re-checked")
        return
    local = (
        str(source) if source is not None else datasets[0].get("annotations", {}).get("localPath")
    )
    key = datasets[0].get("annotations", {}).get("key")
    covered: dict[str, Any] | None = None
    if entry.get("kind") == "label":
        covered = _check_label_signatures(verdict, deps, datasets[0], labellers)
    for stem, o in verdict.outputs.items():
        if not safe_relative(o.get("file")):
            _fail(verdict, f"output {stem}: file name {o.get('file')!r} leaves the step directory")
            continue
        path = out / str(entry.get("dir", verdict.name)) / str(o.get("file"))
        if not isinstance(local, str) or not Path(local).is_file() or not path.is_file():
            verdict.notes.append(f"output {stem}: data not at hand; record changes not re-checked")
            continue
        try:
            result = diff_datasets(
                Path(local), path, key=key, label=label_field, proofs=False, limit=1000
            )
        except GlassboxError as exc:
            _fail(verdict, f"output {stem}: cannot diff against its input: {exc}")
            continue
        o["changes"] = {**result.counts, "unchanged": result.unchanged}
        forbidden = sorted(result.kinds() - allow)
        if forbidden:
            named = [f"{c.kind} {c.key}" for c in result.changes if c.kind in forbidden][:5]
            _fail(
                verdict,
                f"output {stem}: records changed outside what the step declares "
                f"(allowed: {', '.join(sorted(allow)) or 'none'}): {'; '.join(named)}",
            )
        if covered is not None:
            from glassbox.pipeline.labels import key_text

            for change in result.changes:
                if change.kind != "relabelled":
                    continue
                try:
                    decision = covered.get(key_text(json.loads(change.key)))
                except ValueError:
                    decision = None
                new = None if change.derived_label is None else change.derived_label
                if decision is None or str(decision) != str(new):
                    _fail(
                        verdict,
                        f"record {change.key} relabelled {change.upstream_label} -> "
                        f"{new} without a valid labeller signature",
                    )


def _check_label_signatures(
    verdict: StepVerdict,
    deps: list[dict[str, Any]],
    dataset: dict[str, Any],
    labellers: dict[str, Any] | None,
) -> dict[str, Any]:
    """Re-verify the labellers' attestations; return record key -> signed label."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from glassbox.digest import hash_file
    from glassbox.pipeline.labels import check_labels, read_decisions

    decisions_dep = next((d for d in deps if d.get("name") == "label-decisions"), None)
    if decisions_dep is None:
        _fail(verdict, "label step records no label decisions")
        return {}
    path = Path(str(decisions_dep.get("annotations", {}).get("localPath")))
    if not path.is_file():
        _unknown(verdict, f"label decisions {path} not at hand")
        return {}
    if hash_file(path).hex() != decisions_dep.get("digest", {}).get("sha256"):
        _fail(verdict, f"label decisions {path} differ from the ones the step used")
    bundles: dict[str, dict[str, Any]] = {}
    keys: dict[str, Any] = {}
    for dep in deps:
        if not str(dep.get("name", "")).startswith("label-attestation:"):
            continue
        ann = dep.get("annotations", {})
        labeller = str(ann.get("labeller"))
        bundles[f"{labeller}'s attestation"] = ann.get("bundle") or {}
        on_disk = Path(str(ann.get("localPath")))
        if on_disk.is_file() and hash_file(on_disk).hex() != dep.get("digest", {}).get("sha256"):
            _fail(verdict, f"{labeller}'s attestation {on_disk} differs from the one the step used")
        if labellers is None:
            try:
                keys[labeller] = load_pem_public_key(str(ann.get("publicKey")).encode())
            except ValueError:
                continue
    if labellers is None:
        verdict.notes.append(
            "labeller keys taken from the provenance (pass --labeller to trust your own list)"
        )
    else:
        keys = labellers
    try:
        decisions = read_decisions(path)
    except GlassboxError as exc:
        _fail(verdict, f"label decisions unreadable: {exc}")
        return {}
    root = str(dataset.get("digest", {}).get("rfc9162-sha256"))
    check = check_labels(decisions, bundles, keys, dataset_root=root)
    for problem in check.problems:
        _fail(verdict, problem)
    for decision in check.uncovered[:10]:
        _fail(
            verdict,
            f"label {decision.label!r} for record {decision.key} by {decision.labeller} "
            "is not covered by a valid labeller signature",
        )
    verdict.notes.append(
        f"{len(check.covered)} label decision(s) covered by signatures of "
        f"{', '.join(check.summary()['labellers']) or 'nobody'}"
    )
    return {k: d.label for k, d in check.covered.items()}

"""Label decisions and the labellers' signatures over them.

A labelling batch is a CSV or JSON Lines file of decisions: ``id`` (the record key), ``label``
and ``labeller``. Each labeller signs *their own* decisions in the batch: an in-toto Statement
v1 (predicate ``https://glassbox.dev/label-decisions/v1``) whose subject digest is the SHA-256
of their decisions in a canonical form (sorted by record id), bound to the dataset being
labelled by its commitment root. The statement goes into a Sigstore bundle like every other
Glassbox attestation (``glassbox.sign``), so the labeller's key is the only thing vouching for
the labels: a decision nobody signed, a signature by someone outside the pipeline's list of
labellers, and a decision changed after signing are each named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glassbox.errors import GlassboxError, InputError
from glassbox.files import read_small_file

LABEL_PREDICATE_TYPE = "https://glassbox.dev/label-decisions/v1"
MAX_DECISIONS = 5_000_000
MAX_ATTESTATION_BYTES = 16 << 20


@dataclass(frozen=True)
class Decision:
    """One label decision: record ``key`` (as text) gets ``label`` (a JSON value)."""

    key: str
    label: Any
    labeller: str


def key_text(value: Any) -> str:
    """A record key as text, so a CSV ``"7"`` and a JSON ``7`` name the same record."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def read_decisions(path: Path) -> list[Decision]:
    """Every decision in a CSV/JSONL batch; one line naming the file and row on bad input."""
    from glassbox.digest.records import open_records

    stream = open_records(path)
    header = stream.metadata.get("header")
    if header is not None:
        missing = {"id", "label", "labeller"} - set(header)
        if missing:
            raise InputError(
                f"{path}: decisions need columns id, label, labeller "
                f"(missing {', '.join(sorted(missing))})"
            )
    out: list[Decision] = []
    seen: dict[tuple[str, str], int] = {}
    for index, record in enumerate(stream.records):
        if index >= MAX_DECISIONS:
            raise InputError(f"{path}: more than {MAX_DECISIONS} decisions in one batch")
        value = json.loads(record)
        if header is not None:
            value = dict(zip(header, value, strict=True))
        if not isinstance(value, dict) or not {"id", "label", "labeller"} <= value.keys():
            raise InputError(f"{path}: decision {index} needs 'id', 'label' and 'labeller'")
        labeller = value["labeller"]
        if not isinstance(labeller, str) or not labeller:
            raise InputError(f"{path}: decision {index}: 'labeller' must be a non-empty string")
        decision = Decision(key_text(value["id"]), value["label"], labeller)
        slot = (decision.labeller, decision.key)
        if slot in seen:
            raise InputError(
                f"{path}: decisions {seen[slot]} and {index} both label record "
                f"{decision.key!r} for {labeller!r}"
            )
        seen[slot] = index
        out.append(decision)
    return out


def decisions_digest(decisions: Iterable[Decision]) -> str:
    """SHA-256 (hex) of decisions in canonical form: ``[[id, label], ...]`` sorted by id."""
    rows = sorted(([d.key, d.label] for d in decisions), key=lambda r: r[0])
    raw = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def by_labeller(decisions: Iterable[Decision]) -> dict[str, list[Decision]]:
    out: dict[str, list[Decision]] = {}
    for decision in decisions:
        out.setdefault(decision.labeller, []).append(decision)
    return out


def label_statement(
    decisions: list[Decision], labeller: str, *, dataset_root: str, batch: str
) -> dict[str, Any]:
    """The statement a labeller signs: their decisions (by digest) about one dataset."""
    from glassbox.sign import make_statement, subject

    mine = [d for d in decisions if d.labeller == labeller]
    if not mine:
        raise InputError(f"no decisions by labeller {labeller!r} in batch {batch!r}")
    digest = decisions_digest(mine)
    predicate = {
        "labeller": labeller,
        "batch": batch,
        "dataset": {"rfc9162-sha256": dataset_root},
        "decisions": len(mine),
        "decisionsDigest": {"sha256": digest},
    }
    return make_statement(
        [subject(f"label-decisions:{labeller}", digest)], LABEL_PREDICATE_TYPE, predicate
    )


def sign_labels(
    decisions_path: Path, labeller: str, key: Any, *, dataset_root: str, batch: str | None = None
) -> dict[str, Any]:
    """A Sigstore bundle: ``labeller``'s signature over their decisions in ``decisions_path``."""
    from glassbox.sign import sign_statement

    decisions = read_decisions(decisions_path)
    statement = label_statement(
        decisions, labeller, dataset_root=dataset_root, batch=batch or decisions_path.name
    )
    return sign_statement(statement, key)


@dataclass
class LabelCheck:
    """Which decisions are covered by a valid signature of a listed labeller, and what is not."""

    covered: dict[str, Decision] = field(default_factory=dict)  # record key -> decision
    attestations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uncovered: list[Decision] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.uncovered

    def summary(self) -> dict[str, Any]:
        return {
            "covered": len(self.covered),
            "uncovered": [{"id": d.key, "labeller": d.labeller} for d in self.uncovered[:100]],
            "uncovered_count": len(self.uncovered),
            "problems": list(self.problems),
            "labellers": sorted({a["labeller"] for a in self.attestations if a.get("valid")}),
        }


def check_labels(
    decisions: list[Decision],
    bundles: Mapping[str, dict[str, Any]],
    labellers: Mapping[str, Any],
    *,
    dataset_root: str,
) -> LabelCheck:
    """Verify each bundle (by name) with the key of the labeller it names.

    ``labellers`` maps a labeller's name to their public key (the policy's list). A bundle is
    valid if it verifies with that labeller's key, is about ``dataset_root`` and its digest is
    that of the labeller's decisions in ``decisions``; decisions of labellers without a valid
    bundle are uncovered.
    """
    from glassbox.sign import bundle_envelope, parse_statement, public_key_id, verify_bundle

    result = LabelCheck()
    mine = by_labeller(decisions)
    valid: set[str] = set()
    for where, bundle in bundles.items():
        entry: dict[str, Any] = {"attestation": where, "valid": False}
        result.attestations.append(entry)
        try:
            claimed = parse_statement(bundle_envelope(bundle, where=where).payload, where=where)
            predicate = claimed.get("predicate") or {}
            labeller = predicate.get("labeller") if isinstance(predicate, dict) else None
            entry["labeller"] = labeller
            if claimed.get("predicateType") != LABEL_PREDICATE_TYPE or not isinstance(
                labeller, str
            ):
                result.problems.append(f"{where}: not a label-decisions attestation")
                continue
            if labeller not in labellers:
                result.problems.append(
                    f"{where}: labeller {labeller!r} is not in the list of labellers "
                    f"({', '.join(sorted(labellers)) or 'none'})"
                )
                continue
            statement = verify_bundle(bundle, labellers[labeller], where=where)
            entry["key_id"] = public_key_id(labellers[labeller])
        except GlassboxError as exc:
            result.problems.append(f"{exc}")
            continue
        predicate = statement["predicate"]
        root = (predicate.get("dataset") or {}).get("rfc9162-sha256")
        if root != dataset_root:
            result.problems.append(
                f"{where}: {labeller}'s decisions are about dataset {str(root)[:16]}…, "
                f"not the one labelled ({dataset_root[:16]}…)"
            )
            continue
        want = decisions_digest(mine.get(labeller, []))
        got = (predicate.get("decisionsDigest") or {}).get("sha256")
        entry["decisions"] = predicate.get("decisions")
        entry["decisions_sha256"] = got
        if got != want:
            result.problems.append(
                f"{where}: {labeller}'s decisions in the batch are not the ones they signed"
            )
            continue
        entry["valid"] = True
        valid.add(labeller)
    for labeller, items in mine.items():
        if labeller not in valid:
            result.uncovered.extend(items)
            continue
        for decision in items:
            if (
                decision.key in result.covered
                and result.covered[decision.key].label != decision.label
            ):
                result.problems.append(
                    f"labellers {result.covered[decision.key].labeller!r} and {labeller!r} "
                    f"disagree on record {decision.key!r}"
                )
            result.covered[decision.key] = decision
    if result.uncovered:
        names = sorted({d.labeller for d in result.uncovered})
        result.problems.append(
            f"{len(result.uncovered)} label decision(s) by {', '.join(names)} are not "
            "covered by a valid labeller signature"
        )
    return result


def read_attestation(path: Path) -> dict[str, Any]:
    """A labeller's bundle file, structurally checked (the signature is checked later)."""
    from glassbox.sign import parse_bundle

    return parse_bundle(
        read_small_file(path, MAX_ATTESTATION_BYTES, "attestation"), where=str(path)
    )


def apply_labels(ctx: Any) -> None:
    """The built-in label step (runs in the step's child process, under the audit hook).

    Streams the input, rewrites the label of each record a verified decision names, and keeps
    every other record's bytes exactly as they were (so a diff sees only relabels).
    """
    spec = ctx.params
    field_name = spec["label_field"]
    key_field = spec["key"]
    decisions = {d["id"]: d["label"] for d in spec["decisions"]}
    (name,) = ctx.inputs
    out_name = ctx.outputs[0]
    applied = 0
    with ctx.output(out_name).open("wb") as handle:
        for index, record in enumerate(ctx.input(name).records()):
            value = json.loads(record)
            if not isinstance(value, dict) or key_field not in value:
                raise InputError(f"record {index} has no key field {key_field!r}")
            key = key_text(value[key_field])
            if key in decisions and value.get(field_name) != decisions[key]:
                value[field_name] = decisions.pop(key)
                record = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
                applied += 1
            else:
                decisions.pop(key, None)
            handle.write(record + b"\n")
    if decisions:
        missing = ", ".join(sorted(decisions)[:5])
        raise InputError(f"label decisions name records that are not in the dataset: {missing}")

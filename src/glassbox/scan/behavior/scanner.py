"""``scan_behavior``: probe a classifier for backdoors and report them as scan findings.

This is what ``glassbox scan MODEL --behavior [--data DATASET] [--arch module:function]`` runs.
It emits the one findings format of the file scanner, so ``audit`` and SARIF output need
nothing new. Rule ids are stable:

``GBX-BEHAVIOR-BACKDOOR``   (high) the combined evidence flags a class as a backdoor target
``GBX-BEHAVIOR-TRIGGER``    the reverse-engineered trigger of a suspect class, as a PNG (high
                            when small and backed by the verdict, low alone, info otherwise)
``GBX-BEHAVIOR-POISON``     (high) suspect training records, by commitment index, with proofs
``GBX-BEHAVIOR-SIGNAL``     (low) one detector's flag that the combined verdict did not carry
``GBX-BEHAVIOR-SUMMARY``    (info) every detector's per-class scores: evidence that it was looked at
``GBX-BEHAVIOR-UNCALIBRATED`` (info) no clean reference model: scores are ranked within the model
``GBX-BEHAVIOR-NODATA``     (info) detectors that could not run for lack of data, and why
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from glassbox.errors import InputError
from glassbox.scan.behavior.analysis import BehaviorReport, analyze
from glassbox.scan.behavior.data import LabeledData, load_dataset, load_inputs
from glassbox.scan.behavior.loading import (
    ProbedModel,
    find_weights,
    load_classifier,
    wrap_module,
)
from glassbox.scan.behavior.png import encode_png, png_base64
from glassbox.scan.findings import Finding, Severity

if TYPE_CHECKING:
    from glassbox.digest import DatasetCommitment, RecordProof
    from glassbox.scan.behavior.tabular import FeatureScale

RULE_BACKDOOR = "GBX-BEHAVIOR-BACKDOOR"
RULE_TRIGGER = "GBX-BEHAVIOR-TRIGGER"
RULE_POISON = "GBX-BEHAVIOR-POISON"
RULE_SIGNAL = "GBX-BEHAVIOR-SIGNAL"
RULE_SUMMARY = "GBX-BEHAVIOR-SUMMARY"
RULE_UNCALIBRATED = "GBX-BEHAVIOR-UNCALIBRATED"
RULE_NODATA = "GBX-BEHAVIOR-NODATA"

ArchSpec = str | Callable[[], nn.Module]


def provenance_dir(model_path: Path) -> Path | None:
    """The build output directory holding this model's Glassbox provenance, if there is one."""
    from glassbox.pipeline.provenance import BUNDLE_NAME, STATEMENT_NAME

    directory = model_path if model_path.is_dir() else model_path.parent
    for candidate in (directory, directory.parent):
        if (candidate / STATEMENT_NAME).is_file() or (candidate / BUNDLE_NAME).is_file():
            return candidate
    return None


def load_built(
    model_path: Path,
    n_features: int | None,
    input_shape: tuple[int, ...] | None,
    what: str = "model",
) -> ProbedModel:
    """A Glassbox-built model: the recipe's factory, from the code the provenance names.

    ``glassbox.pipeline.load_built_model`` checks the code against the provenance's manifest and
    the weights against its subjects before importing anything, so what is probed is exactly
    the declared source and the declared bytes.
    """
    from glassbox.pipeline import load_built_model

    found = provenance_dir(model_path)
    if found is None:
        raise InputError(
            f"{model_path}: the {what} has no Glassbox provenance naming its architecture; "
            "give one with --arch module:function"
        )
    weights = find_weights(model_path) if model_path.is_file() else None
    module = load_built_model(
        found,
        model_dir=weights.parent if weights is not None else None,
        weights=weights.name if weights is not None else "model.safetensors",
    )
    return wrap_module(module, n_features, input_shape)


def declared_training_data(model_path: Path) -> tuple[Path, str | None] | None:
    """The training dataset a build declared (named ``train``, else the first), if present.

    The file must still match the commitment in the provenance: suspect records are named by
    their index in *that* commitment.
    """
    from glassbox.digest import commit_dataset
    from glassbox.pipeline.provenance import load_provenance

    found = provenance_dir(model_path)
    if found is None:
        return None
    prov = load_provenance(found)
    datasets = prov.external.get("datasets") or []
    if not datasets:
        return None
    chosen = next((d for d in datasets if d.get("name") == "train"), datasets[0])
    annotations = (prov.dependency("code") or {}).get("annotations", {})
    local = annotations.get("localPath")
    if not isinstance(local, str):
        return None
    path = (Path(local) / str(annotations.get("recipe", "recipe.toml"))).parent / chosen["path"]
    fmt = chosen.get("format")
    if not path.is_file():
        raise InputError(f"{path}: the build's training data is not here; give it with --data")
    root = commit_dataset(path, fmt=fmt).root.hex()
    if root != chosen.get("commitment"):
        raise InputError(f"{path}: does not match the build's dataset commitment ({root[:16]}...)")
    return path, fmt


def _load(
    path: Path | ProbedModel,
    arch: ArchSpec | None,
    n_features: int | None,
    input_shape: tuple[int, ...] | None,
    what: str,
) -> ProbedModel:
    if isinstance(path, ProbedModel):
        return path
    if arch is None:
        return load_built(Path(path), n_features, input_shape, what)
    return load_classifier(Path(path), arch, n_features, input_shape=input_shape)


def scan_behavior(
    model_path: str | Path,
    *,
    data: str | Path | LabeledData | None = None,
    data_keys: str | tuple[str, str] | None = None,
    clean: str | Path | LabeledData | None = None,
    arch: ArchSpec | None = None,
    reference: str | Path | ProbedModel | None = None,
    reference_arch: ArchSpec | None = None,
    input_shape: tuple[int, ...] | None = None,
    scale: float | None = None,
    fmt: str | None = None,
    seed: int = 0,
    trigger_steps: int = 300,
    trigger_dir: str | Path | None = None,
    max_proofs: int = 256,
    modality: str = "auto",
) -> list[Finding]:
    """Probe the classifier at ``model_path`` for backdoors; findings as the file scanner's.

    ``data`` is the training set (a committed dataset file, a NumPy ``.npy``/``.npz`` or a
    PyTorch tensor file, or arrays; ``data_keys`` names the inputs and labels arrays of an
    ``.npz``/tensor file, as a pair or as ``"INPUTS,LABELS"``): the record-level detectors
    name suspect records by their index (with an inclusion proof for a committed dataset).
    ``clean`` is a sample of clean inputs (same formats; labels optional, else the model's
    predictions), for the input-level detectors when there is no training set. With
    neither, only the data-free detector runs.
    ``reference`` is a clean model of the same task (a rebuild from the declared sources);
    without one, scores are ranked within the model only, and said so.
    ``modality`` (``auto``, ``image`` or ``tabular``): a table of features is probed through a
    per-feature scale fitted on the data (see ``tabular``); ``auto`` guesses from the data.
    """
    model_path = Path(model_path)
    where = str(model_path)
    if not model_path.exists():
        raise InputError(f"{model_path}: no such model file or directory")
    if data is None:
        declared = declared_training_data(model_path)
        if declared is not None:
            data, fmt = declared[0], fmt or declared[1]
    if isinstance(data_keys, str):
        from glassbox.scan.behavior.arrays import parse_keys

        data_keys = parse_keys(data_keys)
    dataset: LabeledData | None = None
    if isinstance(data, LabeledData):
        dataset = data
    elif data is not None:
        dataset = load_dataset(Path(data), fmt=fmt, scale=scale, keys=data_keys)
    sample: LabeledData | None = None
    sample_labelled = True
    if isinstance(clean, LabeledData):
        sample = clean
    elif clean is not None:
        sample, sample_labelled = load_inputs(Path(clean), scale=scale, keys=data_keys)
    shaped = dataset if dataset is not None else sample
    n_features = int(np.prod(shaped.images.shape[1:])) if shaped is not None else None
    table = _tabular_scale(shaped, modality)
    if table is not None:
        from glassbox.scan.behavior.tabular import to_unit_data

        dataset = to_unit_data(dataset, table) if dataset is not None else None
        sample = to_unit_data(sample, table) if sample is not None else None
    model = _tabular(_load(model_path, arch, n_features, input_shape, "model"), table)
    if sample is not None and not sample_labelled:
        images = sample.images.reshape((len(sample.images), *model.image_shape))
        sample.labels = model.predict(images).argmax(1).astype(np.int64)
    ref_model = None
    if reference is not None:
        ref_model = _load(
            reference if isinstance(reference, ProbedModel) else Path(reference),
            reference_arch or arch,
            n_features if n_features is not None else int(np.prod(model.image_shape)),
            input_shape,
            "reference model",
        )
        ref_model = _tabular(ref_model, table)
    report = analyze(
        model,
        dataset,
        clean=sample,
        reference=ref_model,
        seed=seed,
        trigger_steps=trigger_steps,
    )
    if table is not None:
        from glassbox.scan.behavior.tabular import rescore

        report = rescore(report, dataset.labels if dataset is not None else None)
    findings = report_findings(
        report,
        where=where,
        member=_weights_name(model_path),
        dataset=dataset,
        trigger_dir=Path(trigger_dir) if trigger_dir is not None else None,
        max_proofs=max_proofs,
    )
    if table is not None:
        from glassbox.scan.behavior.tabular import annotate_findings

        assert shaped is not None
        findings = annotate_findings(findings, report, table, shaped.columns)
    if report.skipped:
        have = "no training data" + ("" if sample is not None else " and no clean sample")
        if dataset is not None:
            have = "training data given"
        if sample is not None and not sample_labelled:
            have += " (the clean sample is unlabelled: labelled with the model's predictions)"
        findings.append(
            Finding(
                RULE_NODATA,
                Severity.INFO,
                where,
                f"{have}: ran {', '.join(report.detectors)}; skipped "
                + "; ".join(
                    f"{', '.join(n for n, w in report.skipped.items() if w == why)} ({why})"
                    for why in dict.fromkeys(report.skipped.values())
                ),
                member=_weights_name(model_path),
                subject="behavior",
                evidence={"ran": list(report.detectors), "skipped": dict(report.skipped)},
            )
        )
    return findings


def _tabular_scale(shaped: LabeledData | None, modality: str) -> FeatureScale | None:
    """The per-feature scale to probe a table through, or ``None`` for images (``tabular``)."""
    from glassbox.scan.behavior.tabular import (
        FeatureScale,
        check_modality,
        looks_tabular,
        raw_features,
    )

    check_modality(modality)
    if shaped is None:
        if modality == "tabular":
            raise InputError("--modality tabular needs data (--data or --clean) to scale features")
        return None
    if modality == "image" or (modality == "auto" and not looks_tabular(shaped)):
        return None
    return FeatureScale.fit(raw_features(shaped))


def _tabular(model: ProbedModel, table: FeatureScale | None) -> ProbedModel:
    if table is None:
        return model
    from glassbox.scan.behavior.tabular import adapt_model

    return adapt_model(model, table)


def _weights_name(model_path: Path) -> str | None:
    if model_path.is_file():
        return None
    try:
        return find_weights(model_path).name
    except InputError:
        return None


def _class_evidence(report: BehaviorReport, c: int) -> dict[str, Any]:
    return {
        name: {
            "score": round(float(d.class_scores[c]), 4),
            "threshold": d.threshold,
            "flagged": c in d.flagged,
            "calibrated": d.calibrated,
        }
        for name, d in report.detectors.items()
    }


def report_findings(
    report: BehaviorReport,
    *,
    where: str,
    member: str | None = None,
    dataset: LabeledData | None = None,
    trigger_dir: Path | None = None,
    max_proofs: int = 256,
) -> list[Finding]:
    """Turn an analysis into findings (see the module docstring for the rule ids)."""
    findings: list[Finding] = []
    calibrated = next(iter(report.detectors.values())).calibrated
    flagged = report.flagged
    trigger = report.detectors.get("trigger")
    trigger_flags = set(trigger.flagged) if trigger is not None else set()
    for c in flagged:
        evidence = {
            "class": c,
            "combined_score": round(float(report.combined[c]), 4),
            "detectors": _class_evidence(report, c),
            "calibrated": calibrated,
            "suspect_records": int(np.isin(report.suspects, _class_records(dataset, c)).sum()),
        }
        findings.append(
            Finding(
                RULE_BACKDOOR,
                Severity.HIGH,
                where,
                f"class {c} behaves like a backdoor target "
                f"(combined evidence {report.combined[c]:.2f}x the threshold)",
                member=member,
                subject=f"class {c}",
                evidence=evidence,
            )
        )
    for c in sorted(trigger_flags | set(flagged)) if report.triggers else []:
        findings.append(_trigger_finding(report, c, where, member, trigger_dir, c in flagged))
    if dataset is not None:
        for c in flagged:
            idx = report.suspects[np.isin(report.suspects, _class_records(dataset, c))]
            if len(idx):
                findings.append(_poison_finding(idx, c, dataset, where, member, max_proofs))
    for name, det in report.detectors.items():
        if name == "trigger":
            continue
        for c in det.flagged:
            if c in flagged:
                continue
            findings.append(
                Finding(
                    RULE_SIGNAL,
                    Severity.LOW,
                    where,
                    f"{name} flags class {c}, but the other detectors do not support it",
                    member=member,
                    subject=f"class {c}",
                    evidence={
                        "class": c,
                        "detector": name,
                        "detectors": _class_evidence(report, c),
                    },
                )
            )
    findings.append(
        Finding(
            RULE_SUMMARY,
            Severity.INFO,
            where,
            f"behavioural scan: {len(flagged)} of {report.num_classes} classes flagged "
            f"(model score {report.score:.2f}; >= 1 flags); "
            + ", ".join(f"{n} {d.seconds:.1f}s" for n, d in report.detectors.items()),
            member=member,
            subject="behavior",
            evidence={
                "records": report.records,
                "combined": [round(float(v), 4) for v in report.combined],
                "skipped": dict(report.skipped),
                # Each detector's share of the verdict: its score in threshold units for the
                # classes the verdict flagged (the combined score is the second-best of these,
                # or the best over 2).
                "contributions": {
                    str(c): {
                        n: round(float(d.normalized[c]), 4) for n, d in report.detectors.items()
                    }
                    for c in flagged
                },
                "detectors": {
                    n: {
                        "class_scores": [round(float(v), 4) for v in d.class_scores],
                        "threshold": d.threshold,
                        "calibrated": d.calibrated,
                        "seconds": round(d.seconds, 3),
                        **{k: v for k, v in d.details.items() if not k.startswith("_")},
                    }
                    for n, d in report.detectors.items()
                },
            },
        )
    )
    if not calibrated:
        findings.append(
            Finding(
                RULE_UNCALIBRATED,
                Severity.INFO,
                where,
                "no clean reference model given: scores are ranked within this model only, so a "
                "naturally multi-modal class can look suspicious (a rebuild from the declared "
                "sources on clean data serves as a reference)",
                member=member,
                subject="behavior",
            )
        )
    return findings


def _class_records(dataset: LabeledData | None, c: int) -> np.ndarray:
    if dataset is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(dataset.labels == c)


def _trigger_finding(
    report: BehaviorReport,
    c: int,
    where: str,
    member: str | None,
    trigger_dir: Path | None,
    backed: bool,
) -> Finding:
    trig = report.triggers[c]
    det = report.detectors["trigger"]
    image = trig.image()
    evidence: dict[str, Any] = {
        "class": c,
        "anomaly_index": round(float(det.class_scores[c]), 4),
        "threshold": det.threshold,
        "calibrated": det.calibrated,
        "mask_l1": round(trig.l1, 4),
        "median_mask_l1": round(float(np.median([t.l1 for t in report.triggers])), 4),
        "attack_success": round(trig.success, 4),
        "trigger_png_base64": png_base64(image, scale=8),
    }
    if trigger_dir is not None:
        trigger_dir.mkdir(parents=True, exist_ok=True)
        out = trigger_dir / f"trigger-class-{c}.png"
        out.write_bytes(encode_png(image, scale=8))
        evidence["trigger_png"] = str(out)
    # High when the combined verdict backs it; low alone (one detector's flag, as for
    # GBX-BEHAVIOR-SIGNAL); info when shown only as the picture of a class flagged otherwise.
    severity = Severity.INFO
    if c in det.flagged:
        severity = Severity.HIGH if backed else Severity.LOW
    return Finding(
        RULE_TRIGGER,
        severity,
        where,
        f"class {c}: a trigger covering {trig.l1:.1f} pixels sends {trig.success:.0%} of other "
        f"inputs to it (anomaly index {det.class_scores[c]:.1f}, threshold {det.threshold:g})",
        member=member,
        subject=f"class {c}",
        evidence=evidence,
    )


def _poison_finding(
    idx: np.ndarray,
    c: int,
    dataset: LabeledData,
    where: str,
    member: str | None,
    max_proofs: int,
) -> Finding:
    indices = [int(i) for i in idx]
    evidence: dict[str, Any] = {"class": c, "records": indices, "count": len(indices)}
    if dataset.sha256 is not None and dataset.path is not None:
        evidence["dataset"] = str(dataset.path)
        evidence["sha256"] = dataset.sha256
        evidence["inclusion_proofs"] = []
        evidence["note"] = (
            "records are row indices of an array file, which has no record commitment: no "
            "inclusion proofs; the file's SHA-256 binds the rows to the bytes scanned"
        )
    elif dataset.path is not None:
        from glassbox.digest import commit_dataset

        commitment = dataset.commitment or commit_dataset(dataset.path, fmt=dataset.fmt)
        evidence["dataset"] = str(dataset.path)
        evidence["commitment"] = commitment.to_dict()
        proofs = _record_proofs(dataset.path, commitment, indices[:max_proofs])
        evidence["inclusion_proofs"] = [p.to_dict() for p in proofs]
        evidence["proofs_omitted"] = max(0, len(indices) - max_proofs)
    else:
        evidence["inclusion_proofs"] = []
        evidence["note"] = "data given as arrays, not a committed dataset file: no proofs"
    return Finding(
        RULE_POISON,
        Severity.HIGH,
        where,
        f"{len(indices)} training records labelled {c} look poisoned "
        + (
            "(named by row index in the array file)"
            if dataset.sha256 is not None
            else "(named by index in the dataset commitment)"
        ),
        member=member,
        subject=f"class {c}",
        evidence=evidence,
    )


def _record_proofs(
    path: Path, commitment: DatasetCommitment, indices: list[int]
) -> list[RecordProof]:
    """Inclusion proofs for ``indices`` from one read of the dataset, checked against the
    commitment the scan was given (the file must not have changed since)."""
    from glassbox.digest import prove_records

    proofs = prove_records(path, indices, fmt=commitment.fmt)
    if proofs and proofs[0].root != commitment.root:
        raise InputError(f"{path}: the dataset changed while it was being scanned")
    return proofs

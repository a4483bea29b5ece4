"""Tabular classifiers: the same detectors on feature vectors instead of images.

The detectors work in a unit box: the trigger search blends a pattern in ``[0, 1]`` into the
input under a mask, STRIP superimposes inputs and clips to ``[0, 1]``, the maximum-margin search
stays inside ``[0, 1]``. Images are scaled into that box by one divisor (the data's maximum
pixel). Tabular features are not: each column has its own unit and range (an area of 2000 beside
a smoothness of 0.1), and the model takes them raw or standardised in its own way. So a tabular
model is probed through an affine map per feature, fitted on the data the user gave:

    raw = low + u * span,  u in [0, 1],  [low, low + span] = the column's range widened by
    ``MARGIN`` of itself on each side

and put in front of the model, so every detector keeps working in its box while the model sees
values of its own units. The trigger search's mask is then a mask over *features* (a 1 x n
"image"), and a trigger is a set of features and the raw values they are set to, which is how
it is reported (``describe_trigger``). The margin lets the search reach values somewhat past
what the data shows, since a trigger value is often out of distribution and a clean sample
(``--clean``) does not contain it. Record-level detectors read the penultimate layer and are
unchanged.

A dataset is read as tabular when its width is not a square (no 8x8 image), when it has negative
values, or when its columns' ranges differ by more than ``SCALE_SPREAD`` times (pixels share
one range); image directories and multi-channel arrays are images. ``modality`` overrides the
guess (a flattened non-square image, or images normalised to negative values, need
``--modality image``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from glassbox.errors import InputError
from glassbox.scan.behavior.data import LabeledData
from glassbox.scan.behavior.loading import ProbedModel

if TYPE_CHECKING:
    from glassbox.scan.behavior.analysis import BehaviorReport
    from glassbox.scan.findings import Finding

#: How far past the data's range, as a share of the range on each side, the unit box reaches.
MARGIN = 0.25
#: Columns whose ranges differ by more than this factor (max over median) are not pixels.
SCALE_SPREAD = 20.0
MODALITIES = ("auto", "image", "tabular")
#: A mask weight above this counts a feature as part of a reported trigger.
MASK_ON = 0.5


def looks_tabular(data: LabeledData) -> bool:
    """Whether ``data`` is a table of features rather than images (see the module docstring).

    Class folders of images and multi-channel arrays ``(N, C, H, W)`` are images; a flat row
    whose width is not a square is a table. A square width (pixels of a flattened 1-channel
    image, or a table with 16, 25, 64... columns) is decided by the values: negative values, or
    columns whose ranges differ by more than ``SCALE_SPREAD`` times, make it a table.
    """
    if data.classes is not None:
        return False
    channels, height, width = (int(v) for v in data.images.shape[1:4])
    if channels > 1 and height > 1 and width > 1:
        return False
    if height == 1:
        return True
    flat = raw_features(data)
    if flat.min() < 0:
        return True
    ranges = flat.max(0) - flat.min(0)
    ranges = ranges[ranges > 0]
    if len(ranges) == 0:
        return False
    return bool(ranges.max() / float(np.median(ranges)) > SCALE_SPREAD)


def raw_features(data: LabeledData) -> np.ndarray:
    """Records as ``(N, features)`` in the file's own units (the loader's divisor undone)."""
    flat = data.images.reshape(len(data.images), -1).astype(np.float64)
    return flat * data.divisor


@dataclass(frozen=True)
class FeatureScale:
    """The per-feature map ``raw = low + u * span`` between the unit box and raw values."""

    low: np.ndarray
    span: np.ndarray
    margin: float = MARGIN

    @classmethod
    def fit(cls, raw: np.ndarray, margin: float | None = None) -> FeatureScale:
        margin = MARGIN if margin is None else margin
        lo = raw.min(0)
        rng = raw.max(0) - lo
        # A constant column still gets a range: the search may move it (by its own size, or 1).
        rng = np.where(rng > 0, rng, np.maximum(np.abs(lo), 1.0))
        return cls(lo - margin * rng, rng * (1.0 + 2.0 * margin), margin)

    def to_unit(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray((raw - self.low) / self.span, dtype=np.float32)

    def to_raw(self, unit: np.ndarray) -> np.ndarray:
        return np.asarray(self.low + unit * self.span, dtype=np.float64)


class FromUnit(nn.Module):
    """``raw = low + u * span``, reshaped to what the wrapped network takes."""

    low: torch.Tensor
    span: torch.Tensor

    def __init__(self, scale: FeatureScale, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("low", torch.from_numpy(scale.low).float())
        self.register_buffer("span", torch.from_numpy(scale.span).float())
        self.input_shape = input_shape

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        raw = self.low + u.reshape(u.shape[0], -1) * self.span
        return raw.reshape((u.shape[0], *self.input_shape))


def adapt_model(model: ProbedModel, scale: FeatureScale) -> ProbedModel:
    """``model`` taking unit-box feature vectors ``(N, 1, 1, n)``; features read as before."""
    n = len(scale.low)
    if int(np.prod(model.input_shape)) != n:
        raise InputError(
            f"the model takes {int(np.prod(model.input_shape))} inputs, the table has {n} features"
        )
    module = nn.Sequential(FromUnit(scale, model.input_shape), model.module)
    module.eval()
    return ProbedModel(
        module, (n,), (1, 1, n), model.num_classes, model.feature_module, modality="tabular"
    )


def prepare(model: ProbedModel, data: LabeledData) -> tuple[ProbedModel, LabeledData, FeatureScale]:
    """The model and its data as the detectors see a table (what ``scan_behavior`` does)."""
    scale = FeatureScale.fit(raw_features(data))
    return adapt_model(model, scale), to_unit_data(data, scale), scale


def to_unit_data(data: LabeledData, scale: FeatureScale) -> LabeledData:
    """``data`` as unit-box feature vectors ``(N, 1, 1, n)``; path, digest and names kept."""
    unit = scale.to_unit(raw_features(data))
    return dataclasses.replace(data, images=unit.reshape(len(unit), 1, 1, -1), divisor=1.0)


def describe_trigger(
    mask: np.ndarray, pattern: np.ndarray, scale: FeatureScale, columns: list[str] | None
) -> list[dict[str, Any]]:
    """The features a reverse-engineered trigger sets, strongest first, with raw values.

    ``mask`` is ``(1, n)`` and ``pattern`` ``(C, 1, n)`` as the trigger search returns them for a
    feature vector. A feature is listed when its mask weight is over ``MASK_ON``; the value is
    the pattern in the column's own units, and ``beyond_data`` says whether it lies outside the
    range the data showed (an out-of-distribution trigger value).
    """
    weights = np.asarray(mask, dtype=np.float64).reshape(-1)
    values = scale.to_raw(np.asarray(pattern, dtype=np.float64).reshape(-1, len(weights)).mean(0))
    out: list[dict[str, Any]] = []
    m = scale.margin
    data_lo = scale.low + scale.span * m / (1 + 2 * m)
    data_hi = scale.low + scale.span * (1 + m) / (1 + 2 * m)
    for i in np.argsort(-weights):
        if weights[i] <= MASK_ON:
            break
        item: dict[str, Any] = {
            "feature": int(i),
            "mask": round(float(weights[i]), 4),
            "value": float(f"{values[i]:.6g}"),
            "beyond_data": bool(values[i] < data_lo[i] or values[i] > data_hi[i]),
        }
        if columns is not None and i < len(columns):
            item["name"] = columns[i]
        out.append(item)
    return out


#: Detectors withheld from the verdict on a two-class table without a reference (``rescore``).
TWO_CLASS_WITHHELD = (
    "trigger",
    "strip",
    "max-margin",
    "neighbours",
    "spectral",
    "activation-clustering",
)
TWO_CLASS_WHY = (
    "two classes and no reference model: ranking a class against the only other one, or "
    "splitting it by STRIP confidence, cannot tell a naturally bimodal class from a poisoned one"
)


def rescore(report: BehaviorReport, labels: np.ndarray | None) -> BehaviorReport:
    """The verdict for a table: what can be judged on it, and how much each signal may decide.

    Two rules, both from the ``tab-dev`` zoo and the miniature test zoo (never ``tab-heldout2``):

    * On a two-class task without a reference, the trigger search, STRIP's class drop and the
      maximum margin rank a class against the others (a robust index over two values is a
      constant or half their difference), and so does the neighbours detector (each class's
      share of records whose input-space neighbours disagree, as a robust index); spectral
      signatures and activation clustering split a class and ask whether STRIP's most
      confident records fall on one side, which a confident binary model does by nature (the
      first clean breast-cancer model of ``tab-dev`` was flagged that way).
      Those detectors move to ``skipped`` with the reason.
    * The all-to-all check may support a verdict but not make one alone (its score is capped
      just under ``SOLO`` times its threshold). It asks whether the classes' suspect halves are
      shifted along a shared direction; tabular classes often have sub-populations on shared
      axes (a latent binary factor, or ``make_classification``'s clusters on hypercube
      vertices), and a clean six-class model was flagged by it alone at 2.6x its threshold.
    """
    from glassbox.scan.behavior.analysis import SOLO, combine

    calibrated = any(d.calibrated for d in report.detectors.values())
    kept = dict(report.detectors)
    skipped = dict(report.skipped)
    if report.num_classes < 3 and not calibrated:
        for name in TWO_CLASS_WITHHELD:
            if name in kept and len(kept) > 1:
                del kept[name]
                skipped[name] = TWO_CLASS_WHY
    rows = []
    for name, det in kept.items():
        row = det.normalized
        if name == "all-to-all":
            row = np.minimum(row, SOLO * (1.0 - 1e-6))
        rows.append(row)
    combined = combine(np.stack(rows))
    suspects = report.suspects
    if labels is not None and len(suspects):
        flagged = np.flatnonzero(combined >= 1.0)
        suspects = suspects[np.isin(labels[suspects], flagged)]
    return dataclasses.replace(
        report,
        detectors=kept,
        triggers=report.triggers if "trigger" in kept else [],
        combined=combined,
        suspects=suspects,
        skipped=skipped,
    )


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise InputError(f"--modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    return modality


def annotate_findings(
    findings: list[Finding], report: BehaviorReport, scale: FeatureScale, columns: list[str] | None
) -> list[Finding]:
    """Say in the findings that the model was probed as a table: triggers as features and values.

    The trigger finding's picture is a 1 x n strip, which says little about a table; its
    evidence gets the list of features the trigger sets (``describe_trigger``) and its message
    names them.
    """
    out: list[Finding] = []
    for f in findings:
        if f.rule_id == "GBX-BEHAVIOR-SUMMARY":
            evidence = {
                **f.evidence,
                "modality": "tabular",
                "feature_scale": {"margin": scale.margin, "features": len(scale.low)},
            }
            f = dataclasses.replace(f, message="tabular " + f.message, evidence=evidence)
        elif f.rule_id == "GBX-BEHAVIOR-TRIGGER":
            c = int(f.evidence["class"])
            trig = report.triggers[c]
            feats = describe_trigger(trig.mask, trig.pattern, scale, columns)
            named = ", ".join(
                f"{x.get('name', '#' + str(x['feature']))}={x['value']:g}" for x in feats[:6]
            )
            det = report.detectors["trigger"]
            message = (
                f"class {c}: a trigger setting {len(feats)} feature(s) "
                f"({named or 'none over half-masked'}; mask {trig.l1:.1f}) sends "
                f"{trig.success:.0%} of other inputs to it (anomaly index "
                f"{det.class_scores[c]:.1f}, threshold {det.threshold:g})"
            )
            evidence = {**f.evidence, "modality": "tabular", "trigger_features": feats}
            f = dataclasses.replace(f, message=message, evidence=evidence)
        out.append(f)
    return out

"""Behavioural checks: look for what a classifier learned that nobody declared (backdoors).

Weights are loaded safely (safetensors or ``torch.load(weights_only=True)``) into an
architecture the user or the recipe names; then a trigger search (Neural Cleanse style),
representation detectors on the penultimate layer (signed spectral signatures, activation
clustering, SPECTRE-style robust spectral scores and an all-to-all cross-class check), an
input-perturbation signal (STRIP) and a data-free maximum-margin statistic (MM-BD) are weighed
per class, calibrated against a clean reference model when one is given. Training data may be
a committed dataset or NumPy/PyTorch arrays; with none, what can run data-free runs. Results
are ordinary scan findings.
"""

from glassbox.scan.behavior.analysis import BehaviorReport, DetectorResult, TriggerSearch, analyze
from glassbox.scan.behavior.arrays import read_arrays
from glassbox.scan.behavior.data import LabeledData, load_dataset, load_inputs
from glassbox.scan.behavior.loading import (
    ProbedModel,
    load_classifier,
    load_state_dict,
    resolve_factory,
    wrap_module,
)
from glassbox.scan.behavior.max_margin import max_margins
from glassbox.scan.behavior.neural_cleanse import Trigger, reverse_engineer
from glassbox.scan.behavior.png import encode_png
from glassbox.scan.behavior.robust_spectral import que_scores, robust_spectral_splits
from glassbox.scan.behavior.scanner import (
    RULE_BACKDOOR,
    RULE_NODATA,
    RULE_POISON,
    RULE_SIGNAL,
    RULE_SUMMARY,
    RULE_TRIGGER,
    RULE_UNCALIBRATED,
    report_findings,
    scan_behavior,
)

__all__ = [
    "RULE_BACKDOOR",
    "RULE_NODATA",
    "RULE_POISON",
    "RULE_SIGNAL",
    "RULE_SUMMARY",
    "RULE_TRIGGER",
    "RULE_UNCALIBRATED",
    "BehaviorReport",
    "DetectorResult",
    "LabeledData",
    "ProbedModel",
    "Trigger",
    "TriggerSearch",
    "analyze",
    "encode_png",
    "load_classifier",
    "load_dataset",
    "load_inputs",
    "load_state_dict",
    "max_margins",
    "que_scores",
    "read_arrays",
    "report_findings",
    "resolve_factory",
    "reverse_engineer",
    "robust_spectral_splits",
    "scan_behavior",
    "wrap_module",
]

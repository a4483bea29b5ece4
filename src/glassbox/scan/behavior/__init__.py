"""Behavioural checks: look for what a classifier learned that nobody declared (backdoors).

Weights are loaded safely (safetensors or ``torch.load(weights_only=True)``) into an
architecture the user or the recipe names; then a trigger search (Neural Cleanse style),
representation detectors on the penultimate layer (signed spectral signatures, activation
clustering) and an input-perturbation signal (STRIP) are weighed per class, calibrated against a
clean reference model when one is given. Results are ordinary scan findings.
"""

from glassbox.scan.behavior.analysis import BehaviorReport, DetectorResult, analyze
from glassbox.scan.behavior.data import LabeledData, load_dataset
from glassbox.scan.behavior.loading import (
    ProbedModel,
    load_classifier,
    load_state_dict,
    resolve_factory,
    wrap_module,
)
from glassbox.scan.behavior.neural_cleanse import Trigger, reverse_engineer
from glassbox.scan.behavior.png import encode_png
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
    "analyze",
    "encode_png",
    "load_classifier",
    "load_dataset",
    "load_state_dict",
    "report_findings",
    "resolve_factory",
    "reverse_engineer",
    "scan_behavior",
    "wrap_module",
]

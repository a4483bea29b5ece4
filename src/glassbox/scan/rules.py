"""Stable rule ids. Ids are a contract (audit, logs and SARIF consumers key on them): never
rename or reuse one; add new ids instead.

Severity policy: whatever the scanner could not analyse to the end (a malformed or truncated
stream, an unreadable file, a limit reached, a file whose name claims a format its bytes do not
hold) is HIGH, so it fails the default gate (``--fail-on high``): a stream the scanner cannot
finish is one the real loader may still run, and an unanalysed file is not a safe one."""

from __future__ import annotations

from dataclasses import dataclass

from glassbox.scan.findings import Severity


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str


_RULES = [
    Rule("GBX-PKL-001", Severity.CRITICAL, "Pickle imports a dangerous callable"),
    Rule("GBX-PKL-002", Severity.HIGH, "Pickle imports a callable that is not allowlisted"),
    Rule(
        "GBX-PKL-003", Severity.HIGH, "Pickle names a callable that cannot be resolved statically"
    ),
    Rule("GBX-PKL-004", Severity.HIGH, "Pickle uses copyreg extension codes"),
    Rule("GBX-PKL-005", Severity.HIGH, "Pickle mutates an imported object"),
    Rule("GBX-PKL-006", Severity.HIGH, "Pickle injects special attributes through BUILD"),
    Rule("GBX-PKL-007", Severity.HIGH, "Malformed or truncated pickle"),
    Rule("GBX-PKL-008", Severity.LOW, "Pickle uses an unrecognised persistent id"),
    Rule("GBX-PKL-009", Severity.LOW, "Object array needs pickle to load"),
    Rule("GBX-PKL-010", Severity.HIGH, "Tensor view reaches outside its storage"),
    Rule("GBX-ZIP-001", Severity.HIGH, "Archive member path escapes the archive"),
    Rule("GBX-ZIP-002", Severity.HIGH, "Zip local and central headers disagree"),
    Rule("GBX-ZIP-003", Severity.HIGH, "Archive bomb (size, ratio or entry count)"),
    Rule("GBX-ZIP-004", Severity.MEDIUM, "Zip member fails its CRC or has unusual flags"),
    Rule("GBX-ZIP-005", Severity.HIGH, "Duplicate or overlapping archive members"),
    Rule("GBX-ZIP-006", Severity.HIGH, "Malformed archive"),
    Rule("GBX-ZIP-007", Severity.HIGH, "Archive contains links or special files"),
    Rule("GBX-ZIP-008", Severity.HIGH, "File is both another format and a zip archive"),
    Rule("GBX-ZIP-009", Severity.HIGH, "Zip readers would see different members"),
    Rule("GBX-LIM-001", Severity.HIGH, "Containers nested too deeply"),
    Rule("GBX-LIM-002", Severity.HIGH, "Scan limit reached (time or size); file partly scanned"),
    Rule("GBX-FS-001", Severity.HIGH, "Symlink points outside the scanned tree"),
    Rule("GBX-FS-002", Severity.HIGH, "File could not be read"),
    Rule("GBX-KER-001", Severity.CRITICAL, "Keras config runs code or loads from a path"),
    Rule("GBX-KER-002", Severity.MEDIUM, "Keras config references a custom or unknown module"),
    Rule("GBX-KER-003", Severity.HIGH, "Malformed Keras model config"),
    Rule("GBX-GGUF-001", Severity.HIGH, "GGUF header or tensor table inconsistent with file"),
    Rule("GBX-TPL-001", Severity.CRITICAL, "Chat template contains a Jinja sandbox-escape pattern"),
    Rule("GBX-TPL-002", Severity.MEDIUM, "Chat template cannot be parsed"),
    Rule("GBX-ONNX-001", Severity.HIGH, "ONNX external data path leaves the model directory"),
    Rule("GBX-ONNX-002", Severity.HIGH, "ONNX model uses a non-standard operator domain"),
    Rule("GBX-ONNX-003", Severity.HIGH, "Malformed ONNX model"),
    Rule("GBX-TS-001", Severity.MEDIUM, "TorchScript code calls a file-reading or custom op"),
    Rule("GBX-ST-001", Severity.HIGH, "safetensors header invalid or out of bounds"),
    Rule("GBX-NPY-001", Severity.HIGH, "Malformed numpy array header"),
    Rule("GBX-H5-001", Severity.HIGH, "HDF5 file not analysed (h5py not installed)"),
    Rule(
        "GBX-CODE-001",
        Severity.HIGH,
        "Config makes the loader import Python code shipped with the model (auto_map)",
    ),
    Rule(
        "GBX-CODE-002",
        Severity.HIGH,
        "TorchServe archive ships handler or model code that the server runs",
    ),
    Rule("GBX-TF-001", Severity.HIGH, "SavedModel graph uses file-system or Python-function ops"),
    Rule("GBX-CFG-001", Severity.HIGH, "Config instantiates a callable that is not allowlisted"),
    Rule("GBX-CFG-002", Severity.LOW, "YAML config cannot be parsed"),
    Rule(
        "GBX-FMT-001",
        Severity.HIGH,
        "File claims a model format by its name but its content is not that format",
    ),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}

"""What a file's name claims it is, checked against what its bytes turned out to be.

Detection is by content (``detect.py``), so a renamed pickle is still a pickle. The reverse gap is
this one: a file named ``pytorch_model.bin`` whose bytes no scanner recognised was "0 findings",
and a pipeline gate passed on garbage, or on a payload in a format the scanner cannot read yet.
A loader picks its parser by the name (``torch.load`` on ``*.pt``, ``np.load`` on ``*.npy``), so
a file that claims a model format by name and holds nothing the scanner could analyse as that
format is a finding that fails the default gate.
"""

from __future__ import annotations

from pathlib import Path

from glassbox.scan.context import ScanContext

_PICKLE_LIKE = frozenset(
    {"pickle", "zip", "tar", "gzip", "bz2", "xz", "zlib", "lzma", "lz4", "zstd", "zfile"}
)
# Suffix -> the formats (``detect.Format`` values) a real file with that name is read as.
CLAIMS: dict[str, frozenset[str]] = {
    ".pt": _PICKLE_LIKE,
    ".pth": _PICKLE_LIKE,
    ".bin": _PICKLE_LIKE,
    ".ckpt": _PICKLE_LIKE,
    ".pkl": _PICKLE_LIKE,
    ".pickle": _PICKLE_LIKE,
    ".joblib": _PICKLE_LIKE,
    ".dill": _PICKLE_LIKE,
    ".sav": _PICKLE_LIKE,
    ".mar": frozenset({"zip", "torchserve-mar"}),
    ".nemo": frozenset({"tar", "gzip", "zip"}),
    ".safetensors": frozenset({"safetensors"}),
    ".gguf": frozenset({"gguf"}),
    ".onnx": frozenset({"onnx"}),
    ".h5": frozenset({"hdf5"}),
    ".hdf5": frozenset({"hdf5"}),
    ".keras": frozenset({"zip", "hdf5"}),
    ".npy": frozenset({"npy"}),
    ".npz": frozenset({"zip"}),
}


def claimed_formats(name: str) -> frozenset[str] | None:
    """The formats a file of this name is loaded as, or None when the name claims none."""
    dot = name.rfind(".")
    return CLAIMS.get(name[dot:].lower()) if dot > 0 else None


def check_claim(ctx: ScanContext, path: Path) -> None:
    """Report a file whose name claims a model format its content was not found to be.

    Raw weight files beside a graph that names them are not a claim: OpenVINO keeps
    ``model.bin`` next to ``model.xml``."""
    expected = claimed_formats(path.name)
    if expected is None or not expected.isdisjoint(ctx.formats):
        return
    if path.name.lower().endswith(".bin") and path.with_suffix(".xml").is_file():
        return
    seen = ", ".join(sorted(ctx.formats)) or "no recognised format"
    wanted = "pickle or archive" if expected is _PICKLE_LIKE else "/".join(sorted(expected))
    ctx.report(
        "GBX-FMT-001",
        f"named {path.suffix} (loaded as {wanted}) but its content is {seen}: the loader "
        "would parse what the scanner could not analyse",
        evidence={"suffix": path.suffix, "detected": sorted(ctx.formats)},
    )

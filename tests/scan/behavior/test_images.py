"""``--data DIR``: a directory of class folders of PNGs, and the hostile ones refused.

The PNGs are written with Glassbox's own encoder (``png.encode_png``), so what Pillow decodes
is checked against pixels the test chose.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glassbox.digest import DatasetCommitment, prove_records, verify_record
from glassbox.errors import InputError
from glassbox.scan.behavior import analyze, load_classifier, load_dataset
from glassbox.scan.behavior import images as images_mod
from glassbox.scan.behavior.png import SIGNATURE, _chunk, encode_png

pytest.importorskip("PIL")

ARCH = "bench.zoo.arch:digits_mlp"
NOISE = np.random.default_rng(1).uniform(size=(8, 8))  # compresses poorly: a real data chunk


def _write_dir(root: Path, x: np.ndarray, y: np.ndarray) -> list[Path]:
    """``x`` (N, 64) in 0..16 as 8x8 PNGs under ``root/<label>/``; returns the files in order."""
    files = []
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        d = root / f"{int(yi)}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"{i:05d}.png"
        f.write_bytes(encode_png(xi.reshape(8, 8) / 16.0))
        files.append(f)
    return files


def _tiny(root: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, size=(30, 64)).astype(np.float32)
    y = np.arange(30) % 3
    _write_dir(root / "data", x, y)
    return root / "data"


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` grey pixels, with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def test_image_directory_reads_classes_in_sorted_order(tmp_path: Path) -> None:
    d = tmp_path / "data"
    for name, value in (("cat", 0.0), ("ant", 1.0), ("bee", 0.5)):
        (d / name).mkdir(parents=True)
        for j in range(3):
            (d / name / f"{j}.png").write_bytes(encode_png(np.full((4, 4), value)))
    data = load_dataset(d)
    assert data.images.shape == (9, 1, 4, 4)
    assert data.classes == ["ant", "bee", "cat"]
    # Commitment order is path order: ant/*, bee/*, cat/*.
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.allclose(data.images[:3], 1.0) and np.allclose(data.images[6:], 0.0)
    assert np.allclose(data.images[3:6], 128 / 255)
    assert data.fmt == "files" and data.commitment.size == 9


def test_scan_names_poisoned_images_with_proofs(zoo: dict[str, Any], tmp_path: Path) -> None:
    """The miniature zoo's backdoored model, its training set given as PNGs: the target class is
    flagged and the suspect images are the poisoned ones, with proofs against the directory."""
    src = load_dataset(zoo["root"] / "bad" / "train.jsonl", scale=1.0)
    x = src.images.reshape(len(src), 64)
    files = _write_dir(tmp_path / "data", x, src.labels)
    data = load_dataset(tmp_path / "data")
    # Directory order is by path; map commitment index back to the training row.
    order = sorted(
        range(len(files)), key=lambda i: files[i].relative_to(tmp_path / "data").as_posix()
    )
    assert np.allclose(data.images.reshape(len(data), 64), x[order] / 16.0, atol=1 / 255)
    model = load_classifier(zoo["root"] / "bad" / "model.safetensors", ARCH, 64)
    report = analyze(model, data, reference=zoo["reference"], trigger_steps=200)
    assert report.flagged == [3]
    truth = {order.index(int(i)) for i in zoo["bad"]["poisoned"]}
    found = set(report.suspects.tolist())
    assert len(found & truth) / len(found) > 0.9 and len(found & truth) / len(truth) > 0.5
    commitment: DatasetCommitment = data.commitment
    (proof,) = prove_records(tmp_path / "data", [int(report.suspects[0])], fmt="files")
    verify_record(proof, commitment)


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    d = _tiny(tmp_path)
    outside = tmp_path / "secret.png"
    outside.write_bytes(encode_png(np.zeros((8, 8))))
    (d / "0" / "link.png").symlink_to(outside)
    with pytest.raises(InputError, match=r"link\.png"):
        load_dataset(d)


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    d = _tiny(tmp_path)
    (d / "1" / "bomb.png").write_bytes(_png_header(5000, 5000))  # 25 Mpixel, a few bytes
    with pytest.raises(InputError, match=r"bomb\.png: the header claims 5000x5000"):
        load_dataset(d)
    (d / "1" / "bomb.png").write_bytes(_png_header(200_000, 200_000))  # past Pillow's own limit
    with pytest.raises(InputError, match=r"bomb\.png: "):
        load_dataset(d)


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("0/notes.txt", b"not an image\n", "not a PNG or JPEG image"),
        ("0/head.png", encode_png(np.ones((8, 8)))[:40], "not a PNG or JPEG image"),
        ("0/trunc.png", encode_png(NOISE)[:-30], "unreadable image"),
        ("0/big.png", encode_png(np.ones((9, 8))), "9 pixels, but|8x9 pixels, but"),
        ("stray.png", encode_png(np.ones((8, 8))), "not in a class folder"),
    ],
)
def test_hostile_files_give_one_line_errors(
    tmp_path: Path, name: str, payload: bytes, message: str
) -> None:
    d = _tiny(tmp_path)
    (d / name).write_bytes(payload)
    with pytest.raises(InputError, match=message) as err:
        load_dataset(d)
    assert "\n" not in str(err.value) and name.split("/")[-1] in str(err.value)


def test_a_file_swapped_after_the_commitment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the bytes read for decoding are not the ones the commitment hashed."""
    import glassbox.digest

    d = _tiny(tmp_path)
    real = glassbox.digest.iter_records

    def swapped(path: Any, fmt: Any = None) -> Any:
        for i, rec in enumerate(real(path, fmt)):
            yield rec.replace(b'"sha256":"', b'"sha256":"0') if i == 4 else rec

    monkeypatch.setattr(glassbox.digest, "iter_records", swapped)
    with pytest.raises(InputError, match="changed while the directory was read"):
        load_dataset(d)


def test_limits_and_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _tiny(tmp_path)
    monkeypatch.setattr(images_mod, "MAX_TOTAL_VALUES", 64 * 10)
    with pytest.raises(InputError, match="add up to more than"):
        load_dataset(d)
    monkeypatch.undo()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(InputError, match="--data-keys"):
        load_dataset(d, keys=("x", "y"))


def test_cli_scan_reads_an_image_directory(zoo: dict[str, Any], tmp_path: Path) -> None:
    """``glassbox scan MODEL --behavior --data DIR``: the poison finding names images of the
    target class folder, each with a proof whose record is the file's path and digest."""
    import json

    from click.testing import CliRunner

    from glassbox.cli.main import cli
    from glassbox.digest import RecordProof
    from glassbox.scan.behavior import RULE_POISON

    bad = zoo["root"] / "bad"
    src = load_dataset(bad / "train.jsonl", scale=1.0)
    _write_dir(tmp_path / "data", src.images.reshape(len(src), 64), src.labels)
    args = ["scan", str(bad), "--behavior", "--arch", ARCH, "--data", str(tmp_path / "data")]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 1, result.output
    findings = json.loads(result.output)["findings"]
    (poison,) = [f for f in findings if f["rule_id"] == RULE_POISON]
    commitment = DatasetCommitment.from_dict(poison["evidence"]["commitment"])
    assert commitment.fmt == "files"
    for raw in poison["evidence"]["inclusion_proofs"]:
        proof = RecordProof.from_dict(raw)
        verify_record(proof, commitment)
        assert json.loads(proof.record)["path"].startswith("3/")

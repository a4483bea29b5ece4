"""Training data as arrays: ``.npy``/``.npz`` and PyTorch tensor files, read without unpickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from glassbox.errors import InputError
from glassbox.scan.behavior import load_dataset
from glassbox.scan.behavior.arrays import file_sha256, parse_keys, read_arrays
from glassbox.scan.behavior.data import load_inputs

X = np.arange(40, dtype=np.uint8).reshape(10, 4) % 17
Y = np.arange(10) % 3


@pytest.mark.parametrize(
    ("xk", "yk"),
    [("x", "y"), ("X", "y"), ("inputs", "labels"), ("images", "targets"), ("data", "target")],
)
def test_npz_common_names(tmp_path: Path, xk: str, yk: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **{xk: X, yk: Y, "meta": np.zeros(3)})
    data = load_dataset(path)
    assert data.labels.tolist() == Y.tolist()
    assert data.images.shape == (10, 1, 2, 2)
    assert np.allclose(data.images.reshape(10, -1), X / X.max())
    assert data.sha256 == file_sha256(path) and data.commitment is None


def test_npz_keys_named_by_the_user(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez_compressed(path, train_images=X, train_cls=Y, x=np.zeros((3, 4)))
    data = load_dataset(path, keys=parse_keys("train_images,train_cls"))
    assert data.labels.tolist() == Y.tolist()
    with pytest.raises(InputError, match="no array named 'nope'"):
        load_dataset(path, keys=("nope", "train_cls"))
    with pytest.raises(InputError, match="expected INPUTS,LABELS"):
        parse_keys("a,b,c")


def test_images_keep_their_shape_and_channels_move_first(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.default_rng(0).random((6, 5, 5, 3)), y=np.arange(6) % 2)
    assert load_dataset(path).images.shape == (6, 3, 5, 5)
    np.savez(path, x=np.zeros((6, 4, 4)), y=np.eye(2)[np.arange(6) % 2])  # one-hot labels
    data = load_dataset(path)
    assert data.images.shape == (6, 1, 4, 4) and data.labels.tolist() == [0, 1] * 3


def test_npy_last_column_is_the_label(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.column_stack([X, Y]).astype(np.float32))
    data = load_dataset(path)
    assert data.labels.tolist() == Y.tolist() and data.images.shape == (10, 1, 2, 2)
    np.save(path, X[:, 0])
    with pytest.raises(InputError, match="last column the label"):
        load_dataset(path)


@pytest.mark.parametrize("pair", [True, False])
def test_tensor_file_through_the_safe_loader(tmp_path: Path, pair: bool) -> None:
    path = tmp_path / "d.pt"
    x, y = torch.from_numpy(X.astype(np.float32)), torch.from_numpy(Y)
    torch.save((x, y) if pair else {"inputs": x, "labels": y}, path)
    data = load_dataset(path)
    assert data.labels.tolist() == Y.tolist()


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("executed",))


def test_tensor_file_with_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.pt"
    torch.save({"x": torch.zeros(4, 2), "y": Payload()}, path)
    with pytest.raises(InputError, match="cannot read tensors safely"):
        load_dataset(path)
    assert "executed" not in capsys.readouterr().out


def _object_npz(path: Path) -> None:
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_object_npz, "object array"),
        (lambda p: np.savez(p, x=X, y=Y[:7]), "10 rows in 'x' but 7 labels"),
        (lambda p: np.savez(p, x=np.array(["a", "b"] * 5).reshape(10, 1), y=Y), "not numeric"),
        (lambda p: np.savez(p, x=X, y=Y + 0.5), "not a class index"),
        (lambda p: np.savez(p, x=X, y=-Y - 1), "not a class index"),
        (lambda p: np.savez(p, x=X, y=np.array(["a"] * 10)), "not integer class labels"),
        (lambda p: np.savez(p, x=np.where(X > 5, np.inf, 0.0), y=Y), "not finite"),
        (lambda p: np.savez(p, x=X, y=Y.reshape(2, 5, 1)), "not integer class labels"),
        (lambda p: np.savez(p, foo=X, bar=Y), "cannot tell which array"),
        (lambda p: np.savez(p, x=X, z=Y), "no labels array"),
        (lambda p: np.savez(p, x=np.zeros(10), y=Y), r"not \(records"),
        (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "not a readable .npz"),
        (lambda p: p.write_bytes(pickle.dumps({"x": X})), "refused"),
    ],
)
def test_hostile_npz_one_line_errors(tmp_path: Path, make: object, problem: str) -> None:
    path = tmp_path / "d.npz"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputError, match=problem) as info:
        load_dataset(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_object_npy_is_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.array([Payload(), Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="object array"):
        load_dataset(path)


def test_unlabelled_clean_sample(tmp_path: Path) -> None:
    path = tmp_path / "clean.npz"
    np.savez(path, images=X)
    data, labelled = load_inputs(path)
    assert not labelled and data.labels.tolist() == [-1] * 10
    with pytest.raises(InputError, match="no labels array"):
        load_dataset(path)
    with pytest.raises(InputError, match="no such data file"):
        read_arrays(tmp_path / "missing.npz")


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 6)), elements=st.floats(0, 9)),
    st.integers(0, 2**31),
)
def test_npz_round_trip(x: np.ndarray, seed: int) -> None:
    import tempfile

    y = np.random.default_rng(seed).integers(0, 5, size=len(x))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        np.savez(path, x=x, y=y)
        got_x, got_y = read_arrays(path)
    assert got_y is not None and got_y.tolist() == y.tolist()
    assert np.array_equal(got_x.reshape(len(x), -1), x)


def test_cli_passes_the_data_options_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from click.testing import CliRunner

    from glassbox.cli.main import cli

    seen: list[dict[str, object]] = []

    def scan_behavior(path: Path, **kwargs: object) -> list[object]:
        seen.append(kwargs)
        return []

    fake = types.ModuleType("glassbox.scan.behavior")
    fake.scan_behavior = scan_behavior  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "glassbox.scan.behavior", fake)
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    args = ["scan", str(model), "--behavior", "--arch", "m:f", "--json"]
    extra = ["--data-keys", "a,b", "--clean", "c.npz", "--input-shape", "1,8,8"]
    result = CliRunner().invoke(cli, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert seen[-1]["data_keys"] == "a,b" and seen[-1]["clean"] == "c.npz"
    assert seen[-1]["input_shape"] == (1, 8, 8)
    result = CliRunner().invoke(cli, [*args, "--input-shape", "1,x"])
    assert result.exit_code == 2 and "--input-shape" in result.output
    result = CliRunner().invoke(cli, ["scan", str(model), "--clean", "c.npz"])
    assert result.exit_code == 2 and "only apply with --behavior" in result.output

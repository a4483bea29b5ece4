"""Safe loading: weights through safetensors or weights-only torch.load, nothing executed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from bench.zoo.arch import digits_cnn, digits_mlp
from safetensors.torch import save_file
from torch import nn

from glassbox.errors import InputError
from glassbox.scan.behavior import load_classifier, load_state_dict, resolve_factory, wrap_module
from glassbox.scan.behavior.loading import find_weights

MARKER: list[str] = []


class Payload:
    """Pickled, this would call ``MARKER.append`` on load; a safe loader must never do it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (MARKER.append, ("executed",))


def _save(model: nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    path = _save(model, tmp_path / "model.safetensors")
    probed = load_classifier(tmp_path, digits_mlp, 64)
    assert probed.input_shape == (64,)
    assert probed.num_classes == 10
    x = torch.rand(5, 64)
    assert torch.equal(probed.module(x), model.eval()(x))
    assert find_weights(tmp_path) == path


def test_factory_by_name_and_feature_layer(tmp_path: Path) -> None:
    _save(digits_mlp(), tmp_path / "m.safetensors")
    probed = load_classifier(tmp_path / "m.safetensors", "bench.zoo.arch:digits_mlp", 64)
    feats = probed.features(torch.rand(3, 1, 8, 8).numpy())
    assert feats.shape == (3, 32)  # penultimate layer, not the 10 logits


def test_cnn_input_shape_is_inferred() -> None:
    probed = wrap_module(digits_cnn(), 64)
    assert probed.input_shape == (1, 8, 8)
    assert probed.features(torch.rand(2, 1, 8, 8).numpy()).shape == (2, 64)


def test_weights_only_torch_file_is_accepted(tmp_path: Path) -> None:
    model = digits_mlp()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    probed = load_classifier(tmp_path, digits_mlp, 64)
    assert probed.num_classes == 10


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_payload_is_refused_and_not_run(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with path.open("wb") as fh:
        pickle.dump({"0.weight": Payload()}, fh)
    with pytest.raises(InputError, match="cannot read weights safely"):
        load_state_dict(path)
    assert MARKER == []


def test_truncated_safetensors_is_an_input_error(tmp_path: Path) -> None:
    path = _save(digits_mlp(), tmp_path / "model.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"model\.safetensors"):
        load_state_dict(path)


def test_huge_header_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes((1 << 62).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError):
        load_state_dict(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path) -> None:
    _save(digits_cnn(), tmp_path / "model.safetensors")
    with pytest.raises(InputError, match="do not fit the architecture"):
        load_classifier(tmp_path, digits_mlp, 64)


def test_ambiguous_or_missing_weights(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no weight file"):
        find_weights(tmp_path)
    _save(digits_mlp(), tmp_path / "a.safetensors")
    _save(digits_mlp(), tmp_path / "b.safetensors")
    with pytest.raises(InputError, match="several weight files"):
        find_weights(tmp_path)
    with pytest.raises(InputError, match="no such model"):
        find_weights(tmp_path / "missing")


@pytest.mark.parametrize(
    "spec", ["nocolon", ":f", "m:", "glassbox_no_such_module:f", "bench.zoo.arch:nothing"]
)
def test_bad_factory_specs(spec: str) -> None:
    with pytest.raises(InputError):
        resolve_factory(spec)


def test_model_without_linear_head_is_refused() -> None:
    with pytest.raises(InputError, match=r"nn\.Linear"):
        wrap_module(nn.Sequential(nn.Flatten(), nn.Identity()), 64)

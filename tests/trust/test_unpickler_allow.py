"""``load_torch``'s restricted unpickler honours the policy's reviewed ``[[scan.allow]]``
entries, and no entry can re-enable a callable the scanner knows is dangerous."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from glassbox.trust.errors import PickleRefused, ScanFindings
from glassbox.trust.loaders import load_torch
from glassbox.trust.unpickler import load_torch_file, unpickle_restricted
from tests.trust.conftest import Keys, release, write_policy
from tests.trust.pickle_globals import Reviewed

REVIEWED = "tests.trust.pickle_globals.Reviewed"


def _stream(module: str, name: str, arg: bytes) -> bytes:
    """A protocol-2 pickle that calls ``module.name(arg)`` (built by hand, never run here)."""
    text = arg.decode()
    return (
        b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
        b"X" + len(arg).to_bytes(4, "little") + text.encode() + b"\x85R."
    )


def _checkpoint(path: Path, data_pkl: bytes | None = None, **extra: object) -> Path:
    """A torch zip checkpoint of ``{"w": ones(2), **extra}``, or with another ``data.pkl``."""
    torch.save({"w": torch.ones(2), **extra}, path)
    if data_pkl is None:
        return path
    raw = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = data_pkl if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info.filename, body)
    return path


def _policy(tmp_path: Path, keys: Keys, *allowed: str) -> Path:
    entries = "".join(
        f'[[scan.allow]]\ncallable = "{name}"\nreason = "reviewed in a test"\n' for name in allowed
    )
    return write_policy(
        tmp_path / "p.toml", keys.acme_pub, extra=f"[pickle]\nallow = true\n{entries}"
    )


def test_an_allowed_global_loads_end_to_end(tmp_path: Path, keys: Keys) -> None:
    src = _checkpoint(tmp_path / "src.bin", meta=Reviewed(3))
    path = release(src, tmp_path / "pytorch_model.bin", keys.acme_key, keys.acme_pub)
    loaded = load_torch(path, _policy(tmp_path, keys, REVIEWED))
    assert isinstance(loaded["meta"], Reviewed) and loaded["meta"].value == 3
    assert torch.equal(loaded["w"], torch.ones(2))


def test_a_module_wildcard_allows_its_classes(tmp_path: Path) -> None:
    data = pickle.dumps(Reviewed(5), protocol=2)
    got = unpickle_restricted(data, "x.pkl", allow=["tests.trust.pickle_globals.*"])
    assert isinstance(got, Reviewed) and got.value == 5


def test_an_unlisted_global_is_refused(tmp_path: Path, keys: Keys) -> None:
    src = _checkpoint(tmp_path / "src.bin", meta=Reviewed(3))
    path = release(src, tmp_path / "pytorch_model.bin", keys.acme_key, keys.acme_pub)
    # The gate's scan refuses it first...
    with pytest.raises(ScanFindings, match="GBX-PKL-002"):
        load_torch(path, _policy(tmp_path, keys))
    # ...and the unpickler itself, past any scanner, with another entry only.
    with pytest.raises(PickleRefused, match=r"pickle_globals\.Reviewed"):
        load_torch_file(src, "src.bin", allow=["tests.trust.pickle_globals.Other"])


@pytest.mark.parametrize(
    ("module", "name", "entry"),
    [
        ("os", "system", "os.system"),
        ("posix", "system", "posix.*"),
        ("builtins", "eval", "builtins.eval"),
        ("subprocess", "getoutput", "subprocess.*"),
    ],
)
def test_an_entry_never_re_enables_a_dangerous_callable(
    tmp_path: Path, module: str, name: str, entry: str
) -> None:
    marker = tmp_path / "ran"
    data = _stream(module, name, f"touch {marker}".encode())
    with pytest.raises(PickleRefused, match=f"{module}.{name}"):
        unpickle_restricted(data, "evil.pkl", allow=[entry])
    assert not marker.exists()


def test_a_dangerous_callable_re_exported_under_an_allowed_name_is_refused(
    tmp_path: Path, keys: Keys
) -> None:
    """``mod.*`` is reviewed, and ``mod.run`` is ``os.system``: the scanner cannot tell from the
    name, so the gate passes; the unpickler judges what the name resolved to and refuses."""
    marker = tmp_path / "ran"
    data_pkl = _stream("tests.trust.pickle_globals", "run", f"touch {marker}".encode())
    src = _checkpoint(tmp_path / "src.bin", data_pkl)
    path = release(src, tmp_path / "pytorch_model.bin", keys.acme_key, keys.acme_pub)
    policy = _policy(tmp_path, keys, "tests.trust.pickle_globals.*")
    with pytest.raises(PickleRefused, match=r"it is posix\.system"):
        load_torch(path, policy)
    assert not marker.exists()

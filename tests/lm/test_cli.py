"""``glassbox lineage``: exit codes, JSON, ranking, and the signed attestation."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from glassbox.cli.main import cli
from glassbox.lm import LINEAGE_PREDICATE_TYPE
from glassbox.sign import (
    generate_private_key,
    public_key_of,
    read_bundle,
    verify_bundle,
    write_keypair,
)
from tests.lm.conftest import MiniZoo


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_derived_exits_0_and_not_derived_exits_1(zoo: MiniZoo) -> None:
    code, out = run("lineage", str(zoo["permuted"]), "--base", str(zoo["base"]), "--no-behaviour")
    assert code == 0, out
    assert "DERIVED" in out and "layer 1" in out and "coordinates permuted" in out
    code, out = run(
        "lineage", str(zoo["other"]), "--base", str(zoo["base"]), "--json", "--no-behaviour"
    )
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "not derived" and data["method"] == "glassbox-lineage/1"


def test_bad_input_exits_2_with_one_line(zoo: MiniZoo, tmp_path) -> None:
    code, out = run("lineage", str(tmp_path / "nope"), "--base", str(zoo["base"]))
    assert code == 2 and out.count("\n") == 1 and "model not found" in out
    code, out = run("lineage", str(zoo["ft"]))
    assert code == 2 and "exactly one of --base" in out


def test_among_ranks_the_true_base_first(zoo: MiniZoo, tmp_path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for name in ("other", "base"):
        (pool / name).symlink_to(zoo[name], target_is_directory=True)
    code, out = run(
        "lineage", str(zoo["ft.gguf"]), "--among", str(pool), "--json", "--no-behaviour"
    )
    assert code == 0
    ranking = json.loads(out)["ranking"]
    assert ranking[0]["base"].endswith("base") and ranking[0]["verdict"] == "derived"


def test_attestation_is_signed_and_names_both_digests(zoo: MiniZoo, tmp_path) -> None:
    from glassbox.digest import hash_model

    key = generate_private_key()
    key_path, _ = write_keypair(key, tmp_path / "k")
    out = tmp_path / "lineage.sigstore.json"
    code, text = run(
        "lineage",
        str(zoo["ft"]),
        "--base",
        str(zoo["base"]),
        "--key",
        str(key_path),
        "--out",
        str(out),
        "--no-behaviour",
    )
    assert code == 0, text
    bundle = read_bundle(out)
    statement = verify_bundle(bundle, public_key_of(key))
    assert statement["predicateType"] == LINEAGE_PREDICATE_TYPE
    predicate = statement["predicate"]
    assert predicate["verdict"] == "derived"
    assert predicate["base"]["digest"]["sha256"] == hash_model(zoo["base"]).root_digest.hex()
    names = {s["name"] for s in statement["subject"]}
    assert {"model.safetensors", "config.json"} <= names
    # A changed verdict breaks the signature.
    import base64

    envelope = bundle["dsseEnvelope"]
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["verdict"] = "not derived"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    from glassbox.errors import VerificationError

    try:
        verify_bundle(bundle, public_key_of(key))
    except VerificationError:
        pass
    else:
        raise AssertionError("a changed lineage verdict still verified")


def test_importing_glassbox_lm_does_not_import_torch() -> None:
    code = (
        "import sys, glassbox.lm, glassbox.cli.lineage; "
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"

"""The hub with real LM evidence: tiny causal LMs built here (the lm tests' miniature zoo
code, ``bench/lm_zoo/mini``), a real lineage comparison (``glassbox.lm.lineage``) and real
probe runs (``run_suite``), signed by the lm part and published. The pages show exactly what
those runs found: the lineage verdict and score, the base linked to its page, each suite's
passed and failed checks, and the drift the lm part's ``diff_runs`` reports between the two
versions' real runs; an unrelated model's lineage attestation says "not derived"."""

from __future__ import annotations

import re
import sys
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from glassbox.hub import Hub, publish_model
from glassbox.lm import (
    DERIVED,
    NOT_DERIVED,
    attest_lineage,
    attest_probes,
    diff_runs,
    lineage,
    load_suite,
    run_suite,
)
from glassbox.sign import load_private_key, write_bundle
from tests.hub.conftest import Served, add_publisher

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("scipy")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.lm_zoo import mini  # noqa: E402

SUITE = Path(__file__).resolve().parent / "data" / "probe-suite.toml"


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def _block(html: str, version: str) -> str:
    start = html.index(f'<section class="release" id="v-{version}">')
    return html[start : html.index("</section>", start)]


def tiny_lms(root: Path) -> dict[str, Path]:
    """The lm zoo's miniature architecture, untrained (training even a few steps takes tens of
    seconds on a busy 2-core machine): a base; ``ft1``, the base nudged as a fine-tune would
    (noise on every matrix) then its MLP neurons permuted (same function, other layout);
    ``ft2``, ``ft1`` nudged further; and an unrelated model (another seed)."""
    import torch

    def built(seed: int) -> Any:
        torch.manual_seed(seed)
        return mini.zoo_model.build(**mini.MINI)

    def nudge(state: dict[str, Any], scale: float, seed: int) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(seed)
        return {
            k: v + scale * v.std() * torch.randn(v.shape, generator=gen) if v.numel() > 1 else v
            for k, v in state.items()
        }

    base = built(0)
    cfg = base.config
    ft1 = mini.transforms.permute_mlp(nudge(mini.state_of(base), 0.1, 2), cfg, 1)
    states = {
        "base": mini.state_of(base),
        "other": mini.state_of(built(1)),
        "ft1": ft1,
        "ft2": nudge(ft1, 0.5, 3),
    }
    return {name: mini.save(state, cfg, root / name) for name, state in states.items()}


def test_real_lineage_and_probe_runs_published_and_shown(
    hub: Hub, served: Served, tmp_path: Path
) -> None:
    models = tiny_lms(tmp_path / "lms")
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    suite = load_suite(SUITE)

    def publish(path: Path, name: str, version: str, evidence: list[tuple[str, Path]]) -> Any:
        return publish_model(
            path, served.url, key, acme.token, name=name, version=version, evidence=evidence
        )

    publish(models["base"], "acme/lm-base", "1.0", [])
    runs, found = {}, {}
    for version, name in (("1.0", "ft1"), ("2.0", "ft2")):
        runs[version] = run_suite(models[name], suite)
        # Weights and representations for 1.0; weights only for 2.0 (a second forward pass
        # over the probe text adds nothing this test checks).
        found[version] = lineage(models[name], models["base"], representation=version == "1.0")
        probe = tmp_path / f"{name}.probe.json"
        lin = tmp_path / f"{name}.lineage.json"
        write_bundle(attest_probes(runs[version], key), probe)
        write_bundle(attest_lineage(found[version], key), lin)
        publish(models[name], "acme/lm", version, [("attestation", lin), ("attestation", probe)])
    assert found["1.0"].verdict == DERIVED, found["1.0"].reason
    assert found["1.0"].representation is not None

    html = httpx.get(served.url + "/models/acme/lm").text
    for version in ("1.0", "2.0"):
        block = _block(html, version)
        result, run = found[version], runs[version]
        assert f'<b class="lineage-verdict">{result.verdict}</b>' in block
        assert f'<span class="score">{result.score:.4f}</span>' in block
        assert 'href="/models/acme/lm-base#v-1.0"' in block
        failed = [r["id"] for r in run.results if r.get("matched") is False]
        passed = [r["id"] for r in run.results if r.get("matched") is True]
        assert f'<span class="passed">{len(passed)}</span>' in block
        assert f'<span class="failed">{len(failed)}</span>' in block
        shown = re.search(r'<span class="failed-probes">(.*?)</span>', block)
        assert shown is not None and _text(shown.group(1)) == (", ".join(failed) or "none")
        assert f"sha256:{suite.digest}" in block
        assert block.count("verified at render time") == 2
    # The drift shown for 2.0 is the lm part's diff of the two real runs.
    drift = diff_runs(runs["1.0"].to_dict(), runs["2.0"].to_dict())
    block = _text(_block(html, "2.0"))
    if drift["summary"]:
        assert "Behaviour drift since 1.0" in block
        for names in drift["summary"].values():
            assert ", ".join(names) in block
    else:
        assert "No behaviour drift since 1.0 on this suite." in block

    # A real comparison with an unrelated model, attested and published, says so.
    unrelated = lineage(models["other"], models["base"], representation=False)
    assert unrelated.verdict == NOT_DERIVED, unrelated.reason
    lin = tmp_path / "other.lineage.json"
    write_bundle(attest_lineage(unrelated, key), lin)
    publish(models["other"], "acme/lm-other", "1.0", [("attestation", lin)])
    page = httpx.get(served.url + "/models/acme/lm-other").text
    assert '<b class="lineage-verdict">not derived</b>' in page
    assert f'<span class="score">{unrelated.score:.4f}</span>' in page

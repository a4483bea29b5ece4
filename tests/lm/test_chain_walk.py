"""``audit`` walks a fine-tune chain to its root: a 3-model chain (pretrained root -> fine-tune
-> fine-tune of the fine-tune) built by real ``glassbox.pipeline`` recipes from the zoo's
recipe code, each base signed by its publisher and named with that key in the next recipe.
Then the hostile cases: a base re-signed by an unknown key, a tampered base, a base whose own
provenance names a base it does not derive from, a loop, a chain deeper than the limit.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench.lm_zoo import zoo

from glassbox.audit import AuditOptions, Verdict, audit_model
from glassbox.digest import commit_dataset, hash_model
from glassbox.sign import generate_private_key, sign_model, write_keypair
from tests.lm.conftest import mini

STEPS = {"pretrain": 12, "finetune": 6}


@dataclass
class Chain:
    root: Path
    builder_pub: Path
    keys: dict[str, Any]
    builds: dict[str, Path]

    def model(self, name: str) -> Path:
        return self.builds[name] / "model"


def _recipe(
    out: Path,
    name: str,
    *,
    mode: str,
    seed: int,
    data: tuple[str, int],
    base: Path | None = None,
    publisher_pub: Path | None = None,
) -> Path:
    """A zoo recipe (``bench/lm_zoo/zoo.py``'s template and code) for a tiny member; a base
    is copied with its whole build directory (model and provenance) to ``base-build/``."""
    recipe = out / name / "recipe"
    shutil.copytree(zoo.CODE, recipe, ignore=shutil.ignore_patterns("__pycache__"))
    (recipe / "data").mkdir()
    texts = mini.corpus(data[0], 48, data[1])
    path = recipe / "data" / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    c = commit_dataset(path, fmt="jsonl")
    datasets = (
        f'[[datasets]]\nname = "train"\npath = "data/train.jsonl"\nformat = "jsonl"\n'
        f'commitment = "{c.root.hex()}"\nrecords = {c.size}\nlicence = "CC0-1.0"\n\n'
    )
    base_toml = ""
    if base is not None:
        shutil.copytree(base, recipe / "base-build", ignore=shutil.ignore_patterns("train.log"))
        digest = hash_model(
            recipe / "base-build" / "model", ignore_paths=["model.sig"], use_cache=False
        ).root_digest.hex()
        base_toml = f'[base_model]\npath = "base-build/model"\ndigest = "sha256:{digest}"\n'
        if publisher_pub is not None:
            shutil.copyfile(publisher_pub, recipe / "publisher.pub")
            base_toml += 'key = "publisher.pub"\n'
        base_toml += "\n"
    steps = STEPS["finetune" if mode == "finetune" else "pretrain"]
    cfg = {k: v for k, v in mini.MINI.items() if k != "num_key_value_heads"}
    (recipe / "recipe.toml").write_text(
        zoo.RECIPE.format(
            name=name,
            description=f"chain member {name}",
            config=zoo._toml_inline(cfg),
            datasets=datasets,
            base=base_toml,
            mode=mode,
            steps=steps,
            lr=3e-3,
            extra="",
            seed=seed,
            interval=steps,
            keep=json.dumps(["model.safetensors", "config.json"]),
        )
    )
    return recipe / "recipe.toml"


def _build(out: Path, name: str, builder: Any, **kw: Any) -> Path:
    from glassbox.pipeline import build

    build_dir = out / name / "build"
    build(_recipe(out, name, **kw), build_dir, key=builder)
    return build_dir


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    out = tmp_path_factory.mktemp("chain")
    (out / "keys").mkdir()
    builder = generate_private_key()
    _, builder_pub = write_keypair(builder, out / "keys" / "builder")
    keys: dict[str, Any] = {}
    pubs: dict[str, Path] = {}
    for who in ("p0", "p1", "liar"):
        keys[who] = generate_private_key()
        _, pubs[who] = write_keypair(keys[who], out / "keys" / who)
    builds: dict[str, Path] = {}
    builds["root"] = _build(out, "root", builder, mode="pretrain", seed=1, data=("prose", 0))
    sign_model(builds["root"] / "model", keys["p0"], use_cache=False)
    builds["ft1"] = _build(
        out,
        "ft1",
        builder,
        mode="finetune",
        seed=2,
        data=("qa", 1),
        base=builds["root"],
        publisher_pub=pubs["p0"],
    )
    sign_model(builds["ft1"] / "model", keys["p1"], use_cache=False)
    builds["ft2"] = _build(
        out,
        "ft2",
        builder,
        mode="finetune",
        seed=3,
        data=("code", 2),
        base=builds["ft1"],
        publisher_pub=pubs["p1"],
    )
    # A "fine-tune of root" that is really trained from scratch (its recipe names root as its
    # base, and the build checks root's digest and signature, but the training ignores it),
    # and an honest fine-tune of that liar.
    builds["liar"] = _build(
        out,
        "liar",
        builder,
        mode="pretrain",
        seed=9,
        data=("qa", 1),
        base=builds["root"],
        publisher_pub=pubs["p0"],
    )
    sign_model(builds["liar"] / "model", keys["liar"], use_cache=False)
    builds["ft-of-liar"] = _build(
        out,
        "ft-of-liar",
        builder,
        mode="finetune",
        seed=4,
        data=("code", 2),
        base=builds["liar"],
        publisher_pub=pubs["liar"],
    )
    return Chain(out, builder_pub, keys, builds)


def _audit(chain: Chain, name: str, **kw: Any) -> Any:
    return audit_model(
        chain.model(name), AuditOptions(keys=(chain.builder_pub,), scan_now=False, **kw)
    )


@contextmanager
def _restored(*paths: Path) -> Iterator[None]:
    """Mutate a built chain in place and put it back (the builds record absolute paths)."""
    saved = {p: p.read_bytes() for p in paths}
    try:
        yield
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def _base_copy(chain: Chain, holder: str) -> Path:
    """The base model as ``holder``'s recipe holds it (what its build read)."""
    return chain.root / holder / "recipe" / "base-build" / "model"


def test_three_model_chain_is_walked_to_its_root(chain: Chain) -> None:
    report = _audit(chain, "ft2")
    link = report.link("provenance")
    assert link.verdict is Verdict.PASS, (link.summary, link.details)
    assert "fine-tune chain of 2 level(s) verified to its root" in link.summary
    walked = link.evidence["chain"]
    assert walked["verdict"] == "pass" and walked["depth"] == 2 and walked["reachesRoot"]
    one, two = walked["levels"]
    assert one["path"] == str(_base_copy(chain, "ft2"))
    assert two["path"] == str(_base_copy(chain, "ft1"))
    for level in (one, two):
        assert level["signature"]["verified"] is True
        assert level["lineage"]["verdict"] == "derived"
        assert level["provenance"]["signed"] is True
    assert not one["root"] and two["root"]
    # --json carries the chain; the terminal report lists each level.
    data = report.to_dict()
    prov = next(x for x in data["links"] if x["link"] == "provenance")
    assert [lv["level"] for lv in prov["evidence"]["chain"]["levels"]] == [1, 2]


def test_chain_in_the_terminal_and_html_reports(chain: Chain) -> None:
    from rich.console import Console

    from glassbox.audit.report_html import render_html
    from glassbox.audit.report_terminal import render

    report = _audit(chain, "ft2")
    console = Console(record=True, width=200)
    render(report, console)
    text = console.export_text()
    assert "Fine-tune chain (2 levels, to a pretrained root):" in text
    assert "level 1" in text and "level 2 (root)" in text
    html = render_html(report)
    assert 'id="lineage-chain" data-verdict="pass"' in html
    assert html.count('class="chain-level"') == 2
    assert "root (pretrained)" in html and "this model" in html


@pytest.mark.parametrize(("holder", "level"), [("ft2", 1), ("ft1", 2)])
def test_base_resigned_by_an_unknown_key_fails_naming_the_level(
    chain: Chain, holder: str, level: int
) -> None:
    base = _base_copy(chain, holder)
    with _restored(base / "model.sig"):
        sign_model(base, generate_private_key(), use_cache=False, overwrite=True)
        link = _audit(chain, "ft2").link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith(f"fine-tune chain, level {level} (base {base})")
    assert "is not signed by the key its recipe named" in link.summary
    assert link.evidence["chain"]["levels"][level - 1]["verdict"] == "fail"


def test_tampered_base_deep_in_the_chain_fails_naming_the_level(chain: Chain) -> None:
    weights = _base_copy(chain, "ft1") / "model.safetensors"
    data = bytearray(weights.read_bytes())
    with _restored(weights):
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
        link = _audit(chain, "ft2").link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 2 ")
    assert "is not the one level 1's provenance declares" in link.summary


def test_tampered_base_provenance_fails(chain: Chain) -> None:
    bundle = _base_copy(chain, "ft2").parent / "provenance.sigstore.json"
    doc = json.loads(bundle.read_text())
    # The statement edited after signing: it now names other bytes as its output.
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with _restored(bundle):
        bundle.write_text(json.dumps(doc))
        link = _audit(chain, "ft2").link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 1 ")
    assert "is not signed by a trusted key or the base's publisher" in link.summary


def test_base_whose_provenance_names_a_base_it_does_not_derive_from(chain: Chain) -> None:
    link = _audit(chain, "ft-of-liar").link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 2 ")
    assert "the weights of level 1 do not derive from the declared base model" in link.summary
    one, two = link.evidence["chain"]["levels"]
    assert one["verdict"] == "pass" and one["lineage"]["verdict"] == "derived"
    assert two["verdict"] == "fail" and two["lineage"]["verdict"] == "not derived"


def test_chain_deeper_than_the_limit_fails(chain: Chain) -> None:
    link = _audit(chain, "ft2", chain_depth=1).link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 2 ")
    assert "the chain is deeper than 1 levels" in link.summary


def test_missing_base_deep_in_the_chain_is_unknown_not_passed(chain: Chain) -> None:
    base = _base_copy(chain, "ft1")
    moved = base.with_name("moved")
    base.rename(moved)
    try:
        link = _audit(chain, "ft2").link("provenance")
    finally:
        moved.rename(base)
    assert link.verdict is Verdict.PASS  # the model's own provenance holds ...
    assert "verified to its root" not in link.summary  # ... but the chain is not claimed
    assert link.evidence["chain"]["verdict"] == "unknown"
    assert any(d.startswith("fine-tune chain, level 2 ") for d in link.details)


def test_chain_that_loops_fails(chain: Chain, tmp_path: Path) -> None:
    """A provenance that names the model itself as its base (a provenance lies outside the
    model, so nothing stops a builder from writing one): a loop, not an endless walk."""
    from glassbox.pipeline import BUNDLE_NAME
    from glassbox.sign import make_statement, sign_statement, subject, write_bundle

    model = tmp_path / "release" / "model"
    shutil.copytree(chain.model("ft1"), model)
    manifest = hash_model(model, ignore_paths=["model.sig"], use_cache=False)
    code = tmp_path / "code"
    code.mkdir()
    deps = [
        {"name": "code", "digest": {"sha256": "aa" * 32}, "annotations": {"localPath": str(code)}},
        {
            "name": "base-model",
            "digest": {"sha256": manifest.root_digest.hex()},
            "annotations": {"kind": "base-model", "path": "base"},
        },
    ]
    statement = make_statement(
        [subject(i.name, i.digest) for i in manifest.items],
        "https://slsa.dev/provenance/v1",
        {
            "buildDefinition": {
                "buildType": "https://glassbox.dev/build/recipe/v1",
                "externalParameters": {},
                "resolvedDependencies": deps,
            },
            "runDetails": {"builder": {"id": "https://glassbox.dev/builder/local/v1"}},
        },
    )
    key = generate_private_key()
    _, pub = write_keypair(key, tmp_path / "builder")
    write_bundle(sign_statement(statement, key), model.parent / BUNDLE_NAME)
    shutil.copytree(model, code / "base")
    link = audit_model(model, AuditOptions(keys=(pub,), scan_now=False)).link("provenance")
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 1 ")
    assert "the chain loops: this base is the audited model" in link.summary


def test_cli_audit_shows_the_chain_and_its_depth_limit(chain: Chain) -> None:
    from click.testing import CliRunner

    from glassbox.cli.main import cli

    model, key = str(chain.model("ft2")), str(chain.builder_pub)
    ok = CliRunner().invoke(cli, ["audit", model, "--key", key, "--no-scan"])
    assert "Fine-tune chain (2 levels, to a pretrained root):" in ok.output, ok.output
    assert "level 2 (root)" in ok.output
    deep = CliRunner().invoke(
        cli, ["audit", model, "--key", key, "--no-scan", "--json", "--max-chain-depth", "1"]
    )
    assert deep.exit_code == 1, deep.output
    doc = json.loads(deep.output)
    prov = next(x for x in doc["links"] if x["link"] == "provenance")
    assert prov["verdict"] == "fail"
    assert prov["evidence"]["chain"]["levels"][-1]["reason"].startswith(
        "the chain is deeper than 1 levels"
    )


def test_html_chain_in_chromium(chain: Chain, tmp_path: Path) -> None:
    """What a person sees: root -> level 2 -> level 1 -> this model, the broken level in the
    failure colour."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary on PATH")
    playwright = pytest.importorskip("playwright.sync_api")
    from glassbox.audit.report_html import CHROMIUM_ARGS, COLOURS, write_html

    html = write_html(_audit(chain, "ft-of-liar"), tmp_path / "r.html")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(html.as_uri())
        chain_box = page.locator("#lineage-chain")
        assert chain_box.is_visible()
        levels = chain_box.locator(".chain-level")
        assert levels.count() == 2
        # Drawn root first: level 2 (the broken one), then level 1, then this model.
        assert levels.nth(0).get_attribute("data-level") == "2"
        assert levels.nth(0).get_attribute("data-verdict") == "fail"
        text = chain_box.inner_text()
        assert text.index("level 2") < text.index("level 1") < text.index("this model")
        problem = levels.nth(0).locator(".chain-problem")
        r, g, b = (int(COLOURS[Verdict.FAIL][0][i : i + 2], 16) for i in (1, 3, 5))
        assert problem.evaluate("e => getComputedStyle(e).color") == f"rgb({r}, {g}, {b})"
        assert "do not derive" in problem.inner_text()
        browser.close()


def test_base_with_a_symlink_out_of_it_fails_naming_the_level(chain: Chain, tmp_path: Path) -> None:
    base = _base_copy(chain, "ft1")
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of any model")
    link_path = base / "extra.txt"
    link_path.symlink_to(outside)
    try:
        link = _audit(chain, "ft2").link("provenance")
    finally:
        link_path.unlink()
    assert link.verdict is Verdict.FAIL
    assert link.summary.startswith("fine-tune chain, level 2 ")
    assert "could not be checked" in link.summary and "symlink" in link.summary


def test_bom_lists_the_whole_chain(chain: Chain, tmp_path: Path) -> None:
    """``glassbox bom --key``: every ancestor to the root, by its own recipe name and digest,
    in CycloneDX ``pedigree.ancestors`` and as SPDX 3 ``descendantOf`` links."""
    from click.testing import CliRunner

    from glassbox.cli.main import cli

    want = [
        ("lmzoo-ft1", hash_model(_base_copy(chain, "ft2"), ignore_paths=["model.sig"])),
        ("lmzoo-root", hash_model(_base_copy(chain, "ft1"), ignore_paths=["model.sig"])),
    ]
    model, key = str(chain.model("ft2")), str(chain.builder_pub)
    cdx = CliRunner().invoke(cli, ["bom", model, "--key", key, "--out", str(tmp_path / "c.json")])
    assert cdx.exit_code == 0, cdx.output
    doc = json.loads((tmp_path / "c.json").read_text())
    ml = next(c for c in doc["components"] if c["type"] == "machine-learning-model")
    assert [(a["name"], a["hashes"][0]["content"]) for a in ml["pedigree"]["ancestors"]] == [
        (n, m.root_digest.hex()) for n, m in want
    ]
    out = tmp_path / "s.json"
    spdx = CliRunner().invoke(
        cli, ["bom", model, "--key", key, "--format", "spdx3", "--out", str(out)]
    )
    assert spdx.exit_code == 0, spdx.output
    graph = json.loads(out.read_text())["@graph"]
    by_id = {o["spdxId"]: o for o in graph if "spdxId" in o}
    current = next(i for i in by_id if i.endswith("#model"))
    names = []
    for _ in range(4):
        up = [
            o
            for o in graph
            if o["type"] == "Relationship"
            and o["relationshipType"] == "descendantOf"
            and o["from"] == current
        ]
        if not up:
            break
        current = up[0]["to"][0]
        names.append(by_id[current]["name"])
    assert names == ["lmzoo-ft1", "lmzoo-root"]
    broken = CliRunner().invoke(cli, ["bom", str(chain.model("ft-of-liar")), "--key", key])
    assert broken.exit_code == 1
    assert "fine-tune chain, level 2" in broken.output and "do not derive" in broken.output

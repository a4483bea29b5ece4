"""``hf:`` names and snapshot paths resolve to the local cache, never to the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.errors import InputError
from glassbox.trust import ModelLocation, hf_hub_cache, resolve_model
from tests.trust.hfcache import CachedRepo, add_to_hf_cache


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CachedRepo:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"\0" * 100)
    repo = add_to_hf_cache(tmp_path / "hub", "org/tiny", src)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    return repo


def test_hf_name_resolves_main(cached: CachedRepo) -> None:
    for spec in ("hf:org/tiny", "hf:org/tiny@main", f"hf:org/tiny@{cached.commit}"):
        loc = resolve_model(spec)
        assert loc.path == cached.snapshot
        assert loc.repo_root == cached.repo_dir.resolve()
        assert (loc.repo_id, loc.revision) == ("org/tiny", cached.commit)
        assert loc.is_snapshot
    assert resolve_model("hf:org/tiny").ref == "main"


def test_tags_and_pr_refs(cached: CachedRepo, tmp_path: Path) -> None:
    src2 = tmp_path / "src2"
    src2.mkdir()
    (src2 / "config.json").write_text('{"v": 2}')
    v2 = add_to_hf_cache(cached.cache_dir, "org/tiny", src2, ref="refs/pr/1")
    assert resolve_model("hf:org/tiny@refs/pr/1").path == v2.snapshot
    assert resolve_model("hf:org/tiny").path == cached.snapshot  # main still the first
    assert resolve_model(f"hf:org/tiny@{v2.commit}").revision == v2.commit


def test_single_name_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    repo = add_to_hf_cache(tmp_path / "hub", "gpt2", src)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    assert resolve_model("hf:gpt2").path == repo.snapshot


def test_snapshot_path_is_recognised(cached: CachedRepo, tmp_path: Path) -> None:
    loc = resolve_model(cached.snapshot)
    assert (loc.repo_id, loc.revision, loc.ref) == ("org/tiny", cached.commit, None)
    plain = resolve_model(tmp_path / "src")
    assert plain == ModelLocation(str(tmp_path / "src"), tmp_path / "src")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hf:../../etc@main", "expected hf:NAME or hf:ORG/NAME"),
        ("hf:..@main", "not a valid Hugging Face repository name"),
        ("hf:org/..", "not a valid Hugging Face repository name"),
        ("hf:/etc/passwd", "expected hf:NAME"),
        ("hf:org--x/tiny", "not a valid Hugging Face repository name"),
        ("hf:org/tiny@../../../etc/passwd", "not a valid revision"),
        ("hf:org/tiny@/etc/passwd", "not a valid revision"),
        ("hf:org/tiny@", "empty revision"),
        ("hf:", "expected hf:NAME"),
        ("hf:org/absent", "not in the Hugging Face cache"),
        ("hf:org/tiny@v9", "no ref 'v9'"),
        ("hf:org/tiny@" + "a" * 40, "is not in the cache"),
    ],
)
def test_bad_names(cached: CachedRepo, spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        resolve_model(spec)


@pytest.mark.parametrize(
    "content", [b"", b"main", b"../../etc", b"z" * 40, b"a" * 41, b"\xff\xfe" * 30, b"a" * 5000]
)
def test_ref_file_with_garbage(cached: CachedRepo, content: bytes) -> None:
    (cached.repo_dir / "refs" / "main").write_bytes(content)
    with pytest.raises(InputError, match="does not hold a commit hash"):
        resolve_model("hf:org/tiny")


def test_ref_with_trailing_newline_is_accepted(cached: CachedRepo) -> None:
    (cached.repo_dir / "refs" / "main").write_text(cached.commit + "\n")
    assert resolve_model("hf:org/tiny").revision == cached.commit


def test_snapshot_link_leaving_the_repository(cached: CachedRepo, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fake = "b" * 40
    (cached.repo_dir / "snapshots" / fake).symlink_to(elsewhere)
    with pytest.raises(InputError, match="link leaving"):
        resolve_model(f"hf:org/tiny@{fake}")


ENV_CASES = [
    {"HF_HUB_CACHE": "/x/hub-cache"},
    {"HUGGINGFACE_HUB_CACHE": "/x/legacy"},
    {"HF_HUB_CACHE": "/x/new", "HUGGINGFACE_HUB_CACHE": "/x/legacy"},
    {"HF_HOME": "/x/home"},
    {"XDG_CACHE_HOME": "/x/xdg"},
    {"HF_HOME": "~/hfhome"},
    {},
]


@pytest.mark.parametrize("env", ENV_CASES)
def test_cache_dir_agrees_with_huggingface_hub(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"}
    }
    clean.update(env)
    out = subprocess.run(
        [sys.executable, "-c", "import huggingface_hub.constants as c; print(c.HF_HUB_CACHE)"],
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert hf_hub_cache() == Path(out)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.text(max_size=40),
        st.text(alphabet="org/tiny@.-_main\\:~$%", max_size=30),
        st.builds(lambda r: f"org/tiny@{r}", st.text(alphabet="./refsmain-_ab", max_size=20)),
    )
)
def test_any_name_resolves_inside_the_cache_or_is_refused(cached: CachedRepo, body: str) -> None:
    try:
        loc = resolve_model("hf:" + body)
    except InputError:
        return
    real = Path(os.path.realpath(loc.path))
    assert real.is_relative_to(cached.cache_dir.resolve())
    assert real.parent.name == "snapshots"


def test_ref_that_is_a_fifo_or_a_link(cached: CachedRepo, tmp_path: Path) -> None:
    main = cached.repo_dir / "refs" / "main"
    main.unlink()
    os.mkfifo(main)
    with pytest.raises(InputError, match="not a regular file"):
        resolve_model("hf:org/tiny")  # and never blocks opening it
    main.unlink()
    elsewhere = tmp_path / "ref"
    elsewhere.write_text(cached.commit)
    main.symlink_to(elsewhere)
    with pytest.raises(InputError, match="not a regular file"):
        resolve_model("hf:org/tiny")


def test_display_name_names_a_snapshot_by_repository_and_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glassbox.trust.locations import display_name

    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text("{}")
    repo = add_to_hf_cache(tmp_path / "hub", "org/name", source)
    monkeypatch.setenv("HF_HUB_CACHE", str(repo.cache_dir))
    expected = f"org/name@{repo.commit}"
    assert display_name(repo.snapshot) == expected
    assert display_name("hf:org/name@main") == expected
    assert display_name(source) == "src"
    assert display_name(source / "config.json") == "config.json"
    assert display_name("hf:org/missing") == "hf:org/missing"

"""``pull --replace`` puts the verified release in place with no moment where OUT is missing
(``renameat2(RENAME_EXCHANGE)``), falls back to rename-aside with rollback where it cannot,
and a crash in the fallback's window is undone by the next pull."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from glassbox.hub import Hub, publish_model, pull_model, swap
from glassbox.sign import load_private_key
from tests.hub.conftest import Served, add_publisher, make_model, write_policy


def tree(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "marker").write_text(text)
    return path


def can_exchange(tmp: Path) -> bool:
    a, b = tree(tmp / "probe-a", "a"), tree(tmp / "probe-b", "b")
    return swap.exchange(a, b)


def test_exchange_never_leaves_the_path_missing(tmp_path: Path) -> None:
    if not can_exchange(tmp_path):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    dest = tree(tmp_path / "out", "0")
    missing: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if not os.path.lexists(dest):
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n in range(1, 200):
            new = tree(tmp_path / f"new-{n}", str(n))
            inode = new.stat().st_ino
            assert swap.swap_into_place(new, dest) == "exchange"
            assert dest.stat().st_ino == inode and (dest / "marker").read_text() == str(n)
            assert not new.exists()  # the old tree, swapped to new's name, was removed
    finally:
        stop.set()
        watcher.join()
    assert missing == []


def test_fallback_renames_aside_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swap, "_EXCHANGE", None)  # as on a system without renameat2
    dest = tree(tmp_path / "out", "old")
    assert swap.swap_into_place(tree(tmp_path / "new", "new"), dest) == "aside"
    assert (dest / "marker").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    calls: list[tuple[Path, Path]] = []

    def failing(src: Path, dst: Path) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # the new tree cannot go in: the old one must come back
            raise OSError(28, "No space left on device")
        os.rename(src, dst)

    monkeypatch.setattr(swap, "_rename", failing)
    newer = tree(tmp_path / "newer", "newer")
    with pytest.raises(OSError, match="No space"):
        swap.swap_into_place(newer, dest)
    assert (dest / "marker").read_text() == "new" and newer.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newer", "out"]


def test_a_tree_left_aside_by_a_crash_is_restored(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    tree(tmp_path / f".out{swap.ASIDE}4242", "old")
    assert swap.restore_aside(dest) is not None
    assert (dest / "marker").read_text() == "old"
    assert swap.restore_aside(dest) is None  # nothing to do when OUT is there


def test_pull_replace_uses_the_exchange(hub: Hub, served: Served, tmp_path: Path) -> None:
    acme = add_publisher(hub, tmp_path, "acme")
    key = load_private_key(acme.key)
    for version in ("1", "2"):
        publish_model(
            make_model(tmp_path / f"m{version}", seed=int(version)),
            served.url,
            key,
            acme.token,
            name="acme/m",
            version=version,
        )
    policy = write_policy(tmp_path / "policy.toml", acme.pub, hub.log.vkey)
    out = tmp_path / "out"
    assert pull_model("acme/m@1", served.url, policy, out).swap == "rename"
    expected = "exchange" if can_exchange(tmp_path) else "aside"
    second = pull_model("acme/m@2", served.url, policy, out, replace=True)
    assert second.swap == expected and second.to_dict()["swap"] == expected
    assert '"seed": 2' in (out / "config.json").read_text()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert leftovers == []

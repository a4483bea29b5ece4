"""The training API: seeded, replayable batches, trail entries, and segment replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.digest import iter_records
from glassbox.pipeline.context import DatasetView, SegmentDone, TrainingAPIError, TrainingContext
from glassbox.pipeline.trail import TrainingState, checkpoint_name

MODEL = "tinymodel:build"


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "tinymodel.py").write_text(
        "import torch\n\ndef build(width=3):\n    return torch.nn.Linear(2, width)\n"
    )
    return code


def ctx_for(code_dir: Path, tmp_path: Path, **kwargs: Any) -> TrainingContext:
    records = tuple(f'{{"x": {i}}}'.encode() for i in range(20))
    return TrainingContext(
        params={},
        seed=5,
        code_dir=code_dir,
        factory=MODEL,
        model_config={"width": 3},
        datasets={"d": DatasetView("d", tmp_path / "d.jsonl", "jsonl", records)},
        output_dir=tmp_path / "out",
        checkpoint_interval=4,
        **kwargs,
    )


def run(ctx: TrainingContext, total: int = 10) -> list[int]:
    model = ctx.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ctx.track(model, opt)
    seen = []
    for step in ctx.steps(total):
        idx = ctx.batch_indices(step, 6)
        seen.append(step)
        x = idx.float().reshape(-1, 1).repeat(1, 2) / 20
        loss = model(x).pow(2).mean() + torch.rand(1, generator=ctx.generator).sum() * 0
        opt.zero_grad()
        loss.backward()
        opt.step()
    return seen


def test_trail_entries_at_start_interval_and_end(code_dir: Path, tmp_path: Path) -> None:
    ctx = ctx_for(code_dir, tmp_path)
    assert run(ctx) == list(range(10))
    assert [e.step for e in ctx.trail] == [0, 4, 8, 10]
    # 6 indices per step: 4 steps, 4 steps, 2 steps.
    assert [e.samples for e in ctx.trail] == [0, 24, 24, 12]


def test_batches_are_a_pure_function_of_seed_and_step(code_dir: Path, tmp_path: Path) -> None:
    a = ctx_for(code_dir, tmp_path)
    b = ctx_for(code_dir, tmp_path)
    assert torch.equal(a.batch_indices(5, 6), b.batch_indices(5, 6))
    b.batch_indices(0, 6)
    assert torch.equal(a.batch_indices(2, 6), b.batch_indices(2, 6))
    # Each epoch is a permutation without repeats (3 full batches of 6 out of 20 records).
    epoch = torch.cat([a.batch_indices(s, 6) for s in range(3)])
    assert len(set(epoch.tolist())) == 18
    with pytest.raises(TrainingAPIError, match="does not fit"):
        a.batch_indices(0, 21)


def test_replay_of_a_segment_lands_on_the_recorded_state(code_dir: Path, tmp_path: Path) -> None:
    ckpts = tmp_path / "ckpts"
    full = ctx_for(code_dir, tmp_path, checkpoint_dir=ckpts)
    run(full)
    start = TrainingState.load(ckpts / checkpoint_name(4))
    replay = ctx_for(code_dir, tmp_path, start=start, stop_step=8)
    with pytest.raises(SegmentDone):
        run(replay)
    assert replay.start_step == 4
    assert replay.trail[-1] == full.trail[2]


def test_checkpoint_call_adds_an_entry(code_dir: Path, tmp_path: Path) -> None:
    ctx = ctx_for(code_dir, tmp_path)
    model = ctx.build_model()
    ctx.track(model)
    for step in ctx.steps(3):
        if step == 1:
            ctx.checkpoint()
    assert [e.step for e in ctx.trail] == [0, 2, 3]


def test_api_misuse_is_explained(code_dir: Path, tmp_path: Path) -> None:
    ctx = ctx_for(code_dir, tmp_path)
    with pytest.raises(TrainingAPIError, match=r"before ctx\.steps"):
        ctx.steps(3)
    with pytest.raises(TrainingAPIError, match="not declared"):
        ctx.dataset("nope")
    ctx.track(ctx.build_model())
    ctx.steps(3)
    with pytest.raises(TrainingAPIError, match="once"):
        ctx.steps(3)
    with pytest.raises(TrainingAPIError, match=r"before ctx\.steps"):
        ctx.new_generator("late")


def test_recipe_code_is_compiled_from_source_not_pycache(code_dir: Path, tmp_path: Path) -> None:
    import sys

    # A stale bytecode file that would return a different architecture if it were trusted.
    cache = code_dir / "__pycache__"
    cache.mkdir()
    (code_dir / "evilmod.py").write_text("def build():\n    return 'source'\n")
    import py_compile

    other = tmp_path / "evilmod.py"
    other.write_text("def build():\n    return 'bytecode'\n")
    tag = sys.implementation.cache_tag
    py_compile.compile(str(other), cfile=str(cache / f"evilmod.{tag}.pyc"))
    import os

    st = (code_dir / "evilmod.py").stat()
    os.utime(other, (st.st_atime, st.st_mtime))
    from glassbox.pipeline.context import import_callable

    sys.modules.pop("evilmod", None)
    assert import_callable(code_dir, "evilmod:build")() == "source"


def test_custom_sampler_indices_are_recorded(code_dir: Path, tmp_path: Path) -> None:
    from glassbox.pipeline.trail import data_digest

    ctx = ctx_for(code_dir, tmp_path)
    ctx.track(ctx.build_model())
    for step in ctx.steps(4):
        ctx.record_data([step, step + 1])
    assert ctx.trail[1].data == data_digest([0, 1, 1, 2, 2, 3, 3, 4])[0]
    assert ctx.trail[1].samples == 8


def test_checkpoint_after_the_loop_records_once(code_dir: Path, tmp_path: Path) -> None:
    ctx = ctx_for(code_dir, tmp_path)
    ctx.track(ctx.build_model())
    for _ in ctx.steps(2):
        pass
    ctx.checkpoint()  # the final entry exists already: nothing new
    assert [e.step for e in ctx.trail] == [0, 2]


def test_isolated_imports_never_reuse_another_code_dirs_module(tmp_path: Path) -> None:
    """Two verified code directories both providing ``model`` must each run their own code;
    a cached ``sys.modules['model']`` from the first must not answer for the second."""
    import sys

    from glassbox.pipeline.context import import_callable

    dirs = []
    for label in ("first", "second"):
        code = tmp_path / label
        code.mkdir()
        (code / "helpers.py").write_text(f"LABEL = {label!r}\n")
        (code / "model.py").write_text("import helpers\n\ndef build():\n    return helpers.LABEL\n")
        dirs.append(code)
    before = set(sys.modules)
    assert import_callable(dirs[0], "model:build", isolated=True)() == "first"
    assert import_callable(dirs[1], "model:build", isolated=True)() == "second"
    assert import_callable(dirs[0], "model:build", isolated=True)() == "first"
    # Nothing leaks: the next importer of 'model' or 'helpers' is not handed recipe code.
    assert "model" not in set(sys.modules) - before
    assert "helpers" not in set(sys.modules) - before


# --- lazy datasets -----------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from("abc"), st.integers() | st.text(max_size=5)),
        min_size=1,
        max_size=20,
    ),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    blank=st.booleans(),
)
def test_take_reads_exactly_the_committed_records(
    tmp_path: Path, rows: list[dict[str, object]], bom: bool, newline: str, blank: bool
) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in rows]
    if blank:
        lines.insert(len(lines) // 2, "   ")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines).encode() + b"\n")
    committed = list(iter_records(path))
    view = DatasetView("d", path, "jsonl", None, len(committed))
    order = list(reversed(range(len(committed))))
    assert view.take(order) == [committed[i] for i in order]
    assert view._records is None  # take() did not load the dataset
    assert len(view) == len(committed)
    assert list(view.iter_records()) == committed
    assert view.records() == tuple(committed)


def test_lazy_view_falls_back_for_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    view = DatasetView("d", path, "csv")
    assert len(view) == 2 and view.take([1]) == [b'["3","4"]']
    with pytest.raises(TrainingAPIError, match="record 5 is not in dataset"):
        DatasetView("j", _jsonl(tmp_path), "jsonl").take([5])


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "j.jsonl"
    path.write_text('{"a": 1}\n')
    return path

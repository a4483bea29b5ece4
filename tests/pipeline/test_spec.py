"""Pipeline files are validated like recipes: one error naming the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.pipeline.spec import PipelineError, load_pipeline, parse_pipeline

ROOT = "0" * 64
GOOD = f"""schema = 1
name = "p"
version = "1"
licence = "MIT"

[labellers]
alice = "keys/alice.pub"

[[upstream]]
name = "d"
path = "data.jsonl"
commitment = "{ROOT}"
licence = "MIT"
key = "id"

[[steps]]
name = "filter"
kind = "filter"
inputs = {{ d = "upstream.d" }}
code = "steps"
entry = "step:run"
outputs = ["d.jsonl"]

[[steps]]
name = "label"
kind = "label"
inputs = {{ d = "filter.d" }}
decisions = "decisions.jsonl"
attestations = ["alice.intoto.json"]

[[steps]]
name = "train"
kind = "train"
inputs = {{ train = "label.d" }}
code = "steps"
entry = "train:train"
factory = "model:build"
keep = ["model.safetensors"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "steps").mkdir()
    (tmp_path / "data.jsonl").write_text('{"id": 1}\n')
    (tmp_path / "decisions.jsonl").write_text('{"id": 1, "label": 0, "labeller": "alice"}\n')
    return tmp_path


def test_good_pipeline_parses(root: Path) -> None:
    (root / "pipeline.toml").write_text(GOOD)
    pipeline = load_pipeline(root)
    assert [s.name for s in pipeline.steps] == ["filter", "label", "train"]
    assert pipeline.step("filter").allow == ("removed",)
    assert pipeline.step("label").allow == ("relabelled",)
    assert pipeline.step("label").outputs == ("d.jsonl",)
    assert pipeline.step("train").depends_on() == {"label"}


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("schema = 1", "schema = 2", 1, "schema must be 1"),
        ('name = "p"', 'name = "p"\ncolour = "red"', 3, "unknown key 'colour'"),
        (f'commitment = "{ROOT}"', 'commitment = "abc"', 12, "64-digit hex root"),
        ('path = "data.jsonl"', 'path = "missing.jsonl"', 11, "not found"),
        ('kind = "filter"', 'kind = "filtre"', 18, "kind 'filtre' is not one of"),
        ('inputs = { d = "upstream.d" }', 'inputs = { d = "upstream.x" }', 19, "no upstream"),
        ('inputs = { d = "filter.d" }', 'inputs = { d = "train.d" }', 27, "no earlier step"),
        ('inputs = { d = "filter.d" }', 'inputs = { d = "filter.e" }', 27, "no dataset output 'e'"),
        ('outputs = ["d.jsonl"]', 'outputs = ["../d.jsonl"]', 22, "inside the step's output"),
        ('entry = "step:run"', 'entry = "step.run"', 21, "is not 'module:function'"),
        ('alice = "keys/alice.pub"', 'alice = "/etc/passwd"', 7, "inside the pipeline"),
        ('outputs = ["d.jsonl"]', 'outputs = ["d.jsonl"]\nallow = ["eaten"]', 23, "allow lists"),
        ('outputs = ["d.jsonl"]', 'outputs = ["d.jsonl"]\nkeep = ["x"]', 23, "unknown key 'keep'"),
        ('name = "label"', 'name = "filter"', 25, "used twice"),
        ('keep = ["model.safetensors"]', "keep = []", 38, "'keep' must name"),
        ('kind = "train"', 'kind = "fine-tune"', 31, "names base"),
    ],
)
def test_errors_name_the_line(root: Path, old: str, new: str, line: int, message: str) -> None:
    assert old in GOOD
    source = root / "pipeline.toml"
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(GOOD.replace(old, new, 1), source)
    assert str(caught.value).startswith(f"{source}:{line}: "), str(caught.value)
    assert message in str(caught.value)


def test_unreadable_files_are_one_line(root: Path) -> None:
    with pytest.raises(PipelineError, match="not found"):
        load_pipeline(root / "nope.toml")
    (root / "pipeline.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(PipelineError, match="not UTF-8"):
        load_pipeline(root)
    (root / "pipeline.toml").write_text("schema = [")
    with pytest.raises(PipelineError, match="not valid TOML"):
        load_pipeline(root)
    (root / "pipeline.toml").write_text("a = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(PipelineError):
        load_pipeline(root)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_crashes(root: Path, text: str) -> None:
    try:
        parse_pipeline(text, root / "pipeline.toml")
    except PipelineError as exc:
        assert str(exc).startswith(str(root / "pipeline.toml"))

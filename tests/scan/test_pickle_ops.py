"""The symbolic pickle interpreter: name resolution, memo tracking, hostile streams."""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan.pickle_ops import ByteReader, run_pickle
from tests.scan import make_corpus as mc


def run(data: bytes):  # type: ignore[no-untyped-def]
    return run_pickle(ByteReader(io.BytesIO(data)))


def names(data: bytes) -> set[str]:
    return {f"{g.module}.{g.name}" for g in run(data).globals}


def test_plain_data_uses_only_allowlisted_globals_in_every_protocol() -> None:
    from glassbox.scan.callables import Verdict, classify

    obj = {"a": [1, 2.5, "x", None, True, b"raw"], "t": (1, (2, 3)), "s": {1}, "f": frozenset()}
    for proto in range(6):
        res = run(pickle.dumps(obj, protocol=proto))
        assert res.stopped and res.issues == []
        assert all(classify(g.module, g.name).verdict is Verdict.ALLOWED for g in res.globals)
    assert run(pickle.dumps(obj, protocol=4)).globals == []


def test_reduce_call_is_resolved_and_marked_called() -> None:
    res = run(mc.call("os", "system", "true"))
    assert [(g.module, g.name, g.called) for g in res.globals] == [("os", "system", True)]


def test_stack_global_from_memo_is_resolved() -> None:
    assert names(mc.stack_global_call("os", "system", "true")) == {"os.system"}


def test_memo_binput_memoize_mix_is_tracked_like_cpython() -> None:
    # A naive model of MEMOIZE would resolve memo[0]/memo[1] to the torch strings.
    assert names(mc.memo_confusion()) == {"os.system"}


def test_put_memoizes_the_stack_top() -> None:
    assert names(mc.memo_put_confusion()) == {"os.system"}


def test_protocol_2_python2_names_are_mapped() -> None:
    assert names(mc.builtins_import_chain()) == {"builtins.getattr", "builtins.__import__"}


def test_unicode_and_string_escapes_are_decoded() -> None:
    assert names(mc.unicode_escape_names()) == {"os.system"}


def test_unknown_string_escape_is_kept_without_a_warning() -> None:
    data = b"V\\u006f\\u0073\n" + b"S'sys\\qtem'\n" + mc.STACK_GLOBAL + mc.STOP
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert names(data) == {"os.sys\\qtem"}


def test_computed_module_name_is_unresolved() -> None:
    res = run(mc.computed_stack_global())
    assert any(i.kind == "unresolved" for i in res.issues)


def test_ext_codes_are_reported() -> None:
    for op, width in ((b"\x82", 1), (b"\x83", 2), (b"\x84", 4)):
        res = run(mc.ext_code(op, width))
        assert [i.subject for i in res.issues if i.kind == "extension"] == ["ext:7"]


def test_build_on_an_imported_object_is_a_mutation() -> None:
    res = run(mc.build_setattr_global())
    assert any(i.kind == "global-mutation" and i.subject == "numpy.prod" for i in res.issues)
    assert "numpy.prod.a" in {f"{g.module}.{g.name}" for g in res.globals}


def test_setstate_injection_is_reported() -> None:
    res = run(mc.setstate_injection())
    assert any(i.kind == "setstate" and i.subject == "__setstate__" for i in res.issues)


def test_inst_obj_newobj_are_calls() -> None:
    for data in (mc.inst_opcode(), mc.obj_opcode(), mc.newobj_popen(), mc.newobj_ex()):
        assert all(g.called for g in run(data).globals)


def test_nested_pickle_bytes_are_surfaced() -> None:
    res = run(mc.nested_pickle_loads())
    assert len(res.nested) == 1 and res.nested[0].via == "_pickle.loads"


def test_truncated_stream_keeps_what_it_saw() -> None:
    res = run(mc.truncated_after_payload())
    assert not res.stopped
    assert names(mc.truncated_after_payload()) == {"os.system"}
    assert any(i.kind == "malformed" for i in res.issues)


def test_long_strings_are_skipped_not_kept() -> None:
    data = pickle.dumps("x" * 100_000, protocol=4)
    res = run(data)
    assert res.stopped and res.issues == []


def test_huge_declared_length_is_malformed_not_allocated() -> None:
    data = b"\x80\x04\x8e" + (1 << 62).to_bytes(8, "little") + b"abc."
    res = run(data)
    assert not res.stopped and res.issues[0].kind == "malformed"


def test_deep_marks_do_not_recurse() -> None:
    data = b"\x80\x02" + b"(" * 200_000 + b"t" * 200_000 + b"."
    res = run(data)
    assert res.stopped


def test_concatenated_reads_stop_at_the_first_stop() -> None:
    first = pickle.dumps([1], protocol=2)
    reader = ByteReader(io.BytesIO(first + mc.call("os", "system", "true")))
    assert run_pickle(reader).globals == []
    assert reader.offset == len(first)
    assert {g.name for g in run_pickle(reader).globals} == {"system"}


def test_opcode_count_matches_pickletools() -> None:
    data = pickle.dumps({"k": list(range(50)), "t": ("a", b"b")}, protocol=4)
    assert run(data).opcodes == sum(1 for _ in pickletools.genops(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_never_crash(data: bytes) -> None:
    res = run(data)
    assert res.end <= len(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([t for _, t in mc.technique_pickles()] + [mc.benign_pickle()]),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=8),
)
def test_mutated_pickles_never_crash(base: bytes, pos: int, patch: bytes) -> None:
    pos = min(pos, len(base))
    run(base[:pos] + patch + base[pos + len(patch) :])
    run(base[:pos])


@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
def test_numpy_arrays_pickle_only_allowlisted_globals(proto: int) -> None:
    import numpy as np

    from glassbox.scan.callables import Verdict, classify

    data = pickle.dumps({"a": np.arange(4.0), "s": np.float32(2)}, protocol=proto)
    res = run(data)
    assert res.stopped
    assert all(classify(g.module, g.name).verdict is Verdict.ALLOWED for g in res.globals)


def test_kept_strings_have_a_total_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.scan.pickle_ops as ops

    monkeypatch.setattr(ops, "MAX_KEPT_TOTAL", 1000)
    data = b"\x80\x04" + (b"\x8c\xff" + b"a" * 255 + b"\x94") * 10 + b"."
    machine = ops.PickleMachine(ByteReader(io.BytesIO(data)))
    res = machine.run()
    assert res.stopped
    kept = [v for v in machine.memo.values() if isinstance(v, str)]
    assert len(kept) == 3  # 3 * 255 fits in 1000 bytes; the rest are opaque


def test_stack_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import glassbox.scan.pickle_ops as ops

    monkeypatch.setattr(ops, "MAX_STACK", 100)
    res = run(b"\x80\x02" + b"N" * 10_000 + b".")
    assert not res.stopped and "stack limit" in res.issues[0].message


def test_tensor_view_must_fit_its_storage() -> None:
    assert run(mc.tensor_view(offset=0, size=2)).issues == []
    assert run(mc.tensor_view(offset=1, size=1)).issues == []
    (issue,) = run(mc.tensor_view(offset=1, size=2)).issues
    assert issue.kind == "tensor-bounds" and issue.subject == "storage:0"
    assert [i.kind for i in run(mc.tensor_view(offset=0, size=200)).issues] == ["tensor-bounds"]


def test_real_torch_tensors_fit_their_storage() -> None:
    import torch

    t = torch.arange(12.0).reshape(3, 4)
    state = {"w": t, "view": t[1:, 2:], "t": t.t(), "empty": torch.zeros(0, 3)}
    buf = io.BytesIO()
    torch.save(state, buf)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    res = run(data)
    assert res.stopped and res.issues == []

"""The scanner's fast paths must see exactly what the slow paths see.

The pickle interpreter handles common opcodes inline on its buffer and falls back to the
opcode handlers at buffer edges; in-memory sources skip re-reads; zip members that only might
be pickles are checksummed after the scan; GGUF vocabularies are skipped in bulk. Each test here
would fail if a fast path dropped or changed what is reported.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan import scan_path, templates
from glassbox.scan.pickle_ops import ByteReader, PickleResult, run_pickle
from tests.scan import make_corpus as mc

EVIL = mc.call("os", "system", "true")


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, so opcodes straddle the reader's
    buffer edges at every position and the interpreter takes its handler path there."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._data)
        out = self._data[self._pos : self._pos + min(n, self._step)]
        self._pos += len(out)
        return out


def summary(res: PickleResult) -> tuple[Any, ...]:
    return (
        [(g.module, g.name, g.opcode, g.offset, g.called) for g in res.globals],
        [(i.kind, i.offset, i.subject) for i in res.issues],
        [(n.data, n.offset, n.via) for n in res.nested],
        res.stopped,
        res.end,
        res.protocol,
        res.opcodes,
    )


def both_ways(data: bytes, step: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fast = run_pickle(ByteReader.over(data))
    slow = run_pickle(ByteReader(Trickle(data, step)))  # type: ignore[arg-type]
    return summary(fast), summary(slow)


_PAYLOADS = [
    EVIL,
    mc.stack_global_call("os", "system", "true"),
    mc.memo_confusion(),
    mc.memo_put_confusion(),
    mc.unicode_escape_names(),
    mc.builtins_import_chain(),
    pickle.dumps(OrderedDict(a=[1, 2.5, "é", None, True, b"raw"], t=(1, (2, 3))), protocol=4),
]
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300)
    | st.binary(max_size=300),
    lambda kids: st.lists(kids, max_size=6) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=8), kids, max_size=6),
    max_leaves=40,
)  # fmt: skip
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_VALUES, st.integers(0, 5), st.integers(1, 9))
def test_inline_opcodes_match_the_handlers(value: object, proto: int, step: int) -> None:
    fast, slow = both_ways(pickle.dumps(value, protocol=proto), step)
    assert fast == slow


@_SETTINGS
@given(st.sampled_from(_PAYLOADS), st.integers(0, 400), st.binary(min_size=1, max_size=4),
       st.integers(1, 9))  # fmt: skip
def test_inline_opcodes_match_the_handlers_on_hostile_streams(
    payload: bytes, pos: int, patch: bytes, step: int
) -> None:
    at = pos % len(payload)
    data = payload[:at] + patch + payload[at + len(patch) :]
    fast, slow = both_ways(data, step)
    assert fast == slow


def test_setitems_with_an_unhashable_key_keeps_the_other_items() -> None:
    # {} MARK 'a' 1 [] 2 'b' 3 SETITEMS STOP: the list key is skipped, as item by item.
    data = b"\x80\x04}(\x8c\x01aK\x01]K\x02\x8c\x01bK\x03u."
    for reader in (ByteReader.over(data), ByteReader(Trickle(data, 1))):  # type: ignore[arg-type]
        res = run_pickle(reader)
        assert res.stopped and res.issues == []
        assert res.value == {"a": 1, "b": 3}


def test_inline_memo_and_string_errors_are_still_malformed() -> None:
    undefined_memo = b"\x80\x04h\x07."
    bad_utf8 = b"\x80\x04\x8c\x02\xff\xfe."
    for data in (undefined_memo, bad_utf8):
        res = run_pickle(ByteReader.over(data))
        assert [i.kind for i in res.issues] == ["malformed"]


def _crc_broken_zip(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", mc.benign_pickle())
        zf.writestr(name, payload)
    data = bytearray(buf.getvalue())
    bad = struct.pack("<I", zlib.crc32(payload) ^ 0xFFFFFFFF)
    for sig, at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        idx = data.rfind(sig)  # the second member's local header / central entry
        data[idx + at : idx + at + 4] = bad
    return bytes(data)


def test_large_protocol_0_pickle_member_is_still_crc_checked(tmp_path: Path) -> None:
    # Over the in-memory member size, starting with a protocol-0 opcode: the CRC is decided
    # after the scan finds a pickle, and a bad one is still reported.
    payload = b"(l" + b"I1\na" * 300_000 + b"0" + EVIL[EVIL.index(b"c") :]
    assert len(payload) > 1 << 20
    p = tmp_path / "m.pt"
    p.write_bytes(_crc_broken_zip("archive/extra", payload))
    rules = {(f.rule_id, f.member) for f in scan_path(p, workers=1).findings}
    assert ("GBX-ZIP-004", "archive/extra") in rules
    assert ("GBX-PKL-001", "archive/extra") in rules


def test_large_raw_member_that_only_starts_like_a_pickle_is_not_checksummed(
    tmp_path: Path,
) -> None:
    p = tmp_path / "m.pt"
    p.write_bytes(_crc_broken_zip("archive/data/0", b"(" + b"\xff" * (3 << 19)))
    assert scan_path(p, workers=1).findings == []


def test_binary_that_starts_like_json_is_not_parsed_but_a_broken_config_is_reported(
    tmp_path: Path,
) -> None:
    blob = b"[" + bytes(range(128, 256)) * 8
    (tmp_path / "weights.raw").write_bytes(blob)  # no model-format name (see test_claims.py)
    assert scan_path(tmp_path / "weights.raw", workers=1).findings == []
    (tmp_path / "config.json").write_bytes(blob)
    assert [f.rule_id for f in scan_path(tmp_path / "config.json", workers=1).findings] == [
        "GBX-KER-003"
    ]


def test_compressed_stream_damaged_after_the_payload_is_still_scanned(tmp_path: Path) -> None:
    # Small enough to inflate into memory, but failing at the end: streamed instead, as before.
    data = bytearray(gzip.compress(EVIL + bytes(600_000)))
    data[-8:-4] = b"\x00\x00\x00\x00"  # wrong CRC in the trailer: inflating fails at the end
    p = tmp_path / "x.pkl.gz"
    p.write_bytes(bytes(data))
    assert "GBX-PKL-001" in {f.rule_id for f in scan_path(p, workers=1).findings}


def test_gguf_vocabulary_with_a_token_longer_than_a_read_chunk(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "v.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(["a", "é" * (700_000), *[f"t{i}" for i in range(5000)], "b" * 1_500_000])
    # The template comes after the vocabulary: it is only checked if the skip lands exactly.
    w.add_chat_template(mc.EVIL_TEMPLATES[sorted(mc.EVIL_TEMPLATES)[0]])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    rules = {f.rule_id for f in scan_path(path, workers=1).findings}
    assert rules == {"GBX-TPL-001"}


def test_chat_template_key_spelled_with_escapes_is_still_checked(tmp_path: Path) -> None:
    import json

    evil = mc.EVIL_TEMPLATES[sorted(mc.EVIL_TEMPLATES)[0]]
    text = json.dumps({"model_max_length": 8, "chat_template": evil})
    for spelled in ("chat_template", "chat\\u005ftemplate", "\\u0063hat_template"):
        p = tmp_path / "tokenizer_config.json"
        p.write_text(text.replace('"chat_template"', f'"{spelled}"'))
        assert "GBX-TPL-001" in {f.rule_id for f in scan_path(p, workers=1).findings}, spelled


# ---------------------------------------------------------------- GGUF string arrays
def _gguf_with_vocab(tokens: list[bytes], template: str, count: int | None = None) -> bytes:
    """A GGUF holding a token list and, after it, a chat template: the template is only seen
    if the walk over the token list lands exactly on the next key."""

    def key(name: bytes) -> bytes:
        return struct.pack("<Q", len(name)) + name

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    out += key(b"tokenizer.ggml.tokens") + struct.pack(
        "<IIQ", 9, 8, len(tokens) if count is None else count
    )
    out += b"".join(struct.pack("<Q", len(t)) + t for t in tokens)
    body = template.encode()
    out += key(b"tokenizer.chat_template") + struct.pack("<IQ", 8, len(body)) + body
    return out


def _gguf_rules(tmp_path: Path, data: bytes, chunk: int) -> set[str]:
    from unittest import mock

    from glassbox.scan import gguf_scan

    p = tmp_path / "v.gguf"
    p.write_bytes(data)
    with mock.patch.object(gguf_scan, "READ_CHUNK", chunk):
        return {f.rule_id for f in scan_path(p, workers=1).findings}


_EVIL_TEMPLATE = mc.EVIL_TEMPLATES[sorted(mc.EVIL_TEMPLATES)[0]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=40), max_size=300), st.integers(1, 97))
def test_gguf_string_walk_lands_on_the_next_key_at_any_buffer_size(
    tmp_path_factory: Any, tokens: list[bytes], chunk: int
) -> None:
    tmp = tmp_path_factory.mktemp("gguf")
    assert _gguf_rules(tmp, _gguf_with_vocab(tokens, _EVIL_TEMPLATE), chunk) == {"GBX-TPL-001"}


def test_gguf_string_walk_refuses_hostile_lengths(tmp_path: Path) -> None:
    tokens = [b"tok%d" % i for i in range(2000)]
    good = _gguf_with_vocab(tokens, _EVIL_TEMPLATE)
    at = good.index(b"tok1000") - 8
    cases = {
        "huge length mid-array": good[:at] + struct.pack("<Q", 1 << 63) + good[at + 8 :],
        "string past the end": good[:at] + struct.pack("<Q", len(good)) + good[at + 8 :],
        "longer than a string may be": good[:at]
        + struct.pack("<Q", (64 << 20) + 1)
        + good[at + 8 :],
        "more strings than the file holds": _gguf_with_vocab(tokens, "", count=10**6),
        "truncated in a length": good[: at + 3],
    }
    for chunk in (5, 64, 1 << 20):
        for name, data in cases.items():
            assert _gguf_rules(tmp_path, data, chunk) == {"GBX-GGUF-001"}, (name, chunk)


# ---------------------------------------------------------------- plain tar headers
def _tar(members: list[tuple[str, bytes | None]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if body is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _tarfile_view(data: bytes) -> list[tuple[str, bool, int, int]] | None:
    """What tarfile lists, or None when it raises on the archive at any point."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            return [
                (m.name, m.isfile(), m.offset_data, m.size) for m in tf if m.isfile() or m.isdir()
            ]
    except (tarfile.TarError, ValueError, EOFError, OSError):
        return None


def _plain(data: bytes) -> list[tuple[str, bool, int, int]] | None:
    from glassbox.scan.containers import plain_tar_entries

    return plain_tar_entries(lambda at: data[at : at + 512], len(data), 20_000)


_TAR_MEMBERS = [
    ("sys_info", b"x" * 55),
    ("dir/", None),
    ("dir/pickle", EVIL),
    ("a" * 90 + "/" + "b" * 90, b"long name through the ustar prefix"),
    ("empty", b""),
    ("exact", b"y" * 512),
]


def test_plain_tar_headers_read_as_tarfile_reads_them() -> None:
    short_names = [m for m in _TAR_MEMBERS if len(m[0]) <= 100]  # GNU writes long ones apart
    for fmt, members in ((tarfile.USTAR_FORMAT, _TAR_MEMBERS), (tarfile.GNU_FORMAT, short_names)):
        data = _tar(members, fmt)
        assert _plain(data)
        assert _plain(data) == _tarfile_view(data)
        assert _plain(data + bytes(512) + b"ignored after the end block") == _tarfile_view(data)


def test_tar_features_the_plain_reader_does_not_know_go_to_tarfile() -> None:
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("evil")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    declined = {
        "symlink": link.getvalue(),
        "pax header": _tar([("é" * 120, b"1")], tarfile.PAX_FORMAT),
        "gnu long name": _tar([("n" * 200, b"1")], tarfile.GNU_FORMAT),
        "data past the end": _tar([("x", b"1" * 2000)])[:1024],
        "bad checksum": b"\x00" * 148 + b"0000000\x00" + _tar([("x", b"1")])[156:],
        "empty": b"",
    }
    for name, data in declined.items():
        assert _plain(data) is None, name


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4095), st.binary(min_size=1, max_size=8))
def test_plain_tar_reader_never_disagrees_with_tarfile(pos: int, patch: bytes) -> None:
    base = _tar(_TAR_MEMBERS)
    at = pos % len(base)
    data = base[:at] + patch + base[at + len(patch) :]
    plain = _plain(data)
    if plain is not None:  # whatever it accepts, tarfile reads the same way, without error
        assert plain == _tarfile_view(data)


def test_tar_scans_the_same_with_and_without_the_plain_reader(tmp_path: Path) -> None:
    from unittest import mock

    from glassbox.scan import containers

    evil_name = [("../../escape.pkl", EVIL), ("archive/data.pkl", mc.benign_pickle())]
    for i, members in enumerate((_TAR_MEMBERS, evil_name)):
        p = tmp_path / f"t{i}.tar"
        p.write_bytes(_tar(members))
        fast = [f.to_dict() for f in scan_path(p, workers=1).findings]
        with mock.patch.object(containers, "plain_tar_entries", lambda *_a: None):
            slow = [f.to_dict() for f in scan_path(p, workers=1).findings]
        assert fast == slow and fast


# ---------------------------------------------------------------- small-file reads
def test_small_file_read_does_not_trust_a_stale_size(tmp_path: Path) -> None:
    from glassbox.scan.scanner import read_small

    p = tmp_path / "f"
    body = bytes(range(256)) * 300
    p.write_bytes(body)
    for stated in (0, 1, len(body) - 1, len(body), len(body) + 1, 10 * len(body)):
        assert read_small(p, stated) == body
        assert read_small(p, stated, limit=len(body) - 1) is None  # grew past the limit


def test_file_that_grew_past_the_in_memory_size_is_streamed(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from glassbox.scan import scanner

    p = tmp_path / "x.pkl"
    p.write_bytes(EVIL + b"\0" * 4096)
    monkeypatch.setattr(scanner, "SMALL_FILE", 1024)  # listed as small, larger when read
    ctx = scanner.scan_file(p, "x.pkl", None, 100)
    assert "GBX-PKL-001" in {f.rule_id for f in ctx.findings}


# ---------------------------------------------------------------- numpy headers
_DESCRS = st.sampled_from(["<f4", ">i8", "|b1", "<U7", "<M8[ns]", "|O", "|V16", "<c16", "u1"])
_HEADERS = st.builds(
    lambda descr, order, shape: (
        repr({"descr": descr, "fortran_order": order, "shape": shape})[:-1] + ", }"
    ),
    _DESCRS,
    st.booleans(),
    st.lists(st.integers(0, 10**12), max_size=4).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(_HEADERS, st.integers(0, 200), st.text(max_size=4), st.sampled_from(["", " " * 7 + "\n"]))
def test_usual_numpy_header_reads_as_literal_eval_reads_it(
    header: str, pos: int, patch: str, pad: str
) -> None:
    import ast

    from glassbox.scan.numpy_scan import usual_header

    assert usual_header(header + pad) == ast.literal_eval(header + pad)
    at = pos % (len(header) + 1)
    mutated = header[:at] + patch + header[at + len(patch) :] + pad
    fast = usual_header(mutated)
    if fast is not None:  # whatever the fast reader accepts, literal_eval reads the same way
        assert fast == ast.literal_eval(mutated)


def test_numpy_arrays_in_an_npz_scan_the_same_through_either_header_reader(
    tmp_path: Path,
) -> None:
    from unittest import mock

    import numpy as np

    from glassbox.scan import numpy_scan

    p = tmp_path / "a.npz"
    np.savez(
        p,
        plain=np.zeros((3, 2), "<f4"),
        fortran=np.zeros((2, 2), order="F"),
        records=np.zeros(2, dtype=[("a", "<i4")]),
        objects=np.array([1, None], dtype=object),
    )
    fast = [f.to_dict() for f in scan_path(p, workers=1).findings]
    with mock.patch.object(numpy_scan, "usual_header", lambda _text: None):
        slow = [f.to_dict() for f in scan_path(p, workers=1).findings]
    assert fast == slow and fast  # the object array is reported either way


# Every opcode the loop handles inline, in the cases where it must fall back to its handler
# (no mark, empty stack, a target that is not a list, an imported object as the target).
_INLINE_EDGES = [
    b"\x80\x02(K\x01K\x02M\xff\xfft.",  # TUPLE, BININT2
    b"\x80\x02t.",  # TUPLE without a MARK
    b"\x80\x02]K\x01a]q\x00(K\x01K\x02e.",  # EMPTY_LIST, APPEND, APPENDS
    b"\x80\x02K\x01K\x02a.",  # APPEND to an int
    b"\x80\x02(K\x01e.",  # APPENDS with nothing under the MARK
    b"\x80\x02cos\nenviron\nK\x01a.",  # APPEND to an imported object
    b"\x80\x02cos\nenviron\n(K\x01e.",  # APPENDS to an imported object
    b"\x80\x02(K\x010N0.",  # POP, then POP of a MARK
    b"\x80\x020.",  # POP on an empty stack
    b"\x80\x02M\x01",  # BININT2 cut short
    b"\x80\x06N.",  # PROTO of a protocol that does not exist
    b"\x80\x02N\x80\x05N.",  # a second PROTO
]


def test_inline_list_tuple_and_pop_opcodes_match_their_handlers() -> None:
    for data in _INLINE_EDGES:
        for step in (1, 2, 3):
            fast, slow = both_ways(data, step)
            assert fast == slow, data


def test_scanning_leaves_no_reference_cycles(tmp_path: Path) -> None:
    """A scan's context, sources and findings are freed when the scan returns: a reference
    cycle (the joblib inline-pickle callback once referred to itself) left them for the
    garbage collector, whose passes the whole process then paid for, file after file."""
    import gc

    import joblib
    import numpy as np

    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": [1, 2.0, "x"]}, protocol=4))
    inline = tmp_path / "objects.joblib"  # an object array: a pickle written inline
    joblib.dump({"arr": np.array([1, "a", None], dtype=object)}, inline)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    for path in (plain, inline, evil):
        scan_path(path, workers=1)  # imports and caches first
        gc.collect()
        gc.disable()
        try:
            report = scan_path(path, workers=1)
            left = gc.collect()
        finally:
            gc.enable()
        assert left == 0, f"{path.name}: {left} objects only the garbage collector could free"
        assert report.files_scanned == 1
    assert scan_path(inline, workers=1).file_formats["objects.joblib"] == ["pickle"]
    assert scan_path(evil, workers=1).findings


_TEMPLATE_PIECES = [
    *"~'\"%* \t\n[](){}|._\\xuUN07+-abcdefghijklmnopqrstuvwxyz",
    *("é", "__", "{%", "%}", "format_map", "os", "popen", "system", "eval", "exec"),
    *templates._WORDS,
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_TEMPLATE_PIECES), max_size=40).map("".join))
def test_template_prefilters_agree_with_the_patterns_they_stand_for(text: str) -> None:
    """The chat-template checks skip slow regular expressions by substring tests first: the
    split ingredient test is the one pattern's answer, and no raw pattern can match a text
    its words are missing from."""
    assert templates._has_ingredients(text) == bool(templates._INGREDIENTS.search(text))
    for pattern, _why, needs in templates._RAW_PATTERNS:
        if pattern.search(text):
            assert not needs or any(word in text for word in needs), pattern.pattern

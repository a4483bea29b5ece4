"""The reviewed lists that decide what a pickle may call.

Allowlist first: a callable is safe only if it is named here exactly, after review of what it
does when an unpickler calls it with attacker-chosen arguments. Everything else is a finding:
``DANGEROUS`` prefixes are critical (they run processes or code, import modules, touch files or
the network, or are known gadgets that reach those), anything merely unknown is still reported,
because scanners that only blocklist have been bypassed with callables nobody thought to list.

Review rule for an allowlist entry: calling it with any arguments must not execute code, import
a module named by the data, read or write files, or open connections; it may only build data.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

# Exact (module, name) pairs. Reviewed: each only constructs data from its arguments.
_TORCH_REBUILDS = (
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_sparse_tensor",
    "_rebuild_nested_tensor",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_wrapper_subclass",
    "_rebuild_qtensor",
)
_TORCH_STORAGES = (
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
    "ComplexFloatStorage",
    "ComplexDoubleStorage",
    "QInt8Storage",
    "QUInt8Storage",
    "QInt32Storage",
    "QUInt4x2Storage",
    "QUInt2x4Storage",
    "UntypedStorage",
)
_TORCH_DTYPES = (
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "half",
    "float",
    "double",
    "complex64",
    "complex128",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
    "qint8",
    "quint8",
    "qint32",
    "float8_e4m3fn",
    "float8_e5m2",
    "uint16",
    "uint32",
    "uint64",
)
_TORCH_MISC = (
    "Size",
    "device",
    "strided",
    "sparse_coo",
    "sparse_csr",
    "per_tensor_affine",
    "per_channel_affine",
    "contiguous_format",
    "channels_last",
    "preserve_format",
)

_NUMPY_CORE = (
    "_reconstruct",
    "scalar",
)
_NUMPY_TYPES = (
    "ndarray",
    "dtype",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "longdouble",
    "complex64",
    "complex128",
    "str_",
    "bytes_",
    "object_",
    "void",
)
# numpy >= 1.25 pickles ``numpy.dtypes.Float64DType`` and friends for dtype classes.
_NUMPY_DTYPE_CLASS = re.compile(r"^(?:[A-Z][A-Za-z0-9]*DType)$")

_SKLEARN_SUBPACKAGES = frozenset(
    {
        "linear_model",
        "tree",
        "ensemble",
        "preprocessing",
        "pipeline",
        "svm",
        "neighbors",
        "naive_bayes",
        "decomposition",
        "cluster",
        "feature_extraction",
        "compose",
        "impute",
        "neural_network",
        "discriminant_analysis",
        "kernel_ridge",
        "calibration",
        "dummy",
        "feature_selection",
        "cross_decomposition",
        "gaussian_process",
        "isotonic",
        "kernel_approximation",
        "manifold",
        "mixture",
        "multiclass",
        "multioutput",
        "random_projection",
        "semi_supervised",
        "_loss",
        "utils",
        "model_selection",
        "metrics",
    }
)
# Metric functions are only referenced by pickled scorers (called later, on arrays).
_SKLEARN_METRIC_MODULES = frozenset(
    {
        "sklearn.metrics._classification",
        "sklearn.metrics._regression",
        "sklearn.metrics._ranking",
        "sklearn.metrics._scorer",
    }
)
_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# scipy.sparse matrices (sklearn keeps them in fitted vectorizers): plain attribute state.
_SCIPY_SPARSE = re.compile(r"^scipy\.sparse\._(csr|csc|coo|bsr|dia|dok|lil)$")
_SCIPY_SPARSE_CLASS = re.compile(r"^(csr|csc|coo|bsr|dia|dok|lil)_(matrix|array)$")
# sklearn classes that hold or call arbitrary user callables, or read files: never allowed.
_SKLEARN_DENIED_CLASSES = frozenset(
    {"FunctionTransformer", "Memory", "HashingVectorizer", "ColumnTransformer_callable"}
)
_CLASS_NAME = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("torch._utils", n) for n in _TORCH_REBUILDS]
    + [("torch", n) for n in _TORCH_STORAGES + _TORCH_DTYPES + _TORCH_MISC]
    + [
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.serialization", "_get_layout"),
        ("torch.nn.parameter", "Parameter"),
        ("torch.storage", "UntypedStorage"),
        ("torch.storage", "TypedStorage"),
        # TorchScript list/tag builders: each returns its argument unchanged.
        ("torch.jit._pickle", "build_intlist"),
        ("torch.jit._pickle", "build_doublelist"),
        ("torch.jit._pickle", "build_boollist"),
        ("torch.jit._pickle", "build_tensorlist"),
        ("torch.jit._pickle", "restore_type_tag"),
    ]
    + [("numpy.core.multiarray", n) for n in _NUMPY_CORE]
    + [("numpy._core.multiarray", n) for n in _NUMPY_CORE]
    + [("numpy", n) for n in _NUMPY_TYPES]
    + [
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.ma.core", "MaskedArray"),
        ("numpy.ma", "MaskedArray"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._generator", "Generator"),
    ]
    + [
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "Counter"),
        ("collections", "deque"),
        ("builtins", "object"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "tuple"),
        ("builtins", "bytearray"),
        ("builtins", "bytes"),
        ("builtins", "complex"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "str"),
        ("builtins", "bool"),
        ("builtins", "slice"),
        ("builtins", "range"),
        # copyreg helpers only instantiate the class they are given; that class is a separate
        # global in the stream and is classified on its own.
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("_codecs", "encode"),
        ("codecs", "encode"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.tree._tree", "Tree"),
        ("sklearn._loss.loss", "HalfBinomialLoss"),
        ("sklearn._loss.loss", "HalfMultinomialLoss"),
        ("sklearn._loss.loss", "HalfSquaredError"),
        ("sklearn._loss._loss", "CyHalfBinomialLoss"),
        ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
        ("sklearn._loss._loss", "CyHalfSquaredError"),
        ("sklearn._loss.link", "LogitLink"),
        ("sklearn._loss.link", "IdentityLink"),
        ("sklearn._loss.link", "MultinomialLogit"),
        ("sklearn._loss.link", "Interval"),
        ("sklearn.neighbors._kd_tree", "KDTree"),
        ("sklearn.neighbors._ball_tree", "BallTree"),
        ("sklearn.neighbors._kd_tree", "newObj"),
        ("sklearn.neighbors._ball_tree", "newObj"),
        ("sklearn.metrics._dist_metrics", "EuclideanDistance64"),
        ("sklearn.metrics._dist_metrics", "newObj"),
    ]
)

# Prefixes of qualified names (``module.name``) that run code, spawn processes, import modules,
# touch files or the network, or are published scanner-bypass gadgets. Matched on dotted
# component boundaries, so ``os`` matches ``os.system`` but not ``osmosis``.
DANGEROUS_PREFIXES: frozenset[str] = frozenset(
    {
        # processes and the OS
        "os",
        "posix",
        "nt",
        "subprocess",
        "_posixsubprocess",
        "_winapi",
        "pty",
        "commands",
        "popen2",
        "sys",
        "signal",
        "multiprocessing",
        "_multiprocessing",
        "concurrent",
        "asyncio",
        "threading",
        "_thread",
        "platform",
        "_aix_support",
        "uuid._get_command_stdout",
        "uuid._popen",
        "mailcap",
        "pydoc",
        "pipes",
        "ctypes",
        "_ctypes",
        "cffi",
        "resource",
        "gc",
        "weakref",
        # code execution, imports, reflection
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.hasattr",
        "builtins.open",
        "builtins.input",
        "builtins.breakpoint",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.dir",
        "builtins.help",
        "builtins.exit",
        "builtins.quit",
        "builtins.super",
        "builtins.type",
        "builtins.classmethod",
        "builtins.staticmethod",
        "builtins.property",
        "builtins.memoryview",
        "builtins.map",
        "builtins.filter",
        "builtins.print",
        "builtins.__build_class__",
        "importlib",
        "imp",
        "pkgutil",
        "runpy",
        "zipimport",
        "site",
        "sysconfig",
        "code",
        "codeop",
        "pickle",
        "_pickle",
        "cPickle",
        "pickletools",
        "copyreg._reconstructor.__call__",
        "marshal",
        "types",
        "inspect",
        "dis",
        "ast",
        "functools",
        "_functools",
        "operator",
        "_operator",
        "itertools.starmap",
        "contextlib",
        "atexit",
        "dill",
        "cloudpickle",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "joblib.numpy_pickle_compat",
        "joblib.parallel",
        "joblib.Parallel",
        "joblib.delayed",
        "jsonpickle",
        "yaml",
        "jinja2",
        "mako",
        # debuggers, profilers and other code-running standard library modules
        "pdb",
        "bdb",
        "timeit",
        "cProfile",
        "profile",
        "trace",
        "doctest",
        "idlelib",
        "lib2to3",
        "tkinter",
        "turtle",
        "unittest",
        "test",
        "distutils",
        "setuptools",
        "pip",
        "ensurepip",
        "venv",
        "logging.config",
        "logging.FileHandler",
        "logging.handlers",
        "_osx_support",
        "_pyrepl",
        # interpreter internals that run source, import, or load modules
        "_xxsubinterpreters",
        "_interpreters",
        "_xxinterpchannels",
        "_interpchannels",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "_imp",
        "_bootstrap",
        "_bootstrap_external",
        "_sitebuiltins",
        "_tkinter",
        "readline",
        "rlcompleter",
        # maths and data libraries that evaluate strings as Python
        "sympy",
        "numexpr",
        "pandas.eval",
        "pandas.core.computation",
        "pandas.DataFrame.eval",
        "pandas.DataFrame.query",
        "numpy.polynomial",
        "scipy.weave",
        "jax",
        "torch.serialization",
        "torch.export",
        "torch._export",
        "torch.onnx",
        "torch.testing",
        "torch.utils.checkpoint",
        "torch.autograd.profiler",
        "torch.profiler",
        # scanner tampering: a pickle that imports a scanner wants to switch it off
        "picklescan",
        "fickling",
        "modelscan",
        "glassbox",
        "cgi",
        "cgitb",
        # files
        "io",
        "_io",
        "shutil",
        "tempfile",
        "pathlib",
        "glob",
        "fileinput",
        "linecache",
        "tokenize",
        "tarfile",
        "zipfile",
        "gzip",
        "bz2",
        "lzma",
        "dbm",
        "shelve",
        "sqlite3",
        "mmap",
        # network
        "socket",
        "_socket",
        "ssl",
        "select",
        "selectors",
        "socketserver",
        "http",
        "httplib",
        "urllib",
        "urllib2",
        "urllib3",
        "requests",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "nntplib",
        "telnetlib",
        "xmlrpc",
        "webbrowser",
        "smtpd",
        # ML-framework gadgets from published bypasses
        "torch.hub",
        "torch.load",
        "torch.save",
        "torch.serialization.load",
        "torch.serialization.save",
        "torch.storage._load_from_bytes",
        "torch.jit",
        "torch._dynamo",
        "torch._inductor",
        "torch.utils.bottleneck",
        "torch.utils.cpp_extension",
        "torch.utils.data",
        "torch.utils.collect_env",
        "torch.utils._config_module",
        "torch.fx",
        "torch.package",
        "torch.distributed",
        "torch.multiprocessing",
        "torch._C",
        "torch.compile",
        "torch.ops",
        "torch._ops",
        "torch.library",
        "torch.cuda",
        "torch.backends",
        "numpy.load",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "numpy.save",
        "numpy.savez",
        "numpy.savetxt",
        "numpy.tofile",
        "numpy.memmap",
        "numpy.lib",
        "numpy.f2py",
        "numpy.testing",
        "numpy.distutils",
        "numpy.ctypeslib",
        "numpy.core.memmap",
        "numpy._core.memmap",
        "numpy.DataSource",
        "pandas.read_pickle",
        "pandas.read_csv",
        "pandas.io",
        "keras",
        "tensorflow",
        "transformers",
        "huggingface_hub",
        "sklearn.utils._testing",
        "sklearn.datasets",
        "sklearn.externals",
        "scipy.io",
    }
)

# Attribute names whose appearance in a dotted global name means the pickle walks object
# internals to reach something it could not name directly.
_INTERNAL_ATTRS = frozenset(
    {
        "__globals__",
        "__builtins__",
        "__subclasses__",
        "__import__",
        "__class__",
        "__mro__",
        "__base__",
        "__bases__",
        "__code__",
        "__dict__",
        "__getattribute__",
        "__getattr__",
        "__self__",
        "__func__",
        "__closure__",
        "__loader__",
        "__spec__",
        "__init__",
        "__new__",
        "__call__",
        "__reduce__",
        "__reduce_ex__",
        "__setstate__",
        "__module__",
        "__qualname__",
        "__wrapped__",
    }
)


# Classes that ``torch.save(model)`` of torch.nn and transformers modules references. They are
# allowed as *referenced* classes only (``copyreg._reconstructor(cls, object, None)`` makes an
# empty instance with ``object.__new__`` and BUILD fills its ``__dict__``): a pickle that calls
# one of them directly (REDUCE, NEWOBJ) runs its constructor with attacker-chosen arguments and
# is reported (``Verdict.REFERENCE_ONLY``).
_TORCH_NN_MODULE = re.compile(r"^torch\.nn\.modules\.[a-z_]+$")
_TORCH_OPTIM_MODULE = re.compile(r"^torch\.optim\.(?:[a-z_]+|lr_scheduler)$")
_TRANSFORMERS_MODEL_MODULE = re.compile(
    r"^transformers\.models\.[a-z0-9_]+\.(?:modeling|configuration)_[a-z0-9_]+$"
)
_TRANSFORMERS_CLASS_MODULES = frozenset(
    {
        "transformers.activations",
        "transformers.pytorch_utils",
        "transformers.generation.configuration_utils",
        "transformers.configuration_utils",
        "transformers.modeling_utils",
    }
)
# ATen functional ops that modules keep as attributes (``activation=F.gelu``): tensor maths.
_TORCH_FUNCTIONAL_MODULES = frozenset({"torch.nn.functional", "torch._C._nn"})
# Python objects whose only effect when called is to build a value.
_BUILTIN_VALUE_NAMES = frozenset({"set", "frozenset", "slice", "range", "complex", "bytearray"})


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DANGEROUS = "dangerous"
    UNKNOWN = "unknown"
    REFERENCE_ONLY = "reference-only"  # allowed when only referenced, reported when called


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    reason: str


def _sklearn_allowed(module: str, name: str) -> bool:
    """Estimator classes of reviewed sklearn subpackages: rebuilt via ``__setstate__`` of
    ``BaseEstimator`` (a dict update), never by calling user code. Functions are not allowed."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "sklearn" or parts[1] not in _SKLEARN_SUBPACKAGES:
        return False
    if parts[1] == "utils" and module != "sklearn.utils._bunch":
        return False
    if parts[1] == "metrics":
        return module in _SKLEARN_METRIC_MODULES and bool(
            _CLASS_NAME.match(name) or _FUNCTION_NAME.match(name)
        )
    if name in _SKLEARN_DENIED_CLASSES or "." in name:
        return False
    return bool(_CLASS_NAME.match(name))


def _dangerous_prefix(qualname: str) -> str | None:
    parts = qualname.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in DANGEROUS_PREFIXES:
            return prefix
    return None


@functools.lru_cache(maxsize=8192)
def classify(module: str, name: str) -> Classification:
    """Classify the global ``module.name`` that a pickle would import and maybe call."""
    qualname = f"{module}.{name}"
    attrs = set(module.split(".")) | set(name.split("."))
    internal = attrs & _INTERNAL_ATTRS
    if internal:
        return Classification(
            Verdict.DANGEROUS,
            f"walks object internals ({', '.join(sorted(internal))}) to reach hidden callables",
        )
    if not module or not name or any(not p for p in qualname.split(".")):
        return Classification(Verdict.DANGEROUS, "malformed global name")
    if (module, name) in ALLOWED:  # exact reviewed names win over a dangerous package prefix
        return Classification(Verdict.ALLOWED, "reviewed model-format constructor")
    if "." in name:
        # find_class resolves a dotted name attribute by attribute from the module (protocol
        # 4+): ``logging`` + ``os.system`` is os.system. Whatever the path reaches is judged.
        parts = name.split(".")
        for i in range(len(parts)):
            reached = _dangerous_prefix(".".join(parts[i:]))
            if reached is not None:
                return Classification(
                    Verdict.DANGEROUS,
                    f"reaches '{reached}' through attributes of module {module}",
                )
        return Classification(
            Verdict.UNKNOWN, "dotted name resolved through module attributes; not allowlisted"
        )
    if _CLASS_NAME.match(name) and (
        _TORCH_NN_MODULE.match(module)
        or _TORCH_OPTIM_MODULE.match(module)
        or _TRANSFORMERS_MODEL_MODULE.match(module)
        or module in _TRANSFORMERS_CLASS_MODULES
    ):
        return Classification(
            Verdict.REFERENCE_ONLY, "torch.nn/optim or transformers class (reference only)"
        )
    if module in _TORCH_FUNCTIONAL_MODULES and _FUNCTION_NAME.match(name):
        return Classification(Verdict.ALLOWED, "torch functional op (tensor maths)")
    if module == "torch" and name == "Tensor":
        return Classification(Verdict.ALLOWED, "torch.Tensor class")
    prefix = _dangerous_prefix(qualname)
    if prefix is not None:
        return Classification(
            Verdict.DANGEROUS,
            f"'{prefix}' can execute code, spawn processes, import modules or do file/network I/O",
        )
    if module in ("numpy.dtypes",) and _NUMPY_DTYPE_CLASS.match(name):
        return Classification(Verdict.ALLOWED, "numpy dtype class")
    if _SCIPY_SPARSE.match(module) and _SCIPY_SPARSE_CLASS.match(name):
        return Classification(Verdict.ALLOWED, "scipy sparse matrix")
    if _sklearn_allowed(module, name):
        return Classification(Verdict.ALLOWED, "reviewed scikit-learn estimator class")
    return Classification(
        Verdict.UNKNOWN, "not on the reviewed allowlist; loading may run arbitrary code"
    )


def allowed_when(verdict: Verdict, called: bool) -> bool:
    """Whether a global with this verdict passes, given whether the pickle calls it."""
    return verdict is Verdict.ALLOWED or (verdict is Verdict.REFERENCE_ONLY and not called)

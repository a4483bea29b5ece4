"""The reviewed allowlist and the dangerous list."""

from __future__ import annotations

import pytest

from glassbox.scan.callables import ALLOWED, Verdict, classify


def test_allowlist_and_dangerous_list_do_not_overlap() -> None:
    for module, name in ALLOWED:
        assert classify(module, name).verdict is Verdict.ALLOWED, (module, name)


@pytest.mark.parametrize(
    "qualname",
    [
        "os.system",
        "posix.system",
        "nt.system",
        "subprocess.Popen",
        "builtins.eval",
        "builtins.getattr",
        "builtins.__import__",
        "importlib.import_module",
        "pkgutil.resolve_name",
        "pydoc.locate",
        "runpy._run_code",
        "torch.hub.load",
        "torch.storage._load_from_bytes",
        "numpy.load",
        "numpy.testing._private.utils.runstring",
        "operator.attrgetter",
        "_operator.methodcaller",
        "functools.partial",
        "uuid._get_command_stdout",
        "asyncio.unix_events._UnixSubprocessTransport",
        "pip.main",
        "webbrowser.open",
        "ctypes.CDLL",
        "marshal.loads",
        "types.CodeType",
        "shutil.rmtree",
        "_io.FileIO",
    ],
)
def test_known_dangerous(qualname: str) -> None:
    module, name = qualname.rsplit(".", 1)
    assert classify(module, name).verdict is Verdict.DANGEROUS


def test_dotted_names_through_internals_are_dangerous() -> None:
    assert classify("collections", "OrderedDict.__init__.__globals__").verdict is Verdict.DANGEROUS
    assert classify("torch._utils", "_rebuild_tensor_v2.__globals__").verdict is Verdict.DANGEROUS


def test_prefix_match_respects_component_boundaries() -> None:
    assert classify("osmosis", "run").verdict is Verdict.UNKNOWN
    assert classify("os.path", "join").verdict is Verdict.DANGEROUS


def test_unknown_is_not_allowed() -> None:
    assert classify("pstats", "Stats").verdict is Verdict.UNKNOWN
    assert classify("__main__", "Net").verdict is Verdict.UNKNOWN


def test_sklearn_classes_only_from_reviewed_subpackages() -> None:
    assert (
        classify("sklearn.linear_model._logistic", "LogisticRegression").verdict is Verdict.ALLOWED
    )
    assert (
        classify("sklearn.preprocessing._function_transformer", "FunctionTransformer").verdict
        is not Verdict.ALLOWED
    )
    assert classify("sklearn.utils._testing", "Thing").verdict is Verdict.DANGEROUS
    assert classify("sklearn.linear_model._base", "make_dataset").verdict is Verdict.UNKNOWN


def test_empty_names_are_dangerous() -> None:
    assert classify("", "system").verdict is Verdict.DANGEROUS
    assert classify("os.", "system").verdict is Verdict.DANGEROUS


def test_reviewed_scientific_stack_entries() -> None:
    assert classify("scipy.sparse._csr", "csr_matrix").verdict is Verdict.ALLOWED
    assert classify("scipy.sparse._csr", "tocsr").verdict is Verdict.UNKNOWN
    assert classify("scipy.io", "loadmat").verdict is Verdict.DANGEROUS
    assert classify("sklearn.metrics._scorer", "_PassthroughScorer").verdict is Verdict.ALLOWED
    assert classify("sklearn.metrics._classification", "accuracy_score").verdict is Verdict.ALLOWED
    assert classify("sklearn.metrics.pairwise", "euclidean_distances").verdict is Verdict.UNKNOWN
    assert classify("sklearn.model_selection._split", "KFold").verdict is Verdict.ALLOWED
    assert classify("numpy.random.bit_generator", "SeedSequence").verdict is Verdict.ALLOWED


def test_scanner_tampering_is_dangerous() -> None:
    for module in ("picklescan.scanner", "fickling", "modelscan.modelscan", "glassbox.scan"):
        assert classify(module, "x").verdict is Verdict.DANGEROUS

"""Language-model analysis: lineage fingerprints (is this model derived from that base?).

``lineage(candidate, base)`` compares two models' weights in a way that ignores the changes
which keep a network's function (permutations, rescaling) and survives pruning, fp16/int8 and
GGUF round trips, and adds representation evidence on probe text where both models can be run.
Weights are read one tensor at a time from safetensors (sharded too), PyTorch state dicts
(weights-only loader) or GGUF. Behaviour probes and LM backdoor scans will live here too.

Importing this package imports neither torch nor numpy; the functions do, when called (the
``ml`` extra, plus ``lm`` for ``transformers`` and the representation step).
"""

from glassbox.lm.attest import LINEAGE_PREDICATE_TYPE, attest_lineage, lineage_statement
from glassbox.lm.lineage import (
    DERIVED,
    DERIVED_AT,
    INCONCLUSIVE,
    METHOD,
    NOT_DERIVED,
    UNRELATED_BELOW,
    LineageResult,
    TensorEvidence,
    compare_weights,
    lineage,
    models_in,
    rank,
)
from glassbox.lm.weights import Role, WeightReader, canonical_role, open_weights

__all__ = [
    "DERIVED",
    "DERIVED_AT",
    "INCONCLUSIVE",
    "LINEAGE_PREDICATE_TYPE",
    "METHOD",
    "NOT_DERIVED",
    "UNRELATED_BELOW",
    "LineageResult",
    "Role",
    "TensorEvidence",
    "WeightReader",
    "attest_lineage",
    "canonical_role",
    "compare_weights",
    "lineage",
    "lineage_statement",
    "models_in",
    "open_weights",
    "rank",
]

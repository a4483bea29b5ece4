"""Language-model analysis: lineage fingerprints (is this model derived from that base?).

``lineage(candidate, base)`` compares two models' weights in a way that ignores the changes
which keep a network's function (permutations, rescaling) and survives pruning, fp16/int8 and
GGUF round trips, and adds representation evidence on probe text where both models can be run.
Weights are read one tensor at a time from safetensors (sharded too), PyTorch state dicts
(weights-only loader) or GGUF.

Behaviour probes: ``load_suite`` reads a declared probe suite (TOML), ``run_suite`` runs it
deterministically on a causal LM, ``attest_probes`` signs the results (predicate
``PROBE_PREDICATE_TYPE``), and ``diff_runs`` reports behaviour drift between two versions.

Backdoor scan: ``scan_triggers`` searches a causal LM for a hidden trigger (a short token
sequence that flips clean prompts' answers to one target) without knowing it;
``scan_lm_behavior`` reports it as scan findings (``glassbox scan MODEL --behavior``).

Importing this package imports neither torch nor numpy; the functions do, when called (the
``ml`` extra, plus ``lm`` for ``transformers`` and the representation step).
"""

from glassbox.lm.attest import (
    LINEAGE_PREDICATE_TYPE,
    attest_lineage,
    lineage_predicate_of,
    lineage_statement,
    read_lineage_attestation,
    verify_lineage_attestation,
    verify_lineage_bundle,
)
from glassbox.lm.drift import Change, diff_results, diff_runs, fisher_exact
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
from glassbox.lm.probe import ProbeRun, load_causal_lm, run_suite
from glassbox.lm.probe_attest import (
    PROBE_PREDICATE_TYPE,
    attest_probes,
    probe_predicate_of,
    probe_statement,
    read_probe_attestation,
    verify_probe_attestation,
    verify_probe_bundle,
)
from glassbox.lm.suite import SUITE_SCHEMA, Decoding, Probe, Suite, SuiteError, load_suite
from glassbox.lm.trigger import (
    RULE_LM_TRIGGER,
    TriggerCandidate,
    TriggerScan,
    is_causal_lm,
    read_prompts,
    scan_lm_behavior,
    scan_triggers,
    trigger_findings,
)
from glassbox.lm.weights import Role, WeightReader, canonical_role, open_weights

__all__ = [
    "DERIVED",
    "DERIVED_AT",
    "INCONCLUSIVE",
    "LINEAGE_PREDICATE_TYPE",
    "METHOD",
    "NOT_DERIVED",
    "PROBE_PREDICATE_TYPE",
    "RULE_LM_TRIGGER",
    "SUITE_SCHEMA",
    "UNRELATED_BELOW",
    "Change",
    "Decoding",
    "LineageResult",
    "Probe",
    "ProbeRun",
    "Role",
    "Suite",
    "SuiteError",
    "TensorEvidence",
    "TriggerCandidate",
    "TriggerScan",
    "WeightReader",
    "attest_lineage",
    "attest_probes",
    "canonical_role",
    "compare_weights",
    "diff_results",
    "diff_runs",
    "fisher_exact",
    "is_causal_lm",
    "lineage",
    "lineage_predicate_of",
    "lineage_statement",
    "load_causal_lm",
    "load_suite",
    "models_in",
    "open_weights",
    "probe_predicate_of",
    "probe_statement",
    "rank",
    "read_lineage_attestation",
    "read_probe_attestation",
    "read_prompts",
    "run_suite",
    "scan_lm_behavior",
    "scan_triggers",
    "trigger_findings",
    "verify_lineage_attestation",
    "verify_lineage_bundle",
    "verify_probe_attestation",
    "verify_probe_bundle",
]

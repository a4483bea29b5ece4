"""A benign corpus of REAL library outputs, for measuring false positives.

Everything here is written by the libraries themselves (``torch.save`` of whole modules and
optimizers, ``transformers``' ``save_pretrained`` and whole-model pickles, scikit-learn
estimators through pickle and joblib with every compressor, numpy ``save``/``savez``), so the
allowlist is measured against what real pipelines produce, not against hand-written pickles.
Libraries that are not installed are skipped (pandas, Keras, XGBoost here). Used by
``tests/scan/test_benign.py`` and ``bench/bench_scan.py``.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _torch_modules() -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return {
        "linear": nn.Linear(4, 3),
        "mlp": nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2)),
        "cnn": nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 3 * 3, 10),
            nn.LogSoftmax(dim=1),
        ),
        "lstm": nn.LSTM(8, 16, num_layers=2, batch_first=True),
        "gru": nn.GRU(4, 8),
        "embedding": nn.Embedding(100, 8, padding_idx=0),
        "transformer_encoder": nn.TransformerEncoder(
            nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True), 2
        ),
        "attention": nn.MultiheadAttention(16, 2),
        "layernorm_gelu": nn.Sequential(nn.LayerNorm(8), nn.GELU(), nn.SiLU(), nn.Tanh()),
        "conv1d_pool": nn.Sequential(
            nn.Conv1d(2, 4, 3), nn.AdaptiveAvgPool1d(1), nn.Sigmoid(), nn.Softmax(dim=-1)
        ),
    }


def _torch_files(root: Path) -> list[str]:
    import torch

    out = []
    for name, module in _torch_modules().items():
        torch.save(module, root / f"torch_full_{name}.pt")
        out.append(f"torch_full_{name}.pt")
        torch.save(module.state_dict(), root / f"torch_state_{name}.pt")
        out.append(f"torch_state_{name}.pt")
    model = _torch_modules()["mlp"]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 8)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": 3,
            "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(),
        },
        root / "torch_checkpoint.pt",
    )
    out.append("torch_checkpoint.pt")
    torch.save(opt, root / "torch_full_adam.pt")
    out.append("torch_full_adam.pt")
    with contextlib.suppress(Exception):
        scripted = torch.jit.script(_torch_modules()["mlp"])
        torch.jit.save(scripted, str(root / "torchscript_mlp.pt"))
        out.append("torchscript_mlp.pt")
    return out


def _transformers_files(root: Path) -> list[str]:
    import torch
    import transformers as tf

    out = []
    models = {
        "bert": tf.BertModel(
            tf.BertConfig(
                vocab_size=64,
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
            )
        ),
        "gpt2": tf.GPT2LMHeadModel(
            tf.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32)
        ),
        "t5": tf.T5ForConditionalGeneration(
            tf.T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
        ),
        "distilbert_cls": tf.DistilBertForSequenceClassification(
            tf.DistilBertConfig(vocab_size=64, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
        ),
    }
    for name, model in models.items():
        model.eval()
        torch.save(model, root / f"hf_full_{name}.pt")
        out.append(f"hf_full_{name}.pt")
        torch.save(model.config, root / f"hf_config_{name}.pt")
        out.append(f"hf_config_{name}.pt")
        d = root / f"hf_pretrained_{name}"
        model.save_pretrained(d)
        torch.save(model.state_dict(), d / "pytorch_model.bin")
        out.append(d.name)
    return out


def _sklearn_estimators() -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    fitted: dict[str, Any] = {
        "logreg": LogisticRegression(),
        "ridge": Ridge(),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0),
        "gboost": GradientBoostingClassifier(n_estimators=3),
        "histgb": HistGradientBoostingClassifier(max_iter=3),
        "svc_pipeline": make_pipeline(StandardScaler(), SVC(probability=True)),
        "tree": DecisionTreeClassifier(),
        "knn": KNeighborsClassifier(3),
        "nb": GaussianNB(),
        "mlp": MLPClassifier(hidden_layer_sizes=(4,), max_iter=20),
        "kmeans": KMeans(2, n_init=1, random_state=0),
        "pca": PCA(2),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in fitted.values():
            est.fit(x, y)
    fitted["tfidf"] = TfidfVectorizer().fit(["a cat sat", "a dog ran", "cats and dogs"])
    fitted["onehot"] = OneHotEncoder().fit([["a"], ["b"], ["c"]])
    return fitted


def _sklearn_files(root: Path) -> list[str]:
    import joblib

    out = []
    for name, est in _sklearn_estimators().items():
        (root / f"sk_{name}.pkl").write_bytes(pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL))
        out.append(f"sk_{name}.pkl")
        joblib.dump(est, root / f"sk_{name}.joblib")
        out.append(f"sk_{name}.joblib")
    forest = _sklearn_estimators()["forest"]
    for comp in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        with contextlib.suppress(ValueError):
            joblib.dump(forest, root / f"sk_forest_{comp}.joblib", compress=(comp, 3))
            out.append(f"sk_forest_{comp}.joblib")
    (root / "sk_forest_proto2.pkl").write_bytes(pickle.dumps(forest, protocol=2))
    out.append("sk_forest_proto2.pkl")
    return out


def _numpy_files(root: Path) -> list[str]:
    import joblib
    import numpy as np

    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "f32": rng.normal(size=(8, 8)).astype(np.float32),
        "i64": np.arange(100),
        "bool": np.array([True, False]),
        "structured": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        "unicode": np.array(["a", "bc"]),
        "fortran": np.asfortranarray(rng.normal(size=(3, 4))),
    }
    out = []
    for name, arr in arrays.items():
        np.save(root / f"np_{name}.npy", arr)
        out.append(f"np_{name}.npy")
    np.savez(root / "np_bundle.npz", **arrays)
    np.savez_compressed(root / "np_bundle_compressed.npz", **arrays)
    out += ["np_bundle.npz", "np_bundle_compressed.npz"]
    np.save(root / "np_object.npy", np.array([1, "two", 3.0], dtype=object), allow_pickle=True)
    out.append("np_object.npy")
    (root / "np_pickled.pkl").write_bytes(pickle.dumps(arrays))
    out.append("np_pickled.pkl")
    joblib.dump(arrays, root / "np_arrays.joblib")
    out.append("np_arrays.joblib")
    joblib.dump(
        {"arr": arrays["f32"], "rng": np.random.default_rng(1), "legacy": np.random.RandomState(1)},
        root / "np_rng.joblib",
    )
    out.append("np_rng.joblib")
    return out


def _pandas_files(root: Path) -> list[str]:
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(["2024-01-01"] * 2)})
    df.to_pickle(root / "pd_frame.pkl")
    return ["pd_frame.pkl"]


def _stdlib_files(root: Path) -> list[str]:
    import collections
    import datetime
    import decimal

    value = {
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list),
        "when": datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        "d": decimal.Decimal("1.5"),
        "s": {1, 2},
        "fs": frozenset({3}),
        "b": b"\x00\x01",
        "c": complex(1, 2),
    }
    out = []
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        (root / f"std_p{proto}.pkl").write_bytes(pickle.dumps(value, protocol=proto))
        out.append(f"std_p{proto}.pkl")
    return out


GENERATORS: dict[str, Callable[[Path], list[str]]] = {
    "torch": _torch_files,
    "transformers": _transformers_files,
    "sklearn": _sklearn_files,
    "numpy": _numpy_files,
    "pandas": _pandas_files,
    "stdlib": _stdlib_files,
}


def build(root: Path) -> dict[str, list[str]]:
    """Write every available generator's files under ``root``; returns them per library
    (libraries that are not installed give an empty list)."""
    root.mkdir(parents=True, exist_ok=True)
    made: dict[str, list[str]] = {}
    for lib, gen in GENERATORS.items():
        try:
            with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made[lib] = gen(root)
        except ModuleNotFoundError:
            made[lib] = []
    return made

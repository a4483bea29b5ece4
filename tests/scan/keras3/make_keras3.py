"""Write the Keras 3 fixtures in this directory with the real ``keras`` package (torch backend).

Run from the repository root: ``KERAS_BACKEND=torch python -m tests.scan.keras3.make_keras3 [DIR]``.
The files are committed (``keras`` is a dev dependency only, and saving takes seconds), so the
tests read them as they are; re-running this script regenerates them with whatever Keras 3 is
installed. The benign model is what a user of the torch backend saves every day: its compiled
optimizer is serialised under ``keras.src.backend.torch.optimizers``, which the scanner once
reported as critical (issue 18). The Lambda model carries marshalled Python bytecode.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(out: Path = HERE) -> list[Path]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inp)
    x = keras.layers.Dropout(0.1)(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 4), dtype="float32"), rng.integers(0, 2, 16), epochs=1, verbose=0)
    benign = out / "torch-backend-adam.keras"
    model.save(benign)

    lam = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Dense(1)]
    )
    lam.compile(optimizer="sgd", loss="mse")
    lambda_file = out / "torch-backend-lambda.keras"
    lam.save(lambda_file)
    return [benign, lambda_file]


if __name__ == "__main__":
    import sys

    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path, path.stat().st_size)

"""Turning raw detector statistics into evidence: robust outlier indices and reference calibration.

A bare threshold on a spectral or clustering score flags classes that are simply bimodal by
nature (in digits, 9s with and without a closed loop, 5s in two styles). The statistic of a
class is therefore compared with the same statistic of the same class in a clean reference model
(a rebuild from the declared sources, or any model trained on clean data from the same
distribution): only what the suspect model has *beyond* the reference counts.
"""

from __future__ import annotations

import numpy as np

#: Consistency constant that makes the MAD estimate the standard deviation of a normal.
MAD_SCALE = 1.4826


def mad_index(values: np.ndarray, *, low: bool = False, floor: float = 0.0) -> np.ndarray:
    """Robust z-scores: distance from the median in MADs, positive in the suspicious direction.

    ``low=True`` for statistics where an attack makes the value smaller (trigger size, entropy).
    A floor on the MAD keeps a set of near-identical values from producing huge scores: 5% of
    the median, or ``floor`` in the statistic's own unit where the median can be near zero.
    """
    v = np.asarray(values, dtype=np.float64)
    med = float(np.median(v))
    mad = MAD_SCALE * float(np.median(np.abs(v - med)))
    mad = max(mad, 0.05 * abs(med), floor, 1e-9)
    z = (v - med) / mad
    return -z if low else z


def calibrated(
    stat: np.ndarray, reference: np.ndarray | None, *, low: bool = False, log: bool = True
) -> np.ndarray:
    """Per-class evidence: the statistic relative to the reference, then a robust index.

    With a reference, the per-class ratio (log scale) is what is ranked, so a class that is
    bimodal in both models cancels out; without one, the raw statistic is ranked across classes.
    """
    s = np.asarray(stat, dtype=np.float64)
    if log:
        s = np.log(np.maximum(s, 1e-12))
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        s = s - (np.log(np.maximum(r, 1e-12)) if log else r)
    return mad_index(s, low=low)

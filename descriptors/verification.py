"""1:1 verification metrics over similarity scores: ROC, AUC, TAR at a fixed FAR, and accuracy with a
threshold chosen on other folds (the CFP protocol, Sengupta et al., "Frontal to Profile Face
Verification in the Wild", WACV 2016, section 4).

Pure functions over NumPy arrays. ``scores`` (N,) float: larger means more alike (cosine in
[-1, 1] here); ``same`` (N,) bool: genuine (True) or impostor (False) pair. FAR = fraction of
impostor pairs accepted (score >= threshold), TAR = fraction of genuine pairs accepted.

>>> s = np.array([0.9, 0.8, 0.3, 0.2]); y = np.array([True, True, False, False])
>>> roc_auc(s, y)
1.0
>>> round(best_threshold(s, y)[1], 3)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(same, bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in length")
    if not y.any() or y.all():
        raise ValueError("verification metrics need both genuine and impostor pairs")
    return s, y


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds), one point per distinct score, thresholds descending; starts at (0, 0)."""
    s, y = _check(scores, same)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tar = np.r_[0.0, tp / y.sum()]
    far = np.r_[0.0, fp / (~y).sum()]
    return far, tar, np.r_[np.inf, s[last]]


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; ties count one half)."""
    far, tar, _ = roc_curve(scores, same)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """The smallest threshold whose FAR on ``impostor_scores`` is at most ``far`` (accept: score >= t).

    Only the impostor scores fix it (the genuine scores give the TAR at it: :func:`tar_at_far`); the
    operating points of :mod:`descriptors.thresholds` are made with it.

    >>> imp = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    >>> t = threshold_at_far(imp, 0.1)  # at most 1 of the 10 impostors may be accepted
    >>> int((imp >= t).sum()), 0.9 < t < 0.9001
    (1, True)
    >>> int((imp >= threshold_at_far(imp, 0.0)).sum())
    0
    """
    imp = np.sort(np.asarray(impostor_scores, np.float64).ravel())[::-1]
    if imp.size == 0:
        raise ValueError("no impostor scores")
    k = int(np.floor(far * imp.size))  # at most k impostors may be accepted
    if k >= imp.size:
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.inf))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the operating point where FAR <= ``far`` (threshold from the impostors)."""
    s, y = _check(scores, same)
    t = threshold_at_far(s[~y], far)
    return float((s[y] >= t).mean()), t


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right with ``score >= threshold`` meaning "same"."""
    s, y = np.asarray(scores, np.float64), np.asarray(same, bool)
    return float(((s >= threshold) == y).mean())


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the threshold of highest accuracy on these pairs (midpoint between
    neighbouring distinct scores, so it transfers to unseen scores without a bias to either side)."""
    s, y = _check(scores, same)
    u = np.unique(s)
    cands = np.r_[u[0] - 1e-6, (u[:-1] + u[1:]) / 2.0, u[-1] + 1e-6]
    accs = np.array([accuracy(s, y, t) for t in cands])
    i = int(np.argmax(accs))
    return float(cands[i]), float(accs[i])


def cross_fold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, use: Sequence[int] | None = None
) -> dict:
    """The CFP figure: for each fold f of ``use`` (default: every fold present), the accuracy on f with
    the threshold of :func:`best_threshold` on the other folds of ``use``. Returns
    ``{"per_fold": {f: {"threshold", "accuracy"}}, "mean", "std"}`` (std: population, over folds)."""
    s, y = _check(scores, same)
    f = np.asarray(folds).ravel()
    use = sorted(set(f.tolist()) if use is None else use)
    if len(use) < 2:
        raise ValueError("cross-fold accuracy needs at least two folds")
    per = {}
    for k in use:
        train = np.isin(f, [u for u in use if u != k])
        test = f == k
        t, _ = best_threshold(s[train], y[train])
        per[int(k)] = {"threshold": t, "accuracy": accuracy(s[test], y[test], t)}
    accs = np.array([v["accuracy"] for v in per.values()])
    return {"per_fold": per, "mean": float(accs.mean()), "std": float(accs.std())}

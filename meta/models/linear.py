"""A linear model over a stacked model's inputs: what the review page's fast re-fit saves.

The review loop needs a fit in seconds, not a new Optuna search, so a re-fit is:

1. :class:`Standardiser`: missing values filled with the column median, columns standardised,
   and inputs wider than ``components`` columns reduced to their first principal components
   (fitted on the features of every clip, never on labels);
2. :class:`LinearHead`: one multinomial logistic regression when every labelled clip has one
   class (``multiclass``), else one binary logistic regression per class (``binary``). Classes
   nobody labelled yet get a small constant probability (:data:`FLOOR`).

Both are plain arrays, saved as one ``.npz`` (``linear.npz`` in the model folder, nothing
pickled) and applied by :class:`LinearModel` exactly as they were fitted, so a re-fit is a saved
model like any other: ``jungle predict``, the exports and the review page can use it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ..model_check import check_npz, read_model_file

__all__ = ["FLOOR", "Standardiser", "LinearHead", "LinearModel", "fit_head"]

FLOOR = 1e-3
"""The probability given to a class with no labelled example (and the floor of every probability)."""

_REMAKE = "Re-fit it on the review page (Shift+R) or with `jungle review --retrain`."


@dataclass
class Standardiser:
    """Median fill, standardisation and (optionally) principal components, as fitted."""

    median: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    pca_mean: np.ndarray      # (d,) or (0,) without PCA
    components: np.ndarray    # (k, d) or (0, d)
    pca_scale: np.ndarray     # (k,) or (0,)

    @classmethod
    def fit(cls, X: np.ndarray, components: int = 128, seed: int = 0) -> "Standardiser":
        """Fit on ``X`` (every clip's features; labels play no part)."""
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(all="ignore"):
            median = np.nan_to_num(np.nanmedian(X, axis=0) if len(X) else np.zeros(X.shape[1]))
        X = np.where(np.isnan(X), median, X)
        mean, std = X.mean(axis=0), X.std(axis=0)
        scale = np.where(std > 0, std, 1.0)
        d = X.shape[1]
        empty = cls(median, mean, scale, np.zeros(0), np.zeros((0, d)), np.zeros(0))
        if not (d > components and len(X) > components):
            return empty
        from sklearn.decomposition import PCA

        pca = PCA(n_components=components, random_state=seed).fit((X - mean) / scale)
        projected = pca.transform((X - mean) / scale)
        spread = projected.std(axis=0)
        return cls(median, mean, scale, pca.mean_, pca.components_, np.where(spread > 0, spread, 1.0))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        Z = (np.where(np.isnan(X), self.median, X) - self.mean) / self.scale
        if len(self.components):
            Z = (Z - self.pca_mean) @ self.components.T / self.pca_scale
        return Z


@dataclass
class LinearHead:
    """Logistic regression(s) on standardised inputs.

    Attributes:
        mode: ``multiclass`` (one softmax over ``targets``) or ``binary`` (a sigmoid per target).
        coef: (m, k) weights, one row per target.
        intercept: (m,).
        targets: (m,) the class index each row gives.
        constant: (C,) for ``binary``: the probability of a class every labelled clip agreed on
            (NaN where fitted); unused by ``multiclass``.
    """

    mode: str
    coef: np.ndarray
    intercept: np.ndarray
    targets: np.ndarray
    constant: np.ndarray

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """(n, C) probabilities."""
        n_classes = len(self.constant)
        D = np.asarray(Z, dtype=np.float64) @ self.coef.T + self.intercept
        if self.mode == "multiclass":
            D -= D.max(axis=1, keepdims=True)
            S = np.exp(D)
            S /= S.sum(axis=1, keepdims=True)
            P = np.full((len(D), n_classes), FLOOR)
            P[:, self.targets] = np.maximum(S, FLOOR)
            return P / P.sum(axis=1, keepdims=True)
        P = np.tile(np.where(np.isnan(self.constant), FLOOR, self.constant), (len(D), 1))
        P[:, self.targets] = 1.0 / (1.0 + np.exp(-D))
        return np.clip(P, FLOOR, 1.0 - FLOOR)


def _logistic(Z, y, C: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter).fit(Z, y)


def fit_head(Z: np.ndarray, Y: np.ndarray, single: bool, C: float = 0.1, max_iter: int = 300) -> LinearHead:
    """Fit on prepared inputs ``Z`` and 0/1 labels ``Y`` (n, C): ``multiclass`` when ``single``
    (every clip one class), else ``binary``."""
    Z, Y = np.asarray(Z, dtype=np.float64), np.asarray(Y)
    n_classes, width = Y.shape[1], Z.shape[1]
    if single:
        y = Y.argmax(axis=1)
        present = np.unique(y)
        if len(present) == 1:  # one class labelled: it gets everything the floor leaves
            return LinearHead("multiclass", np.zeros((1, width)), np.zeros(1), present, np.full(n_classes, np.nan))
        model = _logistic(Z, y, C, max_iter)
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:  # scikit-learn's binary form: softmax of (0, z) is (1 - s(z), s(z))
            coef, intercept = np.vstack([np.zeros(width), coef[0]]), np.array([0.0, intercept[0]])
        return LinearHead("multiclass", coef, intercept, model.classes_.astype(np.int64), np.full(n_classes, np.nan))
    coef, intercept, targets = [], [], []
    constant = np.full(n_classes, np.nan)
    for c in range(n_classes):
        y = Y[:, c]
        if y.min() == y.max():
            constant[c] = 1.0 - FLOOR if y[0] == 1 else FLOOR
            continue
        model = _logistic(Z, y, C, max_iter)
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
        targets.append(c)
    return LinearHead("binary", np.asarray(coef, dtype=np.float64).reshape(len(targets), width),
                      np.asarray(intercept, dtype=np.float64), np.asarray(targets, dtype=np.int64), constant)


_ARRAYS = ("median", "mean", "scale", "pca_mean", "components", "pca_scale", "coef", "intercept", "targets",
           "constant")


@dataclass
class LinearModel:
    """A saved re-fit: its :class:`Standardiser` and :class:`LinearHead`."""

    prep: Standardiser
    head: LinearHead

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, C) probabilities for the raw input columns ``X``."""
        return self.head.predict(self.prep.transform(X))

    def save(self, path: Path) -> None:
        arrays = {**{name: getattr(self.prep, name) for name in _ARRAYS[:6]},
                  **{name: getattr(self.head, name) for name in _ARRAYS[6:]}}
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def read(cls, folder: Path, manifest) -> "LinearModel":
        """The re-fit of ``manifest`` (a ``kind: refit`` model) from ``folder``: its file read once,
        checked (:mod:`jungle.meta.model_check`) and loaded from those bytes."""
        path = Path(folder) / manifest.refit.file
        raw = read_model_file(folder, manifest.refit.file, "projection")
        check_npz(raw, path)
        width = sum(len(block.columns) for block in manifest.refit.inputs)
        return cls.load(raw, path, manifest.label_mode, len(manifest.classes), width)

    @classmethod
    def load(cls, raw: bytes, path: Path, mode: str, n_classes: int, width: int) -> "LinearModel":
        """The model in the bytes ``raw`` of ``path`` (already checked by
        :func:`~jungle.meta.model_check.check_npz`), its arrays checked against each other, the
        manifest's ``mode``, class count and input ``width``.

        Raises:
            ModelError: an array is missing or does not fit.
        """
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            missing = [name for name in _ARRAYS if name not in archive.files]
            if missing:
                raise ModelError(f"re-fit file {path} lacks {', '.join(missing)}. {_REMAKE}")
            a = {name: np.asarray(archive[name]) for name in _ARRAYS}
        k = a["coef"].shape[1] if a["coef"].ndim == 2 else -1
        pca = len(a["components"]) > 0
        fits = (all(a[n].shape == (width,) for n in ("median", "mean", "scale"))
                and a["components"].ndim == 2 and a["components"].shape[1] == width
                and a["pca_mean"].shape == ((width,) if pca else (0,))
                and a["pca_scale"].shape == (len(a["components"]),)
                and k == (len(a["components"]) if pca else width)
                and a["intercept"].shape == a["targets"].shape == (len(a["coef"]),)
                and a["constant"].shape == (n_classes,)
                and bool(np.all(np.isnan(a["constant"]) | ((a["constant"] >= 0) & (a["constant"] <= 1))))
                and a["targets"].dtype.kind in "iu" and bool(np.all((a["targets"] >= 0) & (a["targets"] < n_classes)))
                and len(np.unique(a["targets"])) == len(a["targets"])
                and all(np.isfinite(a[n]).all() for n in _ARRAYS if n != "constant"))
        if not fits:
            raise ModelError(f"re-fit file {path} does not fit its manifest ({n_classes} classes, {width} input "
                             f"columns, {mode}) or holds non-finite values. {_REMAKE}")
        prep = Standardiser(*(a[n].astype(np.float64) for n in _ARRAYS[:6]))
        head = LinearHead(mode, a["coef"].astype(np.float64), a["intercept"].astype(np.float64),
                          a["targets"].astype(np.int64), a["constant"].astype(np.float64))
        return cls(prep, head)

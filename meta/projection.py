"""Principal-component projection of wide feature sets before the level-2 model.

XGBoost's ``hist`` method pays for every column of every tree (a features x bins histogram per
node), so a 5,121-column embedding set (``minmax_lite0``: mean, min, max and range of 1,280
dimensions) costs ~40x the time of its first 64 principal components per boosting round on a few
hundred videos, for a small loss in log loss (measured on the demo: 0.0645 vs 0.0628). With
``pca=K``, every feature set of a member with at least ``min_columns`` columns is replaced by its
first ``K`` principal components; narrower sets (metadata, class-probability statistics) pass
through unchanged.

The fitted projection file holds only plain arrays (names as fixed-width unicode) and is loaded
with ``allow_pickle=False``: a projection file in a model folder received from someone can never
run code. Files of the earlier format (names as pickled object arrays) are refused with a message
to re-make the model.

The projection is fitted on the feature values of the labelled videos only, never on their labels,
so out-of-fold scores stay honest. A missing value is filled with its column's mean before the
projection; a video that lacks the whole set keeps NaN components (XGBoost's "missing"). The
fitted projection is saved next to the model (``member-<k>-projection.npz``) and applied by
``jungle predict``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .dataset import set_columns

__all__ = ["SetProjection", "Projection", "fit_projection"]


@dataclass
class SetProjection:
    """The principal axes of one feature set."""

    name: str
    mean: np.ndarray          # (columns,) column means, also the fill value of missing entries
    components: np.ndarray    # (k, columns) principal axes
    explained: float          # fraction of the set's variance the k axes keep

    def transform(self, block: np.ndarray) -> np.ndarray:
        absent = np.isnan(block).all(axis=1)
        filled = np.where(np.isnan(block), self.mean, block)
        out = ((filled - self.mean) @ self.components.T).astype(np.float32)
        out[absent] = np.nan
        return out


@dataclass
class Projection:
    """Which input columns go where: projected sets and the columns passed through."""

    input_columns: list[str]
    sets: list[SetProjection]

    def _kept(self) -> list[int]:
        """Indices of the input columns passed through (those of the sets not projected)."""
        projected = {p.name for p in self.sets}
        return [i for name, idx in set_columns(self.input_columns).items() if name not in projected for i in idx]

    @property
    def output_columns(self) -> list[str]:
        kept = [self.input_columns[i] for i in self._kept()]
        return kept + [f"{p.name}.pc{i}" for p in self.sets for i in range(len(p.components))]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` (videos x input columns) to (videos x output columns)."""
        groups = set_columns(self.input_columns)
        blocks = [X[:, self._kept()]] + [p.transform(X[:, groups[p.name]]) for p in self.sets]
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def summary(self) -> dict:
        """What the manifest records."""
        return {p.name: {"columns": int(p.mean.shape[0]), "components": int(len(p.components)),
                         "explained_variance": round(p.explained, 4)} for p in self.sets}

    def save(self, path: Path) -> None:
        """Write the projection as plain arrays (names as fixed-width unicode: nothing pickled)."""
        arrays = {"input_columns": np.asarray(self.input_columns, dtype=np.str_),
                  "names": np.asarray([p.name for p in self.sets], dtype=np.str_),
                  "explained": np.asarray([p.explained for p in self.sets], dtype=np.float64)}
        for i, p in enumerate(self.sets):
            arrays[f"mean_{i}"], arrays[f"components_{i}"] = p.mean, p.components
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path, data: bytes | None = None) -> "Projection":
        """Read a projection written by :meth:`save` (from ``data``, the file's bytes, when given),
        never unpickling anything.

        Raises:
            ModelError: the file is damaged, holds pickled Python objects (the format of models
                made before names were stored as text; unpickling can run code), or its arrays
                do not fit together.
        """
        source = io.BytesIO(data) if data is not None else path
        try:
            if not zipfile.is_zipfile(source):
                raise zipfile.BadZipFile("not an .npz archive")
            if data is not None:
                source.seek(0)
            with np.load(source, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except ValueError as exc:  # numpy refuses object arrays without allow_pickle
            if "allow_pickle" not in str(exc):
                raise ModelError(f"projection file {path} is damaged ({exc}). {_REMAKE}") from None
            raise ModelError(
                f"projection file {path} holds pickled Python objects, which jungle does not load because "
                f"unpickling can run code. {_REMAKE}") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelError(f"projection file {path} is damaged or not a projection ({exc}). {_REMAKE}") from None
        try:
            return _from_arrays(arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"projection file {path} is not a jungle projection ({exc}). {_REMAKE}") from None


_REMAKE = "Re-make the model with `jungle stack` (with --pca as before)."


def _text(array: np.ndarray, what: str) -> list[str]:
    """A 1-d unicode array as strings."""
    if array.dtype.kind != "U" or array.ndim != 1:
        raise ValueError(f"{what} must be a 1-d text array, not {array.dtype} of shape {array.shape}")
    return [str(v) for v in array]


def _from_arrays(arrays: dict[str, np.ndarray]) -> Projection:
    """The projection held by the arrays of a projection file, checked to fit together.

    Raises:
        KeyError: an array is missing.
        ValueError: an array has the wrong kind or shape for the columns it projects.
    """
    columns = _text(arrays["input_columns"], "input_columns")
    names = _text(arrays["names"], "names")
    explained = arrays["explained"]
    if explained.shape != (len(names),) or explained.dtype.kind != "f":
        raise ValueError(f"explained must hold one number per projected set ({len(names)})")
    groups = set_columns(columns)
    sets = []
    for i, name in enumerate(names):
        mean, components = arrays[f"mean_{i}"], arrays[f"components_{i}"]
        width = len(groups.get(name, ()))
        if width == 0 or mean.shape != (width,) or components.ndim != 2 or components.shape[1] != width \
                or mean.dtype.kind != "f" or components.dtype.kind != "f":
            raise ValueError(f"set {name!r}: mean {mean.shape} and components {components.shape} do not "
                             f"fit its {width} input columns")
        sets.append(SetProjection(name, mean, components, float(explained[i])))
    return Projection(columns, sets)


def fit_projection(X: np.ndarray, columns: list[str], components: int, min_columns: int = 1024,
                   random_state: int = 0) -> Projection:
    """Fit the first ``components`` principal axes of every set of ``X`` with ``min_columns`` or more
    columns (column names ``<set>.<column>``); rows lacking a whole set are left out of its fit.

    Raises:
        ValueError: ``components`` < 1.
    """
    from sklearn.decomposition import PCA

    if components < 1:
        raise ValueError(f"pca components must be at least 1, not {components}")
    sets = []
    for name, idx in set_columns(columns).items():
        if len(idx) < max(min_columns, components + 1):
            continue
        block = X[:, idx].astype(np.float64)
        present = block[~np.isnan(block).all(axis=1)]
        if len(present) < 2:
            continue
        mean = np.nanmean(present, axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)
        filled = np.where(np.isnan(present), mean, present)
        k = min(components, len(present) - 1, len(idx))
        pca = PCA(n_components=k, random_state=random_state).fit(filled - mean)
        sets.append(SetProjection(name, mean, pca.components_.astype(np.float64),
                                  float(pca.explained_variance_ratio_.sum())))
    return Projection(list(columns), sets)

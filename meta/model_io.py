"""Saved level-2 models: ``<workspace>/models/<id>/`` with XGBoost JSON boosters and a manifest.

Layout::

    models/<id>/manifest.json     feature sets (names, versions AND configuration fingerprints),
                                  class order, members with their feature columns, parameters
                                  and rounds, blend weights, clip limits, label mode,
                                  configuration, metrics, code version, studies
    models/<id>/member-<k>.json   one XGBoost booster per level-2 model
    models/<id>/member-<k>-projection.npz
                                  the principal axes of its wide feature sets (``--pca`` only)
    models/<id>/linear.npz        a review re-fit's linear model instead of members (``kind: refit``)
    models/<id>/calibration.npz   a zero-shot model's re-calibration by labels (``kind: zero-shot``;
                                  its rule's constants are in the manifest)
    models/<id>/oof.parquet       out-of-fold probabilities and labels of the training videos
    models/latest                 the id of the newest model (the ``latest`` alias)

A manifest (:class:`jungle.meta.manifest.ModelManifest`) holds everything
:mod:`jungle.meta.predict` needs to predict new videos later. Loading a folder unpickles nothing
and validates everything, since a folder may come from someone else.
Every ``--model`` option names a model as :func:`jungle.meta.models.names.model_dir` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..store.workspace import Workspace
from .models.blend import ClipLimits, blend
from .level2 import Level2Classifier
from .manifest import FeatureSetRecord, MemberEntry, ModelManifest, read_manifest
from .model_check import check_booster, check_npz, read_model_file
from .models.linear import LinearModel
from .models.names import (CURRENT, LATEST, MANIFEST, MODEL_NAMES, ModelNotFound, SavedModel, choose_model,
                           current_model_id, list_models, model_dir)
from .projection import Projection
from .zeroshot.model import ZeroShotModel, load_zero_shot

__all__ = ["MANIFEST", "LATEST", "CURRENT", "MODEL_NAMES", "LoadedModel", "ModelNotFound", "ModelShadowsLocal",
           "SavedModel", "check_not_shadowing", "choose_model", "current_model_id", "list_models", "new_model_id",
           "model_dir", "save_model", "load_model"]

def new_model_id(workspace: Workspace, key: str, prefix: str = "stack") -> str:
    """A fresh model id: ``prefix``, the UTC time and the configuration key, unique in the workspace."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{prefix}-{stamp}-{key[:6]}"
    candidate, n = base, 1
    while (workspace.models_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def save_model(workspace: Workspace, manifest: ModelManifest, members: list[Level2Classifier],
               projections: list[Projection | None] | None = None, linear: LinearModel | None = None,
               files: dict[str, bytes] | None = None) -> Path:
    """Write the boosters, their projections (or a re-fit's ``linear`` model), any other ``files``
    of the model (a zero-shot model's calibration) and the manifest under ``models/<manifest.model_id>``
    and point ``latest`` at it.

    ``manifest.members[k]`` describes ``members[k]`` and names its files (``file``,
    ``projection_file``); a re-fit's ``manifest.refit.file`` names the linear model's, a zero-shot
    model's ``manifest.zero_shot.file`` its calibration's.
    """
    folder = workspace.models_dir / manifest.model_id
    files = files or {}
    named = {manifest.zero_shot.file} - {None} if manifest.zero_shot else set()
    if set(files) != named:
        raise ValueError(f"files {sorted(files)} are not the ones the manifest names ({sorted(named)})")
    folder.mkdir(parents=True, exist_ok=False)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if (linear is None) != (manifest.refit is None):
        raise ValueError("a linear model and the manifest's refit record go together")
    if linear is not None:
        linear.save(folder / manifest.refit.file)
    projections = projections or [None] * len(members)
    for model, entry, projection in zip(members, manifest.members, projections, strict=True):
        model.save(folder / entry.file)
        if (projection is None) != (entry.projection_file is None):
            raise ValueError(f"member {entry.file}: a projection and its projection_file go together")
        if projection is not None:
            projection.save(folder / entry.projection_file)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(folder / MANIFEST)
    alias_tmp = workspace.models_dir / (LATEST + ".tmp")
    alias_tmp.write_text(manifest.model_id + "\n")
    alias_tmp.replace(workspace.models_dir / LATEST)
    return folder


@dataclass
class LoadedModel:
    """A saved model, ready to predict."""

    path: Path
    manifest: ModelManifest
    members: list[Level2Classifier]
    projections: list[Projection | None]
    linear: LinearModel | None = None
    zero_shot: ZeroShotModel | None = None

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.classes)

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.manifest.blend_weights, dtype=np.float64)

    @property
    def clip(self) -> ClipLimits:
        return ClipLimits.from_json(self.manifest.clip.model_dump())

    def feature_sets(self) -> list[FeatureSetRecord]:
        """Every feature set the model reads, with the fingerprint of its configuration."""
        return list(self.manifest.feature_sets)

    @property
    def recipe(self) -> str | None:
        return self.manifest.recipe_name

    @property
    def inputs(self) -> list:
        """The blocks of input columns (each with ``features`` and ``columns``) whose matrices
        :meth:`predict_proba` takes, in order."""
        return self.manifest.inputs

    def predict_proba(self, matrices: list[np.ndarray]) -> np.ndarray:
        """Probabilities from each input block's feature matrix (its manifest ``columns``):
        blended and clipped members, the re-fit's linear model over the blocks side by side, or the
        zero-shot rule over its evidence."""
        if self.zero_shot is not None:
            return self.zero_shot.predict_proba(matrices[0])
        if self.linear is not None:
            return self.linear.predict_proba(np.concatenate(matrices, axis=1))
        members = [model.predict_proba(X if projection is None else projection.transform(X))
                   for model, projection, X in zip(self.members, self.projections, matrices, strict=True)]
        return self.clip.apply(blend(members, self.weights))


def _load_member(folder: Path, entry: MemberEntry, manifest: ModelManifest) -> tuple[Level2Classifier,
                                                                                      Projection | None]:
    """The booster and projection of one member, checked against its manifest entry.

    Every file is read once, checked (:mod:`jungle.meta.model_check`) and handed to NumPy or
    XGBoost as those checked bytes.

    Raises:
        ModelError: a file is missing, not a regular file, too large, damaged or crafted, or does
            not fit the manifest.
    """
    import xgboost as xgb

    unknown = sorted(set(entry.params) - set(Level2Classifier().get_params()))
    if unknown:
        raise ModelError(f"model manifest {folder / MANIFEST} gives member {entry.file} unknown parameters "
                         f"{', '.join(unknown)}. {_REMAKE}")
    projection = None
    if entry.projection_file:
        path = folder / entry.projection_file
        raw = read_model_file(folder, entry.projection_file, "projection")
        check_npz(raw, path)
        projection = Projection.load(path, raw)
        if projection.input_columns != entry.columns:
            raise ModelError(f"projection file {path} does not project the columns the manifest lists for "
                             f"{entry.file}. {_REMAKE}")
    path = folder / entry.file
    raw = read_model_file(folder, entry.file, "booster")
    width = len(projection.output_columns) if projection is not None else len(entry.columns)
    features = check_booster(raw, path, manifest.label_mode, len(manifest.classes))
    if features != width:
        raise ModelError(f"model file {path} reads {features} features, but the manifest gives it {width}. {_REMAKE}")
    try:
        model = Level2Classifier.load(bytearray(raw), entry.params, manifest.label_mode, len(manifest.classes))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model file {path} is not a readable XGBoost model ({first}). {_REMAKE}") from None
    if model.n_features_in_ != width:
        raise ModelError(f"model file {path} reads {model.n_features_in_} features, but the manifest gives it "
                         f"{width}. {_REMAKE}")
    return model, projection


_REMAKE = "Re-make the model with `jungle stack`."


class ModelShadowsLocal(ModelError):
    """A model folder from elsewhere carries the id of another model saved in this workspace."""


def _model_files(folder: Path, manifest: ModelManifest) -> list[str]:
    linear = [manifest.refit.file] if manifest.refit else []
    linear += [manifest.zero_shot.file] if manifest.zero_shot and manifest.zero_shot.file else []
    return [MANIFEST] + linear + [name for entry in manifest.members for name in (entry.file, entry.projection_file)
                                  if name]


def check_not_shadowing(workspace: Workspace, folder: Path, manifest: ModelManifest) -> None:
    """Refuse a model folder outside ``models/`` whose id is that of a different model saved in
    this workspace: predictions, exports and reports are kept by model id, so it would replace
    that model's. A copy of the same model (every file identical) is that model and is allowed.

    Raises:
        ModelShadowsLocal: naming both folders and what to do.
    """
    local = workspace.models_dir / manifest.model_id
    if not (local / MANIFEST).is_file() or local.resolve() == Path(folder).resolve():
        return
    def same(name: str) -> bool:
        kind = "manifest" if name == MANIFEST else "projection" if name.endswith(".npz") else "booster"
        return (local / name).is_file() and read_model_file(folder, name, kind) == read_model_file(local, name, kind)

    if not all(same(name) for name in _model_files(folder, manifest)):
        raise ModelShadowsLocal(
            f"model folder {folder} has the id {manifest.model_id!r} of another model saved in this workspace "
            f"({local}), so its predictions and report would replace that model's. Keep both by giving the "
            "received model another id (copy its folder and change model_id in its manifest.json), or use it in "
            "another workspace (--workspace).")



def load_model(workspace: Workspace, model: str = CURRENT) -> LoadedModel:
    """Load a saved model (any name :func:`model_dir` takes), validating everything it reads.

    Nothing in the folder is unpickled: the manifest is JSON checked against
    :class:`~jungle.meta.manifest.ModelManifest`, boosters are XGBoost JSON, projections plain
    ``.npz`` arrays loaded without pickle.

    Raises:
        ModelNotFound: no such model.
        ModelError: the manifest or a file of the folder is invalid, damaged or inconsistent.
    """
    folder = model_dir(workspace, model)
    manifest = read_manifest(folder / MANIFEST)
    loaded = [_load_member(folder, entry, manifest) for entry in manifest.members]
    linear = LinearModel.read(folder, manifest) if manifest.kind == "refit" else None
    zero_shot = load_zero_shot(folder, manifest) if manifest.zero_shot is not None else None
    check_not_shadowing(workspace, folder, manifest)
    return LoadedModel(folder, manifest, [m for m, _ in loaded], [p for _, p in loaded], linear, zero_shot)

"""Saved level-2 models: ``<workspace>/models/<id>/`` with XGBoost JSON boosters and a manifest.

Layout::

    models/<id>/manifest.json     feature sets (names AND versions), class order, members with their
                                  feature columns, parameters and rounds, blend weights, clip
                                  limits, label mode, configuration, metrics, code version, studies
    models/<id>/member-<k>.json   one XGBoost booster per level-2 model
    models/<id>/member-<k>-projection.npz
                                  the principal axes of its wide feature sets (``--pca`` only)
    models/<id>/oof.parquet       out-of-fold probabilities and labels of the training videos
    models/latest                 the id of the newest model (the ``latest`` alias)

A manifest holds everything :mod:`jungle.meta.predict` needs to predict new videos later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..store.workspace import Workspace
from .blend import ClipLimits, blend
from .level2 import Level2Classifier
from .projection import Projection

__all__ = ["MANIFEST", "LATEST", "LoadedModel", "new_model_id", "model_dir", "save_model", "load_model"]

MANIFEST = "manifest.json"
LATEST = "latest"


def new_model_id(workspace: Workspace, key: str) -> str:
    """A fresh model id: UTC time plus the configuration key, unique in the workspace."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"stack-{stamp}-{key[:6]}"
    candidate, n = base, 1
    while (workspace.models_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def model_dir(workspace: Workspace, model: str = "latest") -> Path:
    """The folder of ``model``: ``latest``, a model id under ``models/``, or a path to a model folder."""
    if model == LATEST:
        alias = workspace.models_dir / LATEST
        if not alias.exists():
            raise FileNotFoundError(
                f"no saved model in {workspace.models_dir}. Run `jungle stack --features ...` "
                "(or `jungle stack --recipe NAME`) first."
            )
        model = alias.read_text().strip()
    for folder in (workspace.models_dir / model, Path(model)):
        if (folder / MANIFEST).exists():
            return folder
    known = sorted(p.name for p in workspace.models_dir.glob("*") if (p / MANIFEST).exists()) \
        if workspace.models_dir.exists() else []
    raise FileNotFoundError(
        f'no saved model "{model}" in {workspace.models_dir}. Saved models: {", ".join(known) or "none"}.'
    )


def save_model(workspace: Workspace, model_id: str, members: list[Level2Classifier], manifest: dict,
               projections: list[Projection | None] | None = None) -> Path:
    """Write the boosters, their projections and the manifest under ``models/<model_id>`` and
    point ``latest`` at it.

    ``manifest["members"][k]`` describes ``members[k]``; its ``file`` (and ``projection_file``)
    entries are filled in here.
    """
    folder = workspace.models_dir / model_id
    folder.mkdir(parents=True, exist_ok=False)
    projections = projections or [None] * len(members)
    for index, (model, entry, projection) in enumerate(zip(members, manifest["members"], projections, strict=True)):
        entry["file"] = f"member-{index}.json"
        model.save(folder / entry["file"])
        if projection is not None:
            entry["projection_file"] = f"member-{index}-projection.npz"
            projection.save(folder / entry["projection_file"])
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=_plain))
    tmp.replace(folder / MANIFEST)
    alias_tmp = workspace.models_dir / (LATEST + ".tmp")
    alias_tmp.write_text(model_id + "\n")
    alias_tmp.replace(workspace.models_dir / LATEST)
    return folder


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@dataclass
class LoadedModel:
    """A saved model, ready to predict."""

    model_id: str
    path: Path
    manifest: dict
    members: list[Level2Classifier]
    projections: list[Projection | None]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.manifest["blend_weights"], dtype=np.float64)

    @property
    def clip(self) -> ClipLimits:
        return ClipLimits.from_json(self.manifest["clip"])

    def feature_sets(self) -> list[tuple[str, int]]:
        """Every (name, version) the model reads."""
        return [(s["name"], int(s["version"])) for s in self.manifest["feature_sets"]]

    def predict_proba(self, matrices: list[np.ndarray]) -> np.ndarray:
        """Blended, clipped probabilities from each member's feature matrix (its manifest ``columns``)."""
        members = [model.predict_proba(X if projection is None else projection.transform(X))
                   for model, projection, X in zip(self.members, self.projections, matrices, strict=True)]
        return self.clip.apply(blend(members, self.weights))


def load_model(workspace: Workspace, model: str = "latest") -> LoadedModel:
    """Load a saved model (``latest``, an id, or a folder path)."""
    folder = model_dir(workspace, model)
    manifest = json.loads((folder / MANIFEST).read_text())
    members = [
        Level2Classifier.load(folder / entry["file"], entry["params"], manifest["label_mode"],
                              len(manifest["classes"]))
        for entry in manifest["members"]
    ]
    projections = [Projection.load(folder / entry["projection_file"]) if entry.get("projection_file") else None
                   for entry in manifest["members"]]
    return LoadedModel(manifest["model_id"], folder, manifest, members, projections)

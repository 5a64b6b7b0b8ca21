"""How saved models are named, listed and chosen: what every ``--model`` option means.

:func:`model_dir` takes ``current`` (the model chosen last, :mod:`jungle.store.model_choices`;
the default), ``latest`` (the newest saved: ``models/latest``), a recipe name (``first-place``,
``refit``, ...: that recipe's newest model, as its manifest records it), a model id under
``models/``, or a model folder. :func:`list_models` lists the folders of ``models/``;
:func:`choose_model` makes one current (``jungle models use``, the review page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import ModelError, NotFoundError
from ...store.db import connect, transaction
from ...store.model_choices import current_choice, record_choice
from ...store.workspace import Workspace
from ..manifest import MODEL_ID, RECIPE_NAME, REFIT_RECIPE, ZERO_SHOT_RECIPE, ModelManifest, read_manifest
from ..model_check import read_model_file
from ..recipes import RECIPES

__all__ = ["MANIFEST", "LATEST", "CURRENT", "MODEL_NAMES", "ModelNotFound", "SavedModel", "choose_model",
           "current_model_id", "latest_id", "list_models", "model_dir", "models_table"]

MANIFEST = "manifest.json"
LATEST = "latest"
CURRENT = "current"
MODEL_NAMES = ("current (the default), latest, a recipe name (first-place, refit, zero-shot, ...), a model id, or a "
               "model folder")
"""What a ``--model`` option takes, as its help text says it."""


class ModelNotFound(NotFoundError):
    """No saved model of that name (or no model at all) in the workspace."""


def latest_id(workspace: Workspace) -> str:
    """The model id ``models/latest`` names (a small regular file holding a plain id)."""
    alias = workspace.models_dir / LATEST
    if not alias.exists() and not alias.is_symlink():
        raise ModelNotFound(
            f"no saved model in {workspace.models_dir}. Run `jungle stack --recipe NAME` (or `jungle stack "
            "--features ...`) first, or, with no labels yet, `jungle predict --model zero-shot`."
        )
    text = read_model_file(workspace.models_dir, LATEST, "alias").decode("utf-8", "replace").strip()
    if not re.fullmatch(MODEL_ID, text):
        raise ModelError(f"{alias} does not hold a model id (it names {text[:60]!r}). Name the model with --model ID, "
                         "or run `jungle stack` to save a new latest model.")
    return text


@dataclass(frozen=True)
class SavedModel:
    """A model folder of ``models/`` as listed: its manifest, or why it cannot be read."""

    model_id: str
    path: Path
    manifest: ModelManifest | None
    error: str | None = None

    @property
    def recipe(self) -> str | None:
        return self.manifest.recipe_name if self.manifest else None

    @property
    def created_at(self) -> str:
        return self.manifest.created_at if self.manifest else ""


def list_models(workspace: Workspace) -> list[SavedModel]:
    """Every model folder under ``models/`` (oldest first), each manifest read and validated; a
    folder whose manifest is unreadable is listed with the reason."""
    folder = workspace.models_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not re.fullmatch(MODEL_ID, path.name) or path.is_symlink() or not path.is_dir() \
                or not (path / MANIFEST).exists():
            continue
        try:
            found.append(SavedModel(path.name, path, read_manifest(path / MANIFEST)))
        except ModelError as exc:
            found.append(SavedModel(path.name, path, None, str(exc)))
    return sorted(found, key=lambda m: (m.created_at, m.model_id))


def current_model_id(workspace: Workspace) -> str | None:
    """The id of the model chosen last in the workspace (None: none chosen, or no database yet)."""
    if not workspace.exists():
        return None
    with connect(workspace, read_only=True) as con:
        choice = current_choice(con)
    return choice.model_id if choice else None


def _saved(workspace: Workspace) -> str:
    models = [m.model_id + (f" ({m.recipe})" if m.recipe else "") for m in list_models(workspace)]
    return ", ".join(models) or "none"


def _recipe_model(workspace: Workspace, recipe: str) -> str | None:
    """The newest saved model of ``recipe`` (None: there is none)."""

    matches = [m for m in list_models(workspace) if m.recipe == recipe]
    if matches:
        return matches[-1].model_id
    if recipe in RECIPES or recipe in (REFIT_RECIPE, ZERO_SHOT_RECIPE):
        how = {REFIT_RECIPE: "retrain on the review page (Shift+R) or run `jungle review --retrain`",
               ZERO_SHOT_RECIPE: "run `jungle predict --model zero-shot` (no labels needed)"}.get(
                   recipe, f"run `jungle stack --recipe {recipe}`")
        raise ModelNotFound(f'no saved model of recipe "{recipe}" in {workspace.models_dir}: {how} first. '
                            f"Saved models: {_saved(workspace)}.")
    return None


def model_dir(workspace: Workspace, model: str = CURRENT) -> Path:
    """The folder of ``model``: ``current`` (the model chosen last; the newest when none was
    chosen), ``latest`` (the newest saved), a recipe name (its newest model), a model id under
    ``models/``, or a path to a model folder. This is what every ``--model`` option means.

    Raises:
        ModelNotFound: no such model, naming the saved ones.
    """
    if not isinstance(model, str) or not model or "\x00" in model or len(model) > 4096:
        raise ModelNotFound(f"--model {str(model)[:60]!r} names no model: give {MODEL_NAMES}.")
    if model == CURRENT:
        chosen = current_model_id(workspace)
        if chosen is not None and not (workspace.models_dir / chosen / MANIFEST).exists():
            raise ModelNotFound(f'the current model "{chosen}" is no longer in {workspace.models_dir}. Choose '
                                f"another with `jungle models use ID|RECIPE` (saved models: {_saved(workspace)}).")
        model = chosen or LATEST
    if model == LATEST:
        model = latest_id(workspace)
    elif re.fullmatch(RECIPE_NAME, model) and not (workspace.models_dir / model / MANIFEST).exists():
        model = _recipe_model(workspace, model) or model
    candidates = [workspace.models_dir / model] if re.fullmatch(MODEL_ID, model) else []
    for folder in candidates + [Path(model)]:
        try:
            if folder.is_dir() and (folder / MANIFEST).exists():
                return folder
        except OSError:  # a name too long for the file system, say
            continue
    raise ModelNotFound(
        f'no saved model "{model}" in {workspace.models_dir}. Saved models: {_saved(workspace)}. '
        f"--model takes {MODEL_NAMES}."
    )


def choose_model(workspace: Workspace, model: str, reason: str) -> ModelManifest:
    """Make ``model`` (any name :func:`model_dir` takes, but saved in this workspace's ``models/``)
    the current model, recording ``reason``; return its manifest.

    Raises:
        ModelNotFound: no such model, or a folder outside ``models/``.
        ModelError: its manifest is not valid.
    """
    folder = model_dir(workspace, model)
    if folder.resolve().parent != workspace.models_dir.resolve():
        raise ModelNotFound(f"{folder} is not a model saved in {workspace.models_dir}: only those can be current. "
                            "Copy the folder into models/ first (or predict and export with --model FOLDER).")
    manifest = read_manifest(folder / MANIFEST)
    with connect(workspace) as con, transaction(con):
        record_choice(con, manifest.model_id, reason)
    return manifest


def _members(manifest: ModelManifest) -> str:
    if manifest.kind == "refit":
        return f"linear re-fit of {manifest.refit.base_model}"
    if manifest.kind == ZERO_SHOT_RECIPE:
        record = manifest.zero_shot
        calibrated = f", calibrated on {record.labelled} labels" if record.calibration == "labels" else ", no labels"
        return f"zero-shot rule over {record.evidence.features[0].name} ({record.images}{calibrated})"
    return " | ".join("+".join(f.name for f in member.features) for member in manifest.members)


def models_table(workspace: Workspace) -> tuple[list[str], list[tuple]]:
    """The saved models as a table (oldest first): id, recipe, created (UTC, to the minute),
    out-of-fold log loss as saved, members (feature sets per member, ``|`` between members), and
    which is current."""
    current = current_model_id(workspace)
    if current is None and (workspace.models_dir / LATEST).exists():
        current = latest_id(workspace)
    rows = []
    for saved in list_models(workspace):
        m = saved.manifest
        if m is None:
            rows.append((saved.model_id, "-", "", None, f"unreadable: {saved.error}", ""))
            continue
        loss = m.oof_log_loss
        rows.append((saved.model_id, m.recipe_name or "-", m.created_at[:16].replace("T", " "),
                     None if loss is None else round(loss, 4), _members(m), "yes" if saved.model_id == current else ""))
    return ["model", "recipe", "created", "oof_log_loss", "members", "current"], rows

"""The model manifest: what a saved level-2 model is, as a typed, versioned, validated record.

``models/<id>/manifest.json`` is the contract between ``jungle stack`` (which writes it) and
``jungle predict`` / ``jungle report`` (which read it). A model folder may come from someone else,
so reading one trusts nothing: the JSON is validated against :class:`ModelManifest`, file names
must be plain names inside the folder, and any problem is a :class:`~jungle.errors.ModelError`
naming the file and what to do, never a ``KeyError`` from deep inside a command.

Versions:

* 1: manifests written before ``manifest_version`` existed; their feature sets carry no
  configuration fingerprint, so ``predict`` can only compare version numbers.
* 2: every feature set records its registry ``config_key`` (and the configuration and inputs
  behind it), which ``predict`` compares with the workspace's set of the same name and version.
  Later ones add ``recipe`` (None for ``--features``) and ``kind``: ``stack`` (XGBoost members) or
  ``refit`` (the review page's linear re-fit, :mod:`jungle.meta.models.linear`) or ``zero-shot``
  (a stated rule over label-free evidence, :mod:`jungle.meta.zeroshot`); older ones read as stacks
  named by their configuration's recipe.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ModelError
from .model_check import MAX_CLASSES, MAX_FEATURES, read_model_file

__all__ = [
    "MANIFEST_VERSION",
    "MODEL_ID",
    "RECIPE_NAME",
    "REFIT_RECIPE",
    "ZERO_SHOT_RECIPE",
    "ZeroShotRecord",
    "InputBlock",
    "RefitRecord",
    "SetVersion",
    "FeatureSetRecord",
    "StudyRecord",
    "ProjectionSummary",
    "MemberEntry",
    "ClipRecord",
    "ModelManifest",
    "member_file",
    "projection_file",
    "read_manifest",
]

MANIFEST_VERSION = 2
"""The version :func:`jungle.meta.stack.stack` writes; :func:`read_manifest` reads 1 and 2."""

MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""A model id becomes a folder and a report file name: no path separators."""

RECIPE_NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
"""A recipe name as ``--model`` takes it (``first-place``, ``refit``)."""

REFIT_RECIPE = "refit"
"""The recipe of the review page's re-fits: ``--model refit`` is the newest one."""

ZERO_SHOT_RECIPE = "zero-shot"
"""The recipe of zero-shot models: ``--model zero-shot`` (``jungle predict`` makes it when missing)."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


def _plain_file_name(name: str | None, suffixes: tuple[str, ...]) -> str | None:
    """``name`` if it is a bare file name with one of ``suffixes`` (nothing outside the model folder)."""
    if name is None:
        return None
    if Path(name).name != name or name in (".", "..") or "\\" in name or not name.endswith(suffixes):
        raise ValueError(f"must be a plain file name inside the model folder ending in {' or '.join(suffixes)}, "
                         f"not {name!r}")
    return name


class SetVersion(_Record):
    """A feature set as a member names it."""

    name: str
    version: int = Field(ge=1)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class FeatureSetRecord(SetVersion):
    """A feature set the model reads, with the fingerprint of the configuration that made it.

    Attributes:
        config_key: the registry's ``config_key`` of the set (None in version-1 manifests).
        config: the set's configuration, so a receiver can rebuild it the same way.
        inputs: the versions of the set's inputs (part of ``config_key``).
    """

    config_key: str | None = None
    config: dict[str, Any] | None = None
    inputs: list[Any] | None = None


class StudyRecord(_Record):
    """The Optuna study a member was tuned in (``name``/``storage`` None without a search)."""

    name: str | None = None
    storage: str | None = None
    trials: int = 0
    pruned: int = 0
    trees_per_trial: float = 0.0


class ProjectionSummary(_Record):
    """One projected feature set: input columns, kept components, variance they explain."""

    columns: int
    components: int
    explained_variance: float


JSONScalar = bool | int | float | str | None


class InputBlock(_Record):
    """Columns a model reads from some feature sets, in order (a stack member's, copied by a re-fit)."""

    features: list[SetVersion] = Field(min_length=1)
    columns: list[str] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_FEATURES:
            raise ValueError(f"{len(value)} columns, more than {MAX_FEATURES}")
        return value


class MemberEntry(InputBlock):
    """One level-2 model of the blend.

    Attributes:
        features: the feature sets of its design matrix.
        columns: the input columns ``predict`` must build, in order (``<set>.<column>``).
        params: ``Level2Classifier`` parameters (without ``n_jobs``).
        file: the booster's XGBoost JSON (or UBJSON) file in the model folder.
        projection_file: the ``.npz`` of its principal axes (``--pca`` only).
    """

    params: dict[str, JSONScalar]
    rounds: int = Field(ge=0)
    cv_log_loss: float
    oof_log_loss: float
    study: StudyRecord | None = None
    dropped_columns: list[str] = []
    missing_rows: dict[str, int] = {}
    projection: dict[str, ProjectionSummary] | None = None
    file: str
    projection_file: str | None = None

    @field_validator("file")
    @classmethod
    def _booster_file(cls, value: str) -> str:
        return _plain_file_name(value, (".json",))

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict) -> dict:
        if "n_jobs" in value:
            raise ValueError("params set n_jobs, which belongs to the machine that predicts")
        weight = value.get("rare_weight", 0.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise ValueError(f"rare_weight {weight!r} is not a number from 0 to 1")
        return value

    @field_validator("projection_file")
    @classmethod
    def _projection_file(cls, value: str | None) -> str | None:
        return _plain_file_name(value, (".npz",))


class RefitRecord(_Record):
    """A review re-fit (``kind: refit``): a linear model over the inputs of a stacked model.

    Attributes:
        base_model: the stacked model whose inputs (and features) it reads.
        inputs: those inputs, concatenated in this order.
        file: the ``.npz`` of the fitted arrays (:class:`~jungle.meta.models.linear.LinearModel`).
        labelled: clips it was fitted on; folds, C, components, seed: its settings.
    """

    base_model: str = Field(pattern=MODEL_ID)
    inputs: list[InputBlock] = Field(min_length=1)
    file: str
    labelled: int = Field(ge=0)
    folds: int = Field(ge=2)
    C: float = Field(gt=0)
    components: int = Field(ge=1)
    seed: int

    @field_validator("file")
    @classmethod
    def _npz_file(cls, value: str) -> str:
        return _plain_file_name(value, (".npz",))


class ZeroShotRecord(_Record):
    """What made a zero-shot model (``kind: zero-shot``, :mod:`jungle.meta.zeroshot`): no training,
    a stated rule over label-free evidence, re-calibrated by labels when there were some.

    Attributes:
        evidence: the evidence set and the columns the rule reads, in order.
        encoders: the encoders whose ImageNet heads scored the images.
        images: ``crops`` (around the boxes) or ``frames`` (whole frames).
        detector: the detector's weights name and digest (None: no detector).
        motion: whether motion boxes were looked for.
        class_map: the map's source, digest, classes, covered and uncovered classes.
        imagenet_classes: per class of the manifest, how many ImageNet classes the map sends there.
        covered: per class, whether the map covers it.
        rule: the rule's constants (:class:`~jungle.meta.zeroshot.rule.ZeroShotRule`).
        calibration: ``rule`` (no labels) or ``labels`` (re-calibrated out of fold).
        labelled: labelled clips that re-calibrated it; labels: their fingerprint.
        file: the ``.npz`` of the re-calibration (with labels only).
    """

    evidence: InputBlock
    encoders: list[str]
    images: Literal["crops", "frames"]
    detector: dict[str, Any] | None = None
    motion: bool = False
    class_map: dict[str, Any]
    imagenet_classes: list[int]
    covered: list[bool]
    rule: dict[str, Any]
    calibration: Literal["rule", "labels"]
    labelled: int = Field(0, ge=0)
    labels: str | None = None
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _npz_file(cls, value: str | None) -> str | None:
        return _plain_file_name(value, (".npz",))

    @model_validator(mode="after")
    def _calibrated(self):
        if (self.calibration == "labels") != (self.file is not None):
            raise ValueError("a zero-shot model re-calibrated by labels has a calibration file, and only then")
        return self


class ClipRecord(_Record):
    """Per-class probability limits (``kind``: how they were chosen)."""

    kind: Literal["fitted", "fixed", "none"]
    low: list[float]
    high: list[float]

    @model_validator(mode="after")
    def _limits(self):
        """Floors in [0, 0.5], ceilings in [0.5, 1] (finite): clipping can never leave [0, 1]."""
        for index, (low, high) in enumerate(zip(self.low, self.high)):
            if not (0.0 <= low <= 0.5 <= high <= 1.0):  # NaN fails every comparison
                raise ValueError(f"class {index}'s clip limits [{low}, {high}] are not a floor in [0, 0.5] and a "
                                 "ceiling in [0.5, 1]")
        return self


class ModelManifest(_Record):
    """Everything ``predict`` and ``report`` need about a saved model (see the module docstring)."""

    manifest_version: int = Field(MANIFEST_VERSION, ge=1, le=MANIFEST_VERSION)
    model_id: str = Field(pattern=MODEL_ID)
    kind: Literal["stack", "refit", "zero-shot"] = "stack"
    recipe: str | None = Field(None, pattern=RECIPE_NAME)
    created_at: str
    code_version: str
    classes: list[str] = Field(min_length=1)
    label_mode: Literal["multiclass", "binary"]
    feature_sets: list[FeatureSetRecord] = Field(min_length=1)
    fold_scheme: str
    members: list[MemberEntry] = []
    blend_weights: list[float]
    clip: ClipRecord
    config: dict[str, Any]
    metrics: dict[str, float | int]
    refit: RefitRecord | None = None
    zero_shot: ZeroShotRecord | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes are not unique")
        if self.kind == "stack" and (not self.members or self.refit is not None):
            raise ValueError("a stack has at least one member and no refit record")
        if self.kind == "refit" and (self.members or self.refit is None):
            raise ValueError("a re-fit has a refit record and no members")
        if (self.kind == ZERO_SHOT_RECIPE) != (self.zero_shot is not None) or (self.zero_shot and self.members):
            raise ValueError("a zero-shot model has a zero_shot record and no members, and only it has one")
        if self.zero_shot and not len(self.zero_shot.imagenet_classes) == len(self.zero_shot.covered) == len(
                self.classes):
            raise ValueError(f"the zero_shot record needs a count and a covered flag per class ({len(self.classes)})")
        if len(self.blend_weights) != len(self.members):
            raise ValueError(f"{len(self.blend_weights)} blend weights for {len(self.members)} members")
        if self.members and (not all(math.isfinite(w) and w >= 0 for w in self.blend_weights) or
                             abs(math.fsum(self.blend_weights) - 1.0) > 1e-6):
            raise ValueError(f"blend weights {self.blend_weights} are not finite, non-negative numbers summing to 1")
        bad = [c for c in self.classes if not c or len(c) > 200 or not c.isprintable()]
        if bad or len(self.classes) > MAX_CLASSES:
            raise ValueError(f"class names must be 1 to 200 printable characters, at most {MAX_CLASSES} of them "
                             f"(not {bad[0][:40]!r})" if bad else f"more than {MAX_CLASSES} classes")
        if not len(self.clip.low) == len(self.clip.high) == len(self.classes):
            raise ValueError(f"clip limits do not have one value per class ({len(self.classes)})")
        recorded = {(s.name, s.version) for s in self.feature_sets}
        for index, block in enumerate(self.inputs):
            unknown = [f.ref for f in block.features if (f.name, f.version) not in recorded]
            if unknown:
                what = "member" if self.kind == "stack" else "input"
                raise ValueError(f"{what} {index} reads {', '.join(unknown)}, which feature_sets does not list")
        if self.manifest_version >= 2 and any(s.config_key is None for s in self.feature_sets):
            raise ValueError("a feature set has no config_key")
        return self

    @property
    def inputs(self) -> list:
        """The blocks of input columns, in order: the members' (stack), the re-fit's inputs, or the
        zero-shot model's evidence; each has ``features`` and ``columns``."""
        if self.kind == ZERO_SHOT_RECIPE:
            return [self.zero_shot.evidence]
        return list(self.members) if self.kind == "stack" else list(self.refit.inputs)

    @property
    def recipe_name(self) -> str | None:
        """The recipe: ``recipe``, or for manifests written before it, the configuration's."""
        if self.recipe is not None:
            return self.recipe
        named = self.config.get("recipe")
        return named if isinstance(named, str) and re.fullmatch(RECIPE_NAME, named) else None

    @property
    def oof_log_loss(self) -> float | None:
        """The out-of-fold log loss it was saved with (``metrics.log_loss``)."""
        value = self.metrics.get("log_loss")
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def to_json(self) -> str:
        """The manifest as written to ``manifest.json``."""
        return self.model_dump_json(indent=2)


def member_file(index: int) -> str:
    """The booster file name of member ``index``."""
    return f"member-{index}.json"


def projection_file(index: int) -> str:
    """The projection file name of member ``index``."""
    return f"member-{index}-projection.npz"


_REMAKE = ("Re-make the model with `jungle stack`, or ask whoever sent the folder for the one jungle wrote, "
           "unchanged.")


def _problems(error: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` problems of ``error`` as ``where: what`` on one line."""
    items = [f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg'].removeprefix('Value error, ')}"
             for e in error.errors()]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def parse_manifest(text: str, path: Path) -> ModelManifest:
    """Validate the text of the manifest file ``path``.

    Raises:
        ModelError: not JSON, not a jungle model manifest, a newer manifest version, or a field
            missing, of the wrong type or inconsistent.
    """
    try:
        raw = json.loads(text)
    except RecursionError:
        raise ModelError(f"model manifest {path} is nested too deeply to be a manifest. {_REMAKE}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"model manifest {path} is not valid JSON ({exc}). {_REMAKE}") from None
    if not isinstance(raw, dict) or not {"model_id", "members"} <= raw.keys():
        raise ModelError(f"{path} is not a jungle model manifest (it has no model_id and members). "
                         "Pass the folder `jungle stack` saved (models/<id>/ of a workspace).")
    version = raw.get("manifest_version", 1)
    if isinstance(version, int) and version > MANIFEST_VERSION:
        raise ModelError(f"model manifest {path} has version {version}, newer than this jungle reads "
                         f"({MANIFEST_VERSION}). Upgrade jungle to use this model.")
    try:
        return ModelManifest.model_validate({**raw, "manifest_version": version})
    except ValidationError as exc:
        raise ModelError(f"model manifest {path} is not valid: {_problems(exc)}. {_REMAKE}") from None


def read_manifest(path: Path) -> ModelManifest:
    """Read and validate the manifest file ``path`` (see :func:`parse_manifest`): a regular file of
    at most 4 MiB (:func:`~jungle.meta.model_check.read_model_file`), never a symlink, FIFO or device."""
    path = Path(path)
    raw = read_model_file(path.parent, path.name, "manifest")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"cannot read model manifest {path} ({exc}). {_REMAKE}") from None
    return parse_manifest(text, path)

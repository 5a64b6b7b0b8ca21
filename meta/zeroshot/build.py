"""Making the zero-shot model: from the evidence set, the rule and the labels there are (none is fine).

:func:`build_zero_shot` reads the clips' evidence (``zeroshot_<src>``), applies the rule
(:mod:`.rule`), and, when the workspace has labels (``min_labels`` or more; the review page's are
enough), re-calibrates the probabilities out of fold (:mod:`.calibration`). It saves a model folder
``models/zero-shot-<time>-<key>/`` whose manifest (``kind: zero-shot``, recipe ``zero-shot``) records
what made it (:class:`~jungle.meta.manifest.ZeroShotRecord`: the evidence set and its columns, the
encoders whose ImageNet heads scored the images, crops or whole frames, the detector, the class map
with its digest and uncovered classes, the rule's constants, and whether labels calibrated it, how
many and which), ``calibration.npz`` when labels did, and ``oof.parquet`` (the labelled clips'
out-of-fold probabilities and labels) like a stack, with their ``oof`` rows in ``predictions``. The
same evidence, rule and labels give the same key, and the model saved with it is reused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...errors import ModelError, NotFoundError
from ...hashing import config_key
from ...store import registry
from ...store.db import connect, transaction
from ...store.labels import labels_fingerprint, read_labelled
from ...store.model_choices import current_choice, record_choice
from ...store.predictions import write_predictions
from ...store.registry import FeatureSet
from ...store.videos import read_videos
from ...store.workspace import Workspace
from ..manifest import ClipRecord, InputBlock, ModelManifest, SetVersion, ZeroShotRecord, read_manifest
from ..metrics import evaluate
from ..model_io import new_model_id, save_model
from .calibration import RecalibrationConfig, recalibrate_out_of_fold
from .model import CALIBRATION_FILE, ZERO_SHOT, ZeroShotModel, rule_columns
from .rule import DEFAULT_RULE, ZeroShotRule

__all__ = ["BuiltZeroShot", "build_zero_shot"]


@dataclass
class BuiltZeroShot:
    """What :func:`build_zero_shot` did: the model id, its folder, whether it was saved now (False: an
    identical one was found) and the labelled clips that re-calibrated it (0: the rule alone)."""

    model_id: str
    folder: Path
    created: bool
    labelled: int


def _saved_with_key(workspace: Workspace, key: str) -> Path | None:
    """The saved zero-shot model made with ``key`` (evidence, rule and labels), if any."""
    if not workspace.models_dir.is_dir():
        return None
    for folder in sorted(workspace.models_dir.glob(f"{ZERO_SHOT}-*-{key[:6]}*")):
        try:
            manifest = read_manifest(folder / "manifest.json")
        except ModelError:
            continue
        if manifest.kind == ZERO_SHOT and manifest.config.get("key") == key:
            return folder
    return None


def _calibration_bytes(correction) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, slope=correction.slope, intercept=correction.intercept)
    return buffer.getvalue()


def build_zero_shot(workspace: Workspace, evidence: FeatureSet, rule: ZeroShotRule = DEFAULT_RULE,
                    recalibration: RecalibrationConfig = RecalibrationConfig(), make_current: bool = True
                    ) -> BuiltZeroShot:
    """Make (or find) the zero-shot model of the evidence set ``evidence``.

    Args:
        workspace: the workspace.
        evidence: a complete ``zeroshot_<src>`` set (its configuration holds the class map's lineage).
        rule: the rule's constants.
        recalibration: how labels re-calibrate it (used once the workspace has ``min_labels``).
        make_current: make it the workspace's current model when no model is current yet, or when the
            current one is a zero-shot model (this one is the same rule, with today's labels).

    Raises:
        NotFoundError: the evidence set covers no readable clip.
    """
    import polars as pl

    config = evidence.config or {}
    class_map = config.get("class_map") or {}
    classes = list(class_map.get("classes") or [])
    table = registry.read_video_table(workspace, evidence)
    with connect(workspace, read_only=True) as con:
        readable = sorted(v for (v,) in read_videos(con, ("video_id",), ok_only=True))
        table = table.filter(pl.col("video_id").cast(pl.String).is_in(readable)).sort("video_id")
        video_ids = table.get_column("video_id").cast(pl.String).to_list()
        Y, labelled = read_labelled(con, None, required=False).aligned(video_ids, classes)
        labels_key = labels_fingerprint(con)
    if not table.height:
        raise NotFoundError(f"the zero-shot evidence {evidence.ref} covers no readable clip of {workspace.root}: "
                            "ingest and featurize clips first.")
    labelled = np.asarray(labelled, bool)
    use_labels = int(labelled.sum()) >= recalibration.min_labels
    key = config_key({"evidence": evidence.ref, "evidence_key": evidence.config_key, "rule": rule.lineage(),
                      "recalibration": recalibration.lineage() if use_labels else None,
                      "labels": labels_key if use_labels else None})
    existing = _saved_with_key(workspace, key)
    lab = labelled if use_labels else np.zeros(len(video_ids), bool)
    if existing is not None:
        return BuiltZeroShot(existing.name, existing, False, int(lab.sum()))
    columns = rule_columns(classes)
    imagenet = np.asarray(config.get("imagenet_classes"), np.float64)
    covered = np.asarray([c in set(class_map.get("covered", [])) for c in classes], bool)
    model = ZeroShotModel(classes, rule, imagenet, covered)
    P = model.rule_probabilities(table.select(columns).to_numpy().astype(np.float64))
    files, metrics, fold = {}, {"videos": 0}, None
    if use_labels:
        P, model.correction, fold = recalibrate_out_of_fold(P, Y, labelled, recalibration)
        P = np.clip(P, rule.floor, 1.0 - rule.floor)
        files[CALIBRATION_FILE] = _calibration_bytes(model.correction)
        metrics = {**evaluate(Y[lab], P[lab]).summary(), "videos": int(lab.sum())}
    model_id = new_model_id(workspace, key, prefix=ZERO_SHOT)
    record = ZeroShotRecord(
        evidence=InputBlock(features=[SetVersion(name=evidence.name, version=evidence.version)],
                            columns=[f"{evidence.name}.{c}" for c in columns]),
        encoders=list(config.get("encoders") or []), images=config.get("images", "frames"),
        detector=config.get("detector"), motion=bool(config.get("motion")), class_map=class_map,
        imagenet_classes=[int(k) for k in imagenet], covered=covered.tolist(), rule=rule.model_dump(mode="json"),
        calibration="labels" if use_labels else "rule", labelled=int(lab.sum()),
        labels=labels_key if use_labels else None, file=CALIBRATION_FILE if use_labels else None)
    n = len(classes)
    manifest = ModelManifest(
        model_id=model_id, kind=ZERO_SHOT, recipe=ZERO_SHOT, created_at=datetime.now(timezone.utc).isoformat(),
        code_version=registry.code_version(), classes=classes, label_mode="binary",
        feature_sets=[{"name": evidence.name, "version": evidence.version, "config_key": evidence.config_key,
                       "config": evidence.config, "inputs": evidence.inputs}],
        fold_scheme=f"{recalibration.folds} random folds of the labelled clips" if use_labels else "none (no labels)",
        blend_weights=[], clip=ClipRecord(kind="fixed", low=[rule.floor] * n, high=[1.0 - rule.floor] * n),
        config={"key": key, "rule": rule.model_dump(mode="json"),
                "recalibration": recalibration.model_dump(mode="json") if use_labels else None},
        metrics=metrics, zero_shot=record)
    folder = save_model(workspace, manifest, [], files=files)
    rows = np.flatnonzero(lab)
    if use_labels:
        pl.DataFrame({"video_id": [video_ids[i] for i in rows], "fold": fold.tolist(),
                      "label": Y[rows].astype(np.int8).tolist(), "probability": P[rows].tolist()}
                     ).write_parquet(folder / "oof.parquet")
    with connect(workspace) as con, transaction(con):
        if use_labels:
            write_predictions(con, model_id, "oof", [video_ids[i] for i in rows], classes, P[rows])
        current = current_choice(con)
        if make_current and (current is None or current.model_id.startswith(f"{ZERO_SHOT}-")):
            why = f"re-calibrated on {int(lab.sum())} labelled clips" if use_labels else "it needs no labels"
            record_choice(con, model_id, f"the zero-shot model: no trained model was current, and {why}")
    return BuiltZeroShot(model_id, folder, True, int(lab.sum()))

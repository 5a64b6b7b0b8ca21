"""Stages chained: what runs above the stages and calls them in order.

The stages themselves never call each other upwards: ``meta.stack`` stacks feature sets that
exist, ``features.aggregates`` builds the sets it is asked for. This module is where a request
such as "stack the first-place recipe" becomes "featurize with the default encoder if needed,
aggregate the kinds that make the missing sets, then stack" (:func:`stack_recipe`, what
``jungle stack`` runs). The demo main job (``jungle demo run``) is in :mod:`jungle.demo.run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import InputError, NotFoundError
from .store import registry
from .store.db import connect
from .store.workspace import Workspace

__all__ = ["DEFAULT_SOURCE", "SetPlan", "plan_feature_sets", "ensure_feature_sets", "packaged_encoders",
           "featurize_default", "crop_sets", "FeaturizeRun", "featurize_videos", "stack_recipe", "zero_shot_model"]

#: The frame-level set the pipeline featurizes by itself (the packaged offline encoder).
DEFAULT_SOURCE = "lite0"


@dataclass(frozen=True)
class SetPlan:
    """How to build the requested sets: aggregate ``kinds`` over frame-level ``source`` (None: metadata only)."""

    source: str | None
    kinds: tuple[str, ...]


def plan_feature_sets(names: list[str]) -> list[SetPlan]:
    """Group requested video-level set names by the frame-level source and aggregate kinds they need
    (from :data:`jungle.features.aggregates.aggregate.KIND_SETS`, where the names are defined).

    Raises:
        InputError: a name no stage of this pipeline makes.
    """
    from .features.aggregates.aggregate import kinds_making

    by_source: dict[str | None, list[str]] = {}
    for name in names:
        made = kinds_making(name)
        if made is None:
            raise InputError(
                f'no pipeline stage makes feature set "{name}": build it yourself '
                "(`jungle featurize`, `jungle aggregate`) or choose another recipe."
            )
        source, kinds = made
        wanted = by_source.setdefault(source, [])
        wanted.extend(k for k in kinds if k not in wanted)
    return [SetPlan(source, tuple(kinds)) for source, kinds in by_source.items()]


def _has_complete(workspace: Workspace, name: str) -> bool:
    with connect(workspace, read_only=True) as con:
        return registry.latest(con, name) is not None


def ensure_feature_sets(workspace: Workspace, names: list[str], frames: str = "uniform:32",
                        log: Callable[[str], None] | None = None, optional: list[str] = ()) -> list:
    """Build the video-level feature sets ``names`` with the stages that make them, then those of
    ``optional`` whose frame-level source exists by then (e.g. the crop sets, once featurize made ``crops_lite0``).

    A frame-level source that is missing is featurized first, but only for the built-in default
    encoder (``lite0``, offline ImageNet weights, with stage features, boxes and crops); any other
    source must have been featurized by the user.

    Returns:
        The feature sets ``aggregate`` produced.
    """
    made = _ensure(workspace, list(names), frames, log)
    buildable = [n for n in optional if _source_present(workspace, n) and not _has_complete(workspace, n)]
    return made + (_ensure(workspace, buildable, frames, log) if buildable else [])


def _source_present(workspace: Workspace, name: str) -> bool:
    """Whether the frame-level set the video-level set ``name`` is made from has a complete version."""
    from .features.aggregates.aggregate import kinds_making

    made = kinds_making(name)
    return made is not None and made[0] is not None and _has_complete(workspace, made[0])


def _ensure(workspace: Workspace, names: list[str], frames: str, log: Callable[[str], None] | None) -> list:
    from .features.aggregates.aggregate import AggregateConfig, aggregate

    say = log or (lambda _line: None)
    made = []
    for plan in plan_feature_sets(list(names)):
        if plan.source is not None and not _has_complete(workspace, plan.source):
            if plan.source not in packaged_encoders():
                raise NotFoundError(
                    f'frame-level feature set "{plan.source}" does not exist; featurize it first, e.g. '
                    f"`jungle featurize --encoder ... --name {plan.source}`."
                )
            say(f"featurize: {plan.source} ({frames}, with stage features)")
            featurize_default(workspace, frames, encoder=plan.source)
        sources = (plan.source,) if plan.source else (DEFAULT_SOURCE,)
        say(f"aggregate: {', '.join(plan.kinds)}" + (f" over {plan.source}" if plan.source else ""))
        made.extend(aggregate(workspace, AggregateConfig(sources=sources, kinds=plan.kinds)))
    return made


def packaged_encoders() -> set[str]:
    """Encoders whose weights ship in an installed package (offline): the pipeline featurizes these
    by itself when a recipe needs their sets (``lite0``, ``lite1``, ``lite2``)."""
    from .features.models.encoders import ENCODERS

    return {alias for alias, spec in ENCODERS.items() if spec.default_weights is not None}


def featurize_default(workspace: Workspace, frames: str, progress: bool = True, encoder: str = DEFAULT_SOURCE,
                      detector: bool = True):
    """Featurize every ingested video with a packaged offline encoder (default ``lite0``), its stage
    features, boxes and crops (``detector``: MegadetectorLite too when its weights are cached; False:
    motion boxes only)."""
    from .features.featurize.config import FeaturizeConfig
    from .features.featurize.crops import BoxesConfig
    from .features.featurize.runner import featurize
    from .features.models.encoders import EncoderConfig

    config = FeaturizeConfig(encoders=(EncoderConfig(name=encoder, stages="all"),), frames=frames,
                             boxes=BoxesConfig(detector="auto" if detector else None))
    return featurize(workspace, config, progress=progress)


def crop_sets(encoder: str = DEFAULT_SOURCE) -> list[str]:
    """The video-level sets the default pipeline makes from boxes and crops, when featurize made them
    (the recipes' optional sets: :data:`jungle.meta.recipes.CROP_SETS` and ``det_boxes``)."""
    from .features.aggregates.aggregate import BOXES_SOURCE, set_name
    from .meta.recipes import CROP_SETS

    return [name.format(encoder=encoder) for name in CROP_SETS] + [set_name("detector", BOXES_SOURCE)]


@dataclass
class FeaturizeRun:
    """What :func:`featurize_videos` did: the detector pass, its video-level summary (the aggregate
    stage's ``detector`` kind) and the encoders' pass (None: not run)."""

    detected: object | None = None
    summarised: object | None = None
    featurized: object | None = None

    def detector_rows(self) -> tuple[list[str], list[tuple]]:
        """The detector pass's sets as rows (its frame-level set, then ``det_<name>`` when made)."""
        columns, rows = self.detected.rows()
        for fs in self.summarised or []:
            status = "complete" if fs.ref in self.summarised.computed else "unchanged"
            rows = rows + [(fs.name, fs.version, fs.row_count, 0, 0, 0, status)]
        return columns, rows


def featurize_videos(workspace: Workspace, config=None, detect=None, shard: str | None = None,
                     dask: str | None = None, progress: bool = True) -> FeaturizeRun:
    """``jungle featurize``: the detector's pass first (``detect``, a ``DetectConfig``) with its video-level
    summary ``det_<name>``, then the encoders' (``config``, a ``FeaturizeConfig``: whole frames, boxes and
    crops in one decoding), here (optionally one ``shard`` "I/N") or on a Dask cluster (``dask``: a
    scheduler address or ``'local'``, which makes its own shards).

    Raises:
        InputError: ``dask`` together with ``shard``.
    """
    from .features.featurize.config import Shard

    if dask and shard:
        raise InputError("--dask makes its own shards; leave out --shard.")
    run = FeaturizeRun()
    if detect is not None:
        from .features.aggregates.aggregate import AggregateConfig, DetectionsConfig, aggregate
        from .features.featurize.detect import detect as detect_pass

        run.detected = detect_pass(workspace, detect, shard=shard, progress=progress)
        if run.detected.frame_set is not None:  # complete (every shard done): summarise it per video
            summary = AggregateConfig(sources=(run.detected.frame_set.name,), kinds=("detector",), boxes=False,
                                      detections=DetectionsConfig(threshold=detect.threshold))
            run.summarised = aggregate(workspace, summary)
    if config is None:
        return run
    if dask:
        from .features.featurize.distributed import featurize_on_dask

        run.featurized = featurize_on_dask(workspace, config, dask, progress=progress)
    else:
        from .features.featurize.runner import featurize

        run.featurized = featurize(workspace, config, shard=Shard.parse(shard) if shard else None, progress=progress)
    return run


def stack_recipe(workspace: Workspace, cfg, build_missing: bool = True, frames: str = "uniform:32",
                 dask: str | None = None, log: Callable[[str], None] | None = None):
    """``jungle stack``: build what a recipe needs (when ``build_missing``), then stack, here or on Dask.

    For a recipe, the sets it names and the ones it builds first (``Recipe.builds``, e.g. the
    default pipeline's sets for ``all``) that the workspace lacks are made with
    :func:`ensure_feature_sets`, then its optional sets whose frame-level source exists (the crop
    sets); explicit ``--features`` members are stacked as they are.
    ``dask`` (a scheduler address or ``'local'``) trains with ``xgboost.dask`` and tunes on every
    worker of that cluster.
    """
    from .meta.recipes import get_recipe, missing_sets, optional_sets, recipe_build_sets
    from .meta.stack import stack

    if cfg.recipe and build_missing:
        recipe = get_recipe(cfg.recipe)
        missing = missing_sets(workspace, recipe_build_sets(recipe, cfg.encoder))
        optional = missing_sets(workspace, optional_sets(recipe, cfg.encoder))
        if missing or optional:
            ensure_feature_sets(workspace, missing, frames=frames, log=log, optional=optional)
    if not dask:
        return stack(workspace, cfg, log=log)
    from functools import partial

    from .meta.distributed import DaskLevel2Classifier, client_for, tune_on_dask

    with client_for(dask) as client:
        return stack(workspace, cfg, log=log, classifier=DaskLevel2Classifier,
                     tuner=partial(tune_on_dask, client=client))


def zero_shot_model(workspace: Workspace, encoder: str = DEFAULT_SOURCE, class_map: str | None = None,
                    frames: str = "uniform:32", progress: bool = True, log: Callable[[str], None] | None = None):
    """``jungle predict --model zero-shot``: the zero-shot model of the workspace as it is now.

    With no class list configured, the workspace gets the 24 Pri-matrix classes (the review page
    labels with them; ``jungle labels FILE --classes ...`` changes them). The encoder's set is
    featurized when missing (a packaged encoder only, with boxes and crops), its zero-shot evidence
    (``zeroshot_<encoder>``) is built or found up to date, and the model made from it with the
    workspace's labels, if any, is saved or found (:func:`jungle.meta.zeroshot.build.build_zero_shot`).

    Returns:
        :class:`~jungle.meta.zeroshot.build.BuiltZeroShot`.

    Raises:
        NotFoundError: the encoder's set is missing and not a packaged encoder.
        ClassMapError: the class map is unusable.
        ModelError: the encoder has no ImageNet head.
    """
    from .classes import PRIMATRIX_CLASSES
    from .features.aggregates.aggregate import AggregateConfig, ZeroShotConfig, aggregate
    from .meta.zeroshot.build import build_zero_shot
    from .store.db import connect, transaction
    from .store.labels import read_classes, write_classes

    say = log or (lambda _line: None)
    with connect(workspace) as con, transaction(con):
        classes = read_classes(con, required=False)
        if not classes:
            write_classes(con, PRIMATRIX_CLASSES)
            classes = tuple(PRIMATRIX_CLASSES)
            say("note: the workspace had no class list; it now has the 24 Pri-matrix classes (`jungle labels FILE "
                "--classes ...` sets others)")
    if class_map is not None:  # a bad map is refused before anything is featurized or loaded
        from .features.models.imagenet import read_class_map

        read_class_map(class_map, classes)
    if not _has_complete(workspace, encoder):
        if encoder not in packaged_encoders():
            raise NotFoundError(f'frame-level feature set "{encoder}" does not exist; featurize it first '
                                "(`jungle featurize`).")
        say(f"featurize: {encoder} ({frames}, with boxes and crops)")
        featurize_default(workspace, frames, progress=progress, encoder=encoder)
    config = AggregateConfig(sources=(encoder,), kinds=("zero-shot",), zero_shot=ZeroShotConfig(class_map=class_map))
    evidence = aggregate(workspace, config, progress=progress)[-1]
    return build_zero_shot(workspace, evidence)

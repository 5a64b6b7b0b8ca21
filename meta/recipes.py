"""Named stacking configurations that reproduce the Pri-matrix winners' systems.

A recipe names the video-level feature sets each of its level-2 models needs (``{encoder}`` is
filled with the embedding feature set's name, ``lite0`` by default) and its level-2 settings.
Several models in one recipe are blended with weights fitted on out-of-fold predictions. When a
needed set is missing, :func:`resolve_recipe` says exactly what is missing; the pipeline
(:func:`jungle.pipeline.stack_recipe`, what ``jungle stack`` runs) builds the sets of
:func:`recipe_build_sets` first. ``all`` stacks every video-level set in the workspace; it lists
the default pipeline's sets (:data:`DEFAULT_SETS`) as ones to build first, so right after ingest
it stacks those rather than whatever happens to exist.

Crops: ``first-place``, ``third-place`` and ``all`` also use the crop sets (:data:`CROP_SETS`, made from
the crop embeddings ``crops_<encoder>`` that featurize writes by default) and, for ``all``, the
detection features of the boxes (``det_boxes``) when the workspace has them or can make them: a
recipe's ``optional`` sets. :func:`optional_sets` lists them; the pipeline builds those whose
frame-level source exists, and :func:`resolve_recipe` adds those that are present. A workspace
featurized without crops stacks exactly the sets it did before.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NotFoundError
from ..store import registry
from ..store.db import connect
from ..store.workspace import Workspace
from .dataset import FeatureRef, MissingFeatureSets

__all__ = ["Recipe", "RECIPES", "EVERYTHING", "DEFAULT_SETS", "CROP_SETS", "get_recipe", "encoder_names",
           "recipe_sets", "recipe_build_sets", "optional_sets", "missing_sets", "resolve_recipe"]

EVERYTHING = "*"
"""A member made of every complete video-level feature set in the workspace."""

DEFAULT_SETS = ("meta", "hist_{encoder}", "minmax_{encoder}", "attn_{encoder}")
"""The video-level sets the default pipeline makes (``jungle aggregate`` with its default kinds; the
minmax kind also makes ``minmax_stages_{encoder}`` and attention ``attnvec_{encoder}`` when it can)."""

CROP_SETS = ("hist_crops_{encoder}", "minmax_crops_{encoder}", "minmax_stages_crops_{encoder}", "attn_crops_{encoder}")
"""The video-level sets the default pipeline makes from the crop embeddings ``crops_{encoder}``."""


@dataclass(frozen=True)
class Recipe:
    """One named configuration.

    Attributes:
        name: the name users type (``--recipe NAME``).
        description: what it reproduces.
        members: the feature sets of each level-2 model (``"*"``: every video-level set).
        builds: sets built first when missing (and building is allowed), but not required: what
            a ``"*"`` member should at least hold.
        optional: per member, sets added to it when the workspace has them; the pipeline builds them
            first when their frame-level source exists (the crop sets).
        optional_builds: sets built first when their frame-level source exists (for a ``"*"`` member).
        label_mode: ``auto`` | ``multiclass`` | ``binary``.
        clip: ``fitted`` (per-class limits fitted on OOF), ``fixed`` (``clip_value``) or ``none``.
        clip_value: the fixed limit.
    """

    name: str
    description: str
    members: tuple[tuple[str, ...], ...]
    builds: tuple[str, ...] = ()
    optional: tuple[tuple[str, ...], ...] = ()
    optional_builds: tuple[str, ...] = ()
    label_mode: str = "auto"
    clip: str = "fitted"
    clip_value: float = 1e-4

    def member_names(self, encoder: str) -> tuple[tuple[str, ...], ...]:
        """The members with ``{encoder}`` filled in: ``encoder`` may name several frame-level sets
        (``"lite0,lite1"``, the 3rd place's several encoders), each name then standing once per encoder."""
        return tuple(tuple(_filled(member, encoder)) for member in self.members)

    def optional_names(self, encoder: str) -> tuple[tuple[str, ...], ...]:
        """Per member, its optional sets with ``{encoder}`` filled in (empty for members without)."""
        padded = self.optional + ((),) * (len(self.members) - len(self.optional))
        return tuple(tuple(_filled(names, encoder)) for names in padded)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("metadata-only", "File size, resolution and camera statistics alone (~65% accuracy on Pri-matrix).",
           (("meta",),)),
    Recipe("min-max", "3rd place's pooled embeddings: per-dimension mean, min, max and max-min over frames.",
           (("minmax_{encoder}",),)),
    Recipe("first-place", "1st place: frame classifier (trained multiple-instance: its frame probabilities say "
           "where the animal is), statistics and 10-bin histograms over 32 frames, metadata, XGBoost softprob, "
           "probabilities clipped at 1e-4; with the same over the crops around the boxes when featurized.",
           (("hist_{encoder}", "meta"),), optional=(("hist_crops_{encoder}",),), clip="fixed", clip_value=1e-4),
    Recipe("third-place", "3rd place: multi-stage (skip) features and attention pooling with metadata, "
           "two models blended, per-class clipping fitted out of fold; each with the crops' when featurized.",
           (("minmax_stages_{encoder}", "meta"), ("attn_{encoder}", "meta")),
           optional=(("minmax_stages_crops_{encoder}",), ("attn_crops_{encoder}",))),
    Recipe("all", "Every video-level feature set in the workspace stacked in one model (the default pipeline's "
           "sets, with the crops' and the boxes' when featurized, are built first when missing).",
           ((EVERYTHING,),), builds=DEFAULT_SETS, optional_builds=CROP_SETS + ("det_boxes",)),
)}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; the error lists the recipes there are."""
    try:
        return RECIPES[name]
    except KeyError:
        raise NotFoundError(f'no recipe "{name}". Recipes: {", ".join(RECIPES)}.') from None


def recipe_sets(recipe: Recipe, encoder: str = "lite0") -> list[str]:
    """The named feature sets a recipe needs, in order, without duplicates (``*`` left out)."""
    names: list[str] = []
    for member in recipe.member_names(encoder):
        names.extend(n for n in member if n != EVERYTHING and n not in names)
    return names


def encoder_names(encoder: str) -> list[str]:
    """The frame-level sets named by ``encoder`` (comma-separated), in order, without repeats."""
    return list(dict.fromkeys(e.strip() for e in encoder.split(",") if e.strip()))


def _filled(names: tuple[str, ...], encoder: str) -> list[str]:
    filled: list[str] = []
    for name in names:
        each = [name.format(encoder=e) for e in encoder_names(encoder)] if "{encoder}" in name else [name]
        filled.extend(n for n in each if n not in filled)
    return filled


def recipe_build_sets(recipe: Recipe, encoder: str = "lite0") -> list[str]:
    """The sets to have before stacking ``recipe``: the ones it needs, then the ones it builds first."""
    needed = recipe_sets(recipe, encoder)
    return needed + [n for n in _filled(recipe.builds, encoder) if n not in needed]


def _complete_video_sets(workspace: Workspace) -> list[str]:
    with connect(workspace, read_only=True) as con:
        return sorted({s.name for s in registry.list_sets(con, "video") if s.status == "complete"})


def optional_sets(recipe: Recipe, encoder: str = "lite0") -> list[str]:
    """The sets a recipe uses when they exist (its members' optional sets, then its optional builds)."""
    names: list[str] = []
    for member in recipe.optional_names(encoder):
        names.extend(n for n in member if n not in names)
    return names + [n for n in _filled(recipe.optional_builds, encoder) if n not in names]


def missing_sets(workspace: Workspace, names: list[str]) -> list[str]:
    """The ones of ``names`` that have no complete video-level set in the workspace."""
    present = _complete_video_sets(workspace)
    return [n for n in names if n not in present]


def resolve_recipe(workspace: Workspace, recipe: Recipe, encoder: str = "lite0") -> tuple[tuple[FeatureRef, ...], ...]:
    """The feature references of every member of ``recipe``, from the sets the workspace has.

    Building missing sets is the pipeline's job (:func:`jungle.pipeline.stack_recipe`), not this one's.

    Raises:
        MissingFeatureSets: sets the recipe needs are missing; the message lists them and what to do.
    """
    needed = recipe_sets(recipe, encoder)
    present = _complete_video_sets(workspace)
    missing = [n for n in needed if n not in present]
    if missing:
        raise MissingFeatureSets(
            missing,
            f'recipe "{recipe.name}" needs feature set(s) {", ".join(missing)}, which the workspace lacks '
            f'(it has: {", ".join(present) or "none"}). Run `jungle stack --recipe {recipe.name}` without '
            "--no-build to build them, or build them with `jungle featurize` and `jungle aggregate`.",
        )
    members = []
    for member, optional in zip(recipe.member_names(encoder), recipe.optional_names(encoder)):
        names = present if EVERYTHING in member else list(member) + [n for n in optional if n in present]
        if not names:
            raise MissingFeatureSets(
                ["*"], f'recipe "{recipe.name}" stacks every video-level feature set, but the workspace has '
                "none. Run `jungle aggregate` first.")
        members.append(tuple(FeatureRef(n) for n in names))
    return tuple(members)

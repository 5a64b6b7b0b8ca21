"""Named stacking configurations that reproduce the Pri-matrix winners' systems.

A recipe names the video-level feature sets each of its level-2 models needs (``{encoder}`` is
filled with the embedding feature set's name, ``lite0`` by default) and its level-2 settings.
Several models in one recipe are blended with weights fitted on out-of-fold predictions. When a
needed set is missing, :func:`resolve_recipe` asks the pipeline to build it
(``jungle.pipeline.ensure_feature_sets``) where that stage exists, and otherwise says exactly
what is missing. ``all`` stacks every video-level set in the workspace; it first builds the
default pipeline's sets (:data:`DEFAULT_SETS`) that are missing, so right after ingest it stacks
those rather than whatever happens to exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import registry
from ..store.db import connect
from ..store.workspace import Workspace
from .dataset import FeatureRef, MissingFeatureSets

__all__ = ["Recipe", "RECIPES", "EVERYTHING", "DEFAULT_SETS", "get_recipe", "recipe_sets", "resolve_recipe"]

EVERYTHING = "*"
"""A member made of every complete video-level feature set in the workspace."""

DEFAULT_SETS = ("meta", "hist_{encoder}", "minmax_{encoder}", "attn_{encoder}")
"""The video-level sets the default pipeline makes (``jungle aggregate`` with its default kinds; the
minmax kind also makes ``minmax_stages_{encoder}`` and attention ``attnvec_{encoder}`` when it can)."""


@dataclass(frozen=True)
class Recipe:
    """One named configuration.

    Attributes:
        name: the name users type (``--recipe NAME``).
        description: what it reproduces.
        members: the feature sets of each level-2 model (``"*"``: every video-level set).
        builds: sets built first when missing (and building is allowed), but not required: what
            a ``"*"`` member should at least hold.
        label_mode: ``auto`` | ``multiclass`` | ``binary``.
        clip: ``fitted`` (per-class limits fitted on OOF), ``fixed`` (``clip_value``) or ``none``.
        clip_value: the fixed limit.
    """

    name: str
    description: str
    members: tuple[tuple[str, ...], ...]
    builds: tuple[str, ...] = ()
    label_mode: str = "auto"
    clip: str = "fitted"
    clip_value: float = 1e-4

    def member_names(self, encoder: str) -> tuple[tuple[str, ...], ...]:
        """The members with ``{encoder}`` filled in."""
        return tuple(tuple(name.format(encoder=encoder) for name in member) for member in self.members)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("metadata-only", "File size, resolution and camera statistics alone (~65% accuracy on Pri-matrix).",
           (("meta",),)),
    Recipe("min-max", "3rd place's pooled embeddings: per-dimension mean, min, max and max-min over frames.",
           (("minmax_{encoder}",),)),
    Recipe("first-place", "1st place: frame classifier, statistics and 10-bin histograms over 32 frames, "
           "metadata, XGBoost softprob, probabilities clipped at 1e-4.",
           (("hist_{encoder}", "meta"),), clip="fixed", clip_value=1e-4),
    Recipe("third-place", "3rd place: multi-stage (skip) features and attention pooling with metadata, "
           "two models blended, per-class clipping fitted out of fold.",
           (("minmax_stages_{encoder}", "meta"), ("attn_{encoder}", "meta"))),
    Recipe("all", "Every video-level feature set in the workspace stacked in one model (the default pipeline's "
           "sets are built first when missing).", ((EVERYTHING,),), builds=DEFAULT_SETS),
)}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; the error lists the recipes there are."""
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f'no recipe "{name}". Recipes: {", ".join(RECIPES)}.') from None


def recipe_sets(recipe: Recipe, encoder: str = "lite0") -> list[str]:
    """The named feature sets a recipe needs, in order, without duplicates (``*`` left out)."""
    names: list[str] = []
    for member in recipe.member_names(encoder):
        names.extend(n for n in member if n != EVERYTHING and n not in names)
    return names


def _filled(names: tuple[str, ...], encoder: str) -> list[str]:
    return [name.format(encoder=encoder) for name in names]


def _missing(workspace: Workspace, names: list[str]) -> tuple[list[str], list[str]]:
    """(missing names, every complete video-level set) in the workspace."""
    with connect(workspace, read_only=True) as con:
        present = sorted({s.name for s in registry.list_sets(con, "video") if s.status == "complete"})
    return [n for n in names if n not in present], present


def resolve_recipe(workspace: Workspace, recipe: Recipe, encoder: str = "lite0",
                   build_missing: bool = True) -> tuple[tuple[FeatureRef, ...], ...]:
    """The feature references of every member of ``recipe``, building missing sets when possible.

    Raises:
        MissingFeatureSets: sets are missing and cannot be built here; the message lists them.
    """
    needed = recipe_sets(recipe, encoder)
    wanted = needed + [n for n in _filled(recipe.builds, encoder) if n not in needed]
    missing, present = _missing(workspace, wanted if build_missing else needed)
    if missing and build_missing:
        from jungle.pipeline import ensure_feature_sets

        ensure_feature_sets(workspace, missing)
        missing, present = _missing(workspace, needed)
    if missing:
        raise MissingFeatureSets(
            missing,
            f'recipe "{recipe.name}" needs feature set(s) {", ".join(missing)}, which the workspace lacks '
            f'(it has: {", ".join(present) or "none"}). Build them with `jungle featurize` and '
            "`jungle aggregate`, then run the recipe again.",
        )
    members = []
    for member in recipe.member_names(encoder):
        names = present if EVERYTHING in member else list(member)
        if not names:
            raise MissingFeatureSets(
                ["*"], f'recipe "{recipe.name}" stacks every video-level feature set, but the workspace has '
                "none. Run `jungle aggregate` first.")
        members.append(tuple(FeatureRef(n) for n in names))
    return tuple(members)

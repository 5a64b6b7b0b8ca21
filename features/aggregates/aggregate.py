"""``jungle aggregate``: materialise the winners' video-level features as named, versioned sets.

From one or several frame-level embedding sets (``lite0`` ...) and the ``videos``/``labels``/``folds``
tables, :func:`aggregate` builds, as asked by ``config.kinds``:

============  =======================  ======  ===========================================================
kind          feature set              level   what
============  =======================  ======  ===========================================================
meta          ``meta``                 video   metadata + neighbour features (:mod:`.metadata`)
frame-head    ``frameprobs_<src>``     frames  out-of-fold per-frame class probabilities (:mod:`.frame_head`)
stats         ``hist_<src>``           video   per class: mean, median, min, max, std, p10, p90, 10-bin
                                               histogram of the frame probabilities (needs frame-head)
minmax        ``minmax_<src>``         video   per embedding dimension: mean, max, min, max - min
              ``minmax_stages_<src>``  video   the same over the ``stages`` (skip) features, when stored
attention     ``attn_<srcs>``          video   out-of-fold class probabilities of attention pooling
              ``attnvec_<srcs>``       video   its attention-weighted mean embedding
detector      ``det_<src>``            video   detection features of a detections set (``boxes``, or a
                                               detector pass's ``megadetector_lite``; :mod:`.detections`)
zero-shot     ``zeroshot_<src>``       video   label-free evidence: boxes, motion and the encoder's ImageNet
                                               head on the crops (or frames) through a class map
                                               (:mod:`.zeroshot`; not built by default)
============  =======================  ======  ===========================================================

Crops: a featurize run with crops writes, beside each embedding set ``<src>``, the crop set
``crops_<src>`` (laid out like an embedding set). With ``crops`` on (the default) every embedding
kind also runs over ``crops_<src>`` when it exists (``hist_crops_lite0``, ``minmax_crops_lite0``,
``attn_crops_lite0``...; attention over the crop sets side by side), and with ``boxes`` on the
detector kind also summarises the run's ``boxes`` set (``det_boxes``).

Each set is registered with its parameters, its inputs (name, version, and a fingerprint of the
rows it read; labels and folds for learned sets) and the fold scheme. Registering the same
parameters and inputs finds the existing version, so an unchanged set is skipped (its file is
not touched); anything changed (new videos featurized, a label fixed, new folds, other
parameters) makes a new version. Video-level sets become SQL views ``NAME`` / ``NAME_vN`` in
``jungle sql``. The DuckDB file is opened only briefly, before and after each set's computation.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Literal

import numpy as np
from pydantic import Field, field_validator

from ...config import JungleConfig
from ...errors import InputError
from ...progress import progress_bar
from ...runtime import torch_threads
from ...store import arrays, registry
from ...store.db import connect, transaction
from ...store.registry import FeatureSet
from ...store.rows import replace_done_rows
from ...store.views import register_views
from ...store.workspace import Workspace
from .attention import AttentionConfig, fit_attention, meta_inputs, predict_attention
from ..models.detector import DETECTION_LEVELS
from .detections import DETECTION_ARRAYS, detection_column_names, detection_columns, source_kind
from .frame_head import FrameHeadConfig, fit_frame_head, write_frame_probs
from .frame_stats import (EMBEDDING_POOLS, PROB_STATS, class_slug, pool_columns, pool_embeddings,
                          prob_stat_columns, prob_stats)
from .inputs import FrameRows, iter_frame_blocks, load_frame_rows
from .metadata import MetadataConfig, metadata_features, videos_fingerprint
from .oof import load_fold_plan
from .tables import VideoTableWriter
from .zeroshot import evidence_columns, iter_evidence, zero_shot_setup

__all__ = ["KINDS", "DEFAULT_KINDS", "KIND_SETS", "set_name", "kinds_making", "StatsConfig", "PoolingConfig",
           "ZeroShotConfig", "AggregateConfig", "AggregateResults", "aggregate", "write_prob_stats", "write_pooled"]

Kind = Literal["meta", "frame-head", "stats", "minmax", "attention", "detector", "zero-shot"]
KINDS: tuple[str, ...] = ("meta", "frame-head", "stats", "minmax", "attention", "detector", "zero-shot")
#: What ``jungle aggregate`` builds unless told (the zero-shot evidence is the zero-shot model's, built on demand).
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "zero-shot")
#: The kinds that read frame-level sets (``config.sources``); ``meta`` reads ``videos`` only.
FRAME_KINDS = frozenset(KINDS) - {"meta"}
#: The kinds that read embedding sets (``detector`` reads detections sets; ``zero-shot`` reads an embedding
#: set's crops itself).
EMBEDDING_KINDS = FRAME_KINDS - {"detector", "zero-shot"}
#: Where a featurize run with boxes writes them (``jungle.features.featurize.crops.BOXES_SET``).
BOXES_SOURCE = "boxes"
#: The crop set of an embedding set (``jungle.features.featurize.crops.crops_set_name``).
CROPS_PREFIX = "crops_"
#: The feature sets each kind makes, as names over its source (``{source}``: the frame-level set's
#: name, or the sources' names joined by ``_`` for attention). The one place these names are spelled.
KIND_SETS: dict[str, tuple[str, ...]] = {
    "meta": ("meta",),
    "frame-head": ("frameprobs_{source}",),
    "stats": ("hist_{source}",),
    "minmax": ("minmax_{source}", "minmax_stages_{source}"),
    "attention": ("attn_{source}", "attnvec_{source}"),
    "detector": ("det_{source}",),
    "zero-shot": ("zeroshot_{source}",),
}
#: Kinds a kind reads the output of (they are built with it).
KIND_NEEDS: dict[str, tuple[str, ...]] = {"stats": ("frame-head",)}


def set_name(kind: str, source: str = "", index: int = 0) -> str:
    """The name of the ``index``-th feature set ``kind`` makes over ``source``."""
    return KIND_SETS[kind][index].format(source=source)


def kinds_making(name: str) -> tuple[str | None, tuple[str, ...]] | None:
    """(source, kinds to run) that make the feature set ``name`` (source None for ``meta``), or None
    when no kind makes it. The longest matching prefix wins (``minmax_stages_x`` is not ``minmax_``)."""
    if name == "meta":
        return None, ("meta",)
    matches = []
    for kind, templates in KIND_SETS.items():
        for template in templates:
            prefix = template.split("{source}")[0]
            if template.endswith("{source}") and name.startswith(prefix) and len(name) > len(prefix):
                matches.append((len(prefix), kind, name[len(prefix):]))
    if not matches:
        return None
    _, kind, source = max(matches)
    return source, KIND_NEEDS.get(kind, ()) + (kind,)


class StatsConfig(JungleConfig):
    """Statistics of frame probabilities (``hist_<src>``): names from :data:`PROB_STATS` or ``pNN``."""

    stats: tuple[str, ...] = PROB_STATS
    bins: int = Field(10, ge=0, le=100)


class PoolingConfig(JungleConfig):
    """Embedding pooling (``minmax_<src>``); ``stages``: also pool the skip features when stored."""

    pools: tuple[Literal["mean", "max", "min", "range"], ...] = EMBEDDING_POOLS
    stages: bool = True


class DetectionsConfig(JungleConfig):
    """Detection features (``det_<src>``): the score that counts as a detected frame, and the
    score levels whose frame counts and fractions become columns."""

    threshold: float = Field(0.25, gt=0.0, le=1.0)
    levels: tuple[float, ...] = DETECTION_LEVELS


class ZeroShotConfig(JungleConfig):
    """Zero-shot evidence (``zeroshot_<src>``): the class map from ImageNet to the taxonomy (a CSV;
    None: the packaged Pri-matrix map) and the detector pass's set read when there is no ``boxes`` set."""

    class_map: str | None = None
    detector_set: str = "megadetector_lite"


class AggregateConfig(JungleConfig):
    """What :func:`aggregate` builds, from which frame-level sets, and how.

    Attributes:
        sources: frame-level embedding sets (by name; their latest complete version).
        kinds: what to build (see the module table); dependencies (frame-head for stats, meta for
            attention with metadata) are built too.
        fold_scheme: folds for the out-of-fold models.
        meta, frame_head, stats, pooling, attention, detections, zero_shot: per-kind settings.
        crops: also run the embedding kinds over each source's crop set ``crops_<src>`` when it exists.
        boxes: with the detector kind, also summarise the ``boxes`` set when it exists.
        videos_per_block: videos read per block (memory is bounded by this, not by the collection).
        threads: torch threads while aggregating (default 1: the heads are small, and on a shared
            CPU torch's idle OpenMP threads spin: 2 threads ran the frame head 6x slower than 1
            on a busy 2-core machine); None leaves torch's setting alone.
    """

    sources: tuple[str, ...] = ("lite0",)
    kinds: tuple[Kind, ...] = DEFAULT_KINDS
    fold_scheme: str = "default"
    meta: MetadataConfig = MetadataConfig()
    frame_head: FrameHeadConfig = FrameHeadConfig()
    stats: StatsConfig = StatsConfig()
    pooling: PoolingConfig = PoolingConfig()
    attention: AttentionConfig = AttentionConfig()
    detections: DetectionsConfig = DetectionsConfig()
    zero_shot: ZeroShotConfig = ZeroShotConfig()
    crops: bool = True
    boxes: bool = True
    videos_per_block: int = Field(256, ge=1)
    threads: int | None = Field(1, ge=1)

    @field_validator("kinds", mode="before")
    @classmethod
    def _kind_names(cls, value):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        kinds = tuple(str(v).strip().replace("_", "-") for v in value)
        if not kinds:
            raise InputError(f"--kind names nothing to build: give one or more of {', '.join(KINDS)}, "
                             "comma-separated")
        return kinds

    @field_validator("sources", mode="before")
    @classmethod
    def _source_names(cls, value):
        if isinstance(value, str):
            value = value.split(",")
        names = tuple(str(v).strip() for v in value if str(v).strip())
        if not names:
            raise InputError("give at least one frame-level source set, e.g. lite0")
        return names

    @classmethod
    def from_options(cls, *, sources, kinds, fold_scheme: str = "default", threads: int | None = 1,
                     neighbours: int | None = None, bins: int | None = None, head_hidden: int | None = None,
                     head_epochs: int | None = None, attention_epochs: int | None = None, recurrent: bool = False,
                     attention_meta: bool = True, unlabelled: str = "full", seed: int = 0,
                     crops: bool = True, crop_head: str | None = None) -> "AggregateConfig":
        """The configuration from ``jungle aggregate``'s flat options (None: the sub-config's default)."""
        def given(**values) -> dict:
            return {k: v for k, v in values.items() if v is not None}

        mode = unlabelled.replace("-", "_")
        return cls(sources=sources, kinds=kinds, fold_scheme=fold_scheme, threads=threads, crops=crops,
                   meta=given(neighbours=neighbours), stats=given(bins=bins),
                   frame_head=given(hidden=head_hidden, epochs=head_epochs, unlabelled=mode, seed=seed,
                                    crops=crop_head),
                   attention=given(recurrent=recurrent, with_meta=attention_meta, unlabelled=mode, seed=seed,
                                   epochs=attention_epochs))


class AggregateResults(list):
    """The feature sets :func:`aggregate` produced (a ``list[FeatureSet]``), plus what it did.

    Attributes:
        computed: refs (``name@version``) computed by this run; the others were up to date.
        seconds: seconds spent per ref.
    """

    def __init__(self):
        super().__init__()
        self.computed: set[str] = set()
        self.seconds: dict[str, float] = {}

    def rows(self) -> tuple[list[str], list[tuple]]:
        """(columns, rows) for rendering."""
        rows = [(fs.name, fs.version, fs.kind, fs.row_count, "computed" if fs.ref in self.computed else "unchanged",
                 round(self.seconds.get(fs.ref, 0.0), 2)) for fs in self]
        return ["name", "version", "kind", "rows", "status", "seconds"], rows


def write_prob_stats(workspace: Workspace, source: FrameRows, writer: VideoTableWriter, config: StatsConfig,
                     videos_per_block: int = 256, progress: Callable[[int], None] | None = None) -> None:
    """Stream :func:`prob_stats` of the ``probs`` array of ``source`` into ``writer``."""
    import duckdb

    con = duckdb.connect()
    try:
        for block in iter_frame_blocks(workspace, [source], "probs", videos_per_block=videos_per_block):
            keep = block.valid.any(axis=1)
            values = prob_stats(block.values[keep], block.valid[keep], config.stats, config.bins, con=con)
            writer.write(block.video_ids[keep], np.column_stack([block.valid[keep].sum(axis=1), values]))
            if progress:
                progress(len(block))
    finally:
        con.close()


def write_pooled(workspace: Workspace, source: FrameRows, writer: VideoTableWriter, array: str,
                 pools, videos_per_block: int = 256, progress: Callable[[int], None] | None = None) -> None:
    """Stream :func:`pool_embeddings` of ``array`` of ``source`` into ``writer`` (``n_valid`` first)."""
    for block in iter_frame_blocks(workspace, [source], array, videos_per_block=videos_per_block):
        keep = block.valid.any(axis=1)
        valid = block.valid[keep]
        row = np.empty((len(valid), len(writer.columns)), dtype=np.float32)
        row[:, 0] = valid.sum(axis=1)
        pool_embeddings(block.values[keep], valid, pools, out=row[:, 1:])
        writer.write(block.video_ids[keep], row)
        if progress:
            progress(len(block))


class _Run:
    """One :func:`aggregate` call: resolves inputs, registers sets, computes what is missing."""

    def __init__(self, workspace: Workspace, config: AggregateConfig, progress: bool):
        self.ws, self.config, self.show_progress = workspace, config, progress
        self.results = AggregateResults()
        self._meta: FeatureSet | None = None
        self._plan = None
        self._probs: dict[str, FrameRows] = {}   # frame probabilities made by this run, by source

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _bar(self, total: int | None, desc: str, unit: str = "video"):
        bar = progress_bar(total, desc, unit, show=self.show_progress)
        try:
            yield bar.update
        finally:
            bar.close()

    def _register(self, name: str, kind: str, params: dict, inputs: list, **meta) -> tuple[FeatureSet, bool]:
        """(feature set, up to date)."""
        with connect(self.ws) as con:
            fs, _ = registry.register(con, name, kind, params, inputs, **meta)
        fresh = fs.status == "complete" and (self.ws.root / fs.location).exists()
        return fs, fresh

    def _record(self, fs: FeatureSet, started: float | None) -> FeatureSet:
        self.results.append(fs)
        if started is not None:
            self.results.computed.add(fs.ref)
            self.results.seconds[fs.ref] = time.perf_counter() - started
        return fs

    def _complete_table(self, fs: FeatureSet, rows: int) -> FeatureSet:
        with connect(self.ws) as con:
            done = registry.mark_complete(con, fs, rows)
            register_views(con, self.ws)
        return done

    def _video_set(self, name: str, params: dict, inputs: list, columns: list[str],
                   fill: Callable[[VideoTableWriter], None], **meta) -> FeatureSet:
        """Register a video-level set; unless up to date, stream it through ``fill(writer)``."""
        fs, fresh = self._register(name, "video", params, inputs, dims=len(columns), **meta)
        if fresh:
            return self._record(fs, None)
        started = time.perf_counter()
        with VideoTableWriter(self.ws.root / fs.location, columns, int_columns=["n_valid"]) as writer:
            fill(writer)
        return self._record(self._complete_table(fs, writer.rows), started)

    def _source(self, name: str) -> FrameRows:
        with connect(self.ws) as con:
            fs = registry.get(con, name)
            if fs.kind != "frames":
                raise InputError(f"feature set {fs.ref} is video-level; --source takes frame-level sets "
                                 "(embeddings written by `jungle featurize`)")
            return load_frame_rows(con, fs)

    def _optional_source(self, name: str) -> FrameRows | None:
        """The frame-level set ``name`` when it has a complete version, else None."""
        with connect(self.ws, read_only=True) as con:
            present = registry.latest(con, name) is not None
        return self._source(name) if present else None

    def _is_detections(self, source: FrameRows) -> bool:
        return "embedding" not in arrays.open_group(self.ws, source.fs)

    def plan(self):
        if self._plan is None:
            with connect(self.ws) as con:
                self._plan = load_fold_plan(con, self.config.fold_scheme)
        return self._plan

    # ------------------------------------------------------------------ the sets
    def meta(self) -> FeatureSet:
        if self._meta is not None:
            return self._meta
        with connect(self.ws) as con:
            inputs = [{"name": "videos", "fingerprint": videos_fingerprint(con)}]
        params = {"kind": "meta", **self.config.meta.model_dump()}
        fs, fresh = self._register("meta", "video", params, inputs)
        if fresh:
            self._meta = self._record(fs, None)
            return self._meta
        started = time.perf_counter()
        with connect(self.ws) as con:
            table = metadata_features(con, self.config.meta)
            done = registry.write_video_table(self.ws, con, fs, table)
        self._meta = self._record(done, started)
        return self._meta

    def frame_head(self, source: FrameRows) -> FrameRows:
        """The frame probabilities of ``source`` (made now unless up to date; with ``crops="bag"`` the
        source's head also predicts its crop set, whose probabilities are kept for :meth:`stats`)."""
        if source.fs.name in self._probs:
            return self._probs[source.fs.name]
        plan = self.plan()
        head = self.config.frame_head
        # "own" is how every frame head was trained before crops existed: its sets keep their versions
        params = {"kind": "frame-head", **head.model_dump(exclude={"crops"} if head.crops == "own" else set())}
        crops = None
        if head.crops == "bag" and self.config.crops and not source.fs.name.startswith(CROPS_PREFIX):
            crops = self._optional_source(CROPS_PREFIX + source.fs.name)
        inputs = [source.lineage()] + ([crops.lineage()] if crops is not None else []) + \
            [{"name": "labels", **plan.lineage}]
        detector = self._source(head.detector) if head.detector else None   # detector scores as an input
        if detector is not None:
            inputs.append(detector.lineage())
        made = [(part, *self._register(set_name("frame-head", part.fs.name), "frames", params, inputs,
                                         fold_scheme=plan.scheme, dims=len(plan.classes), sampling=part.fs.sampling,
                                         encoder=part.fs.encoder))
                for part in ([source] if crops is None else [source, crops])]
        if all(fresh for _, _, fresh in made):
            sets = [self._record(fs, None) for _, fs, _ in made]
        else:
            started = time.perf_counter()
            with self._bar(None, f"frame head {source.fs.name}", "batch") as update:
                ensemble = fit_frame_head(self.ws, source, plan, head, progress=lambda: update(1), detector=detector,
                                          crops=crops)
            with self._bar(len(source), f"frame probs {source.fs.name}") as update:
                written = write_frame_probs(self.ws, source, made[0][1], ensemble, plan, head, progress=update,
                                            detector=detector, crops=crops,
                                            crops_target=made[1][1] if crops is not None else None)
            sets = [self._record(self._finish_frames(fs, rows), started) for (_, fs, _), rows in zip(made, written)]
        with connect(self.ws) as con:
            for part, fs in zip([source] + ([crops] if crops is not None else []), sets):
                self._probs[part.fs.name] = load_frame_rows(con, fs)
        return self._probs[source.fs.name]

    def _finish_frames(self, fs: FeatureSet, written: dict[str, tuple[int, int]]) -> FeatureSet:
        import polars as pl

        rows = pl.DataFrame({"video_id": list(written), "row": [r for r, _ in written.values()],
                             "n_valid": [n for _, n in written.values()]},
                            schema={"video_id": pl.String, "row": pl.Int32, "n_valid": pl.Int32})
        with connect(self.ws) as con:
            with transaction(con):
                return replace_done_rows(con, fs, rows)

    def stats(self, source: FrameRows) -> FeatureSet:
        probs = self.frame_head(source)
        classes = self.plan().classes
        columns = ["n_valid", *prob_stat_columns(classes, self.config.stats.stats, self.config.stats.bins)]
        params = {"kind": "stats", **self.config.stats.model_dump()}

        def fill(writer):
            with self._bar(len(probs), f"stats {probs.fs.name}") as update:
                write_prob_stats(self.ws, probs, writer, self.config.stats, self.config.videos_per_block, update)

        return self._video_set(set_name("stats", source.fs.name), params, [probs.lineage()], columns, fill,
                               fold_scheme=probs.fs.fold_scheme, encoder=source.fs.encoder,
                               sampling=source.fs.sampling)

    def minmax(self, source: FrameRows) -> list[FeatureSet]:
        group = arrays.open_group(self.ws, source.fs)
        made = []
        for array, name, stage_dims in (("embedding", set_name("minmax", source.fs.name), None),
                                        ("stages", set_name("minmax", source.fs.name, 1), source.fs.stage_dims)):
            if array not in group or (array == "stages" and not self.config.pooling.stages):
                continue
            pools = self.config.pooling.pools
            columns = ["n_valid", *pool_columns(group[array].shape[-1], pools, stage_dims)]
            params = {"kind": "minmax", "array": array, "pools": list(pools)}

            def fill(writer, array=array):
                with self._bar(len(source), f"{array} pooling {source.fs.name}") as update:
                    write_pooled(self.ws, source, writer, array, pools, self.config.videos_per_block, update)

            made.append(self._video_set(name, params, [source.lineage()], columns, fill,
                                        encoder=source.fs.encoder, sampling=source.fs.sampling))
        return made

    def attention(self, sources: list[FrameRows]) -> list[FeatureSet]:
        plan = self.plan()
        config = self.config.attention
        inputs = [s.lineage() for s in sources] + [{"name": "labels", **plan.lineage}]
        meta = None
        if config.with_meta:
            meta_fs = self.meta()
            inputs.append({"name": meta_fs.name, "version": meta_fs.version})
            meta = meta_inputs(registry.read_video_table(self.ws, meta_fs))
        tag = "_".join(s.fs.name for s in sources)
        params = {"kind": "attention", **config.model_dump()}
        extra = {"fold_scheme": plan.scheme, "encoder": sources[0].fs.encoder, "sampling": sources[0].fs.sampling}
        prob_columns = [class_slug(c) for c in plan.classes]
        probs_fs, probs_fresh = self._register(set_name("attention", tag), "video", params, inputs,
                                               dims=len(prob_columns), **extra)
        group_dims = _dims(self.ws, sources, config.embedding)
        vector_columns = [f"v{j:04d}" for j in range(group_dims)]
        vector_fs, vector_fresh = self._register(set_name("attention", tag, 1), "video", params, inputs,
                                                 dims=len(vector_columns), **extra)
        if probs_fresh and vector_fresh:
            return [self._record(probs_fs, None), self._record(vector_fs, None)]
        started = time.perf_counter()
        with self._bar(None, f"attention {tag}", "batch") as update:
            ensemble = fit_attention(self.ws, sources, plan, config, meta, progress=lambda: update(1))
        with VideoTableWriter(self.ws.root / probs_fs.location, prob_columns) as probs_out, \
                VideoTableWriter(self.ws.root / vector_fs.location, vector_columns) as vector_out:
            for video_ids, probs, vectors, _ in predict_attention(self.ws, sources, ensemble, plan, config, meta):
                probs_out.write(video_ids, probs)
                vector_out.write(video_ids, vectors)
        done = [self._complete_table(probs_fs, probs_out.rows), self._complete_table(vector_fs, vector_out.rows)]
        return [self._record(fs, started) for fs in done]

    def detections(self, source: FrameRows) -> FeatureSet:
        kind = source_kind(arrays.open_group(self.ws, source.fs))
        names, config = DETECTION_ARRAYS[kind], self.config.detections
        params = {"kind": "detector", "source_kind": kind, **config.model_dump()}

        def fill(writer):
            with self._bar(len(source), f"detections {source.fs.name}") as update:
                for block in iter_frame_blocks(self.ws, [source], names[0], extras=names[1:],
                                               videos_per_block=self.config.videos_per_block):
                    columns = detection_columns(kind, block, config.threshold, config.levels)
                    writer.write(block.video_ids, np.column_stack([block.valid.sum(axis=1), *columns.values()]))
                    update(len(block))

        columns = ["n_valid", *detection_column_names(kind, config.threshold, config.levels)]
        return self._video_set(set_name("detector", source.fs.name), params, [source.lineage()], columns, fill,
                               encoder=source.fs.encoder, weights_sha256=source.fs.weights_sha256,
                               sampling=source.fs.sampling)

    def zero_shot(self, source: FrameRows) -> FeatureSet:
        """The zero-shot evidence of an embedding set: its ImageNet head on the crop set's images (the
        whole frames without one), with the ``boxes`` set (else a detector pass's set) beside them."""
        crops = self._optional_source(CROPS_PREFIX + source.fs.name) if self.config.crops else None
        images = crops or source
        boxes = self._optional_source(BOXES_SOURCE) if self.config.boxes else None
        boxes_kind = "boxes" if boxes is not None else None
        if boxes is None:
            boxes = self._optional_source(self.config.zero_shot.detector_set)
            boxes_kind = "detector" if boxes is not None else None
        setup = zero_shot_setup(self.ws, source.fs, boxes.fs if boxes is not None else None, crops is not None,
                                self.config.zero_shot.class_map)
        params = {"kind": "zero-shot", **setup.lineage()}
        inputs = [images.lineage()] + ([boxes.lineage()] if boxes is not None else [])

        def fill(writer):
            with self._bar(len(images), f"zero-shot {images.fs.name}") as update:
                for video_ids, columns in iter_evidence(self.ws, images, boxes, setup, boxes_kind,
                                                        self.config.videos_per_block):
                    writer.write(video_ids, np.column_stack([columns[c] for c in writer.columns]))
                    update(len(video_ids))

        return self._video_set(set_name("zero-shot", source.fs.name), params, inputs,
                               evidence_columns(setup.class_map.classes), fill, encoder=source.fs.encoder,
                               weights_sha256=source.fs.weights_sha256, sampling=source.fs.sampling)

    # ------------------------------------------------------------------ the run
    def run(self) -> AggregateResults:
        with torch_threads(self.config.threads):
            return self._run()

    def _run(self) -> AggregateResults:
        kinds = set(self.config.kinds)
        if "meta" in kinds:
            self.meta()
        if not kinds & FRAME_KINDS:  # meta alone reads no frame-level set: it needs none to exist
            return self.results
        given = [self._source(name) for name in self.config.sources]
        detections = [s for s in given if self._is_detections(s)]
        embeddings = [s for s in given if not self._is_detections(s)]
        groups = [embeddings]                                    # attention reads each group side by side
        if self.config.crops and kinds & EMBEDDING_KINDS:
            crops = [self._optional_source(CROPS_PREFIX + s.fs.name) for s in embeddings
                     if not s.fs.name.startswith(CROPS_PREFIX)]
            groups.append([c for c in crops if c is not None])
        if self.config.boxes and "detector" in kinds and BOXES_SOURCE not in [s.fs.name for s in detections]:
            boxes = self._optional_source(BOXES_SOURCE)
            detections += [boxes] if boxes is not None else []
        for group in groups:
            for source in group:
                if "stats" in kinds:
                    self.stats(source)
                elif "frame-head" in kinds:
                    self.frame_head(source)
                if "minmax" in kinds:
                    self.minmax(source)
            if "attention" in kinds and group:
                self.attention(group)
        if "detector" in kinds:
            for source in detections:
                self.detections(source)
        if "zero-shot" in kinds:
            for source in embeddings:
                if not source.fs.name.startswith(CROPS_PREFIX):
                    self.zero_shot(source)
        return self.results


def _dims(workspace: Workspace, sources: list[FrameRows], array: str) -> int:
    return sum(arrays.open_group(workspace, s.fs)[array].shape[-1] for s in sources)


def aggregate(workspace: Workspace, config: AggregateConfig | None = None, progress: bool = False) -> AggregateResults:
    """Build (or find up to date) the video-level feature sets ``config`` asks for.

    Args:
        workspace: the workspace (with videos; labels and folds for the learned kinds; the
            frame-level ``config.sources``).
        config: what to build (default: every kind from ``lite0``).
        progress: show progress bars on stderr (when it is a terminal).

    Returns:
        The feature sets, in build order: a ``list[FeatureSet]`` whose ``computed`` attribute
        names those computed now (the rest were up to date and left untouched).

    Raises:
        KeyError: a source set does not exist (the message lists the known ones).
        LookupError: learned kinds without classes, labels or the fold scheme.
        ValueError: a source is not a frame-level set.
    """
    return _Run(workspace, config or AggregateConfig(), progress).run()

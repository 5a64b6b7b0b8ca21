"""The detector pass of featurize: MegadetectorLite over every video, then its video-level features.

:func:`detect` runs a :class:`~jungle.features.models.detector.DetectorModel` through the featurize
runner (:func:`jungle.features.featurize.runner.run_models`) as a pass of its own, with its own frame
sampling (default ``fps:4``, as zamba's configs), on frames at their native size. The per-frame
arrays (``score``, ``n_boxes``, ``box_area``, ``box_cx``, ``box_cy`` + ``valid``/``timestamps``/
``frame_index``) land in the frame-level set named after the weights (``megadetector_lite``),
resumable and shardable like any other. Once that set is complete, :func:`write_detection_table`
summarises it with :func:`~jungle.features.models.detector.aggregate_detections` into the video-level set
``det_<name>`` (``det_megadetector_lite``: ``det_max``, ``det_mean``, ``det_frac_over_50``,
``det_longest_run``, ``det_first_s``, ...), which every recipe that stacks video-level sets (``all``)
picks up. Unchanged work is skipped: the same detector settings, sampling and videos give the same
versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from ...config import JungleConfig
from ...runtime import available_cores, torch_threads
from ..models.detector import DETECTION_LEVELS, DetectorConfig, DetectorModel, aggregate_detections, load_detector
from ..video.sampling import parse_sampling
from .config import Shard, default_workers
from .decode_pool import DecodePool
from .runner import FeaturizeSummary, run_models

__all__ = ["DetectConfig", "DetectSummary", "detect", "write_detection_table", "detection_table_name"]


class DetectConfig(JungleConfig):
    """The detector pass: which detector, which frames, how to run it.

    Attributes:
        detector: detector settings (weights, input size, thresholds, bottom crop).
        frames: frame sampling of the detector pass (``fps:4``: zamba's rate, up to 15 s).
        name: frame-level feature-set name (default: the weights' name, ``megadetector_lite``).
        batch_size: frames handed to the detector at once (it runs them ``detector.batch_size`` at a time).
        workers: decode worker processes (0: decode here; None: one per 2 cores).
        block: videos per Zarr chunk (new sets only).
        torch_threads: intra-op threads of the forward pass (None: all cores).
        threshold: score that counts as a detected frame in the video-level features.
    """

    detector: DetectorConfig = DetectorConfig()
    frames: str = "fps:4"
    name: str | None = None
    batch_size: int = Field(default=32, ge=1)
    workers: int | None = Field(default=None, ge=0)
    block: int = Field(default=64, ge=1)
    torch_threads: int | None = Field(default=None, ge=1)
    threshold: float = Field(default=0.25, gt=0.0, le=1.0)

    @field_validator("frames")
    @classmethod
    def _parseable(cls, value: str) -> str:
        sampling = parse_sampling(value)
        if getattr(sampling, "needs_pixels", False):
            raise ValueError(f"the detector pass needs frames chosen without a model (uniform:N, fps:F, ...), "
                             f"not {value!r}")
        return sampling.spec()


@dataclass
class DetectSummary:
    """What :func:`detect` did: the runner's summary and the video-level set (None while the
    frame-level set is incomplete, e.g. other shards still run)."""

    run: FeaturizeSummary
    table: object | None = None
    table_created: bool = False

    def rows(self) -> tuple[list[str], list[tuple]]:
        columns, rows = self.run.rows()
        if self.table is not None:
            rows = rows + [(self.table.name, self.table.version, self.table.row_count, 0, 0, 0,
                            "complete" if self.table_created else "unchanged")]
        return columns, rows


def detection_table_name(frame_set_name: str) -> str:
    """The video-level set summarising a detector frame-level set: ``det_<name>``."""
    return f"det_{frame_set_name}"


def write_detection_table(workspace, frame_set, threshold: float = 0.25,
                          levels: tuple[float, ...] = DETECTION_LEVELS) -> tuple[object, bool]:
    """Summarise the done rows of a detector frame-level set into the video-level set ``det_<name>``.

    Args:
        workspace: the workspace.
        frame_set: the (complete) detector frame-level :class:`~jungle.store.registry.FeatureSet`.
        threshold: score that counts as a detected frame.
        levels: scores whose frame counts and fractions become columns.

    Returns:
        (video-level feature set, created): ``created`` False when the same settings and rows were
        already summarised (nothing is rewritten).
    """
    import polars as pl

    from ...store import registry
    from ...store.db import connect

    from ..aggregates.inputs import iter_frame_blocks, load_frame_rows

    params = {"threshold": threshold, "levels": list(levels), "source": frame_set.name}
    with connect(workspace) as con:
        source = load_frame_rows(con, frame_set)
        fs, created = registry.register(con, detection_table_name(frame_set.name), "video", params,
                                        [source.lineage()], encoder=frame_set.encoder,
                                        weights_sha256=frame_set.weights_sha256, sampling=frame_set.sampling)
    if fs.status == "complete":
        return fs, False
    parts: list[pl.DataFrame] = []
    if len(source):
        for block in iter_frame_blocks(workspace, [source], "score", extras=("n_boxes", "box_area", "timestamps")):
            columns = aggregate_detections({"score": block.values, **block.extras}, block.valid,
                                           block.extras["timestamps"], threshold=threshold, levels=levels)
            parts.append(pl.DataFrame({"video_id": list(block.video_ids), **columns}))
    table = pl.concat(parts) if parts else pl.DataFrame({"video_id": pl.Series([], dtype=pl.Utf8)})
    with connect(workspace) as con:
        fs = registry.write_video_table(workspace, con, fs, table)
    return fs, True


def detect(workspace, config: DetectConfig | None = None, shard: Shard | str | None = None,
           progress: bool = True) -> DetectSummary:
    """Run the detector over every ingested video, then write its video-level features.

    Args:
        workspace: a :class:`jungle.store.workspace.Workspace`.
        config: detector and run settings (default: MegadetectorLite at 640x640 on ``fps:4`` frames).
        shard: only this shard's blocks (``Shard`` or "I/N"); the video-level set is written by
            the run that finds the frame-level set complete.
        progress: show a progress bar on a terminal.

    Returns:
        A :class:`DetectSummary`.

    Raises:
        WeightsError: the detector's weights are missing or damaged (the message says how to fetch them).
    """
    config = config or DetectConfig()
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    workers = default_workers() if config.workers is None else config.workers
    model = DetectorModel(load_detector(config.detector), name=config.name)  # checks the weights first
    with torch_threads(config.torch_threads or available_cores()), DecodePool(workers) as pool:
        run = run_models(workspace, [model], parse_sampling(config.frames), shard=shard,
                         batch_size=config.batch_size, block=config.block, decode_threads=1 if workers else 0,
                         progress=progress, pool=pool)
    summary = DetectSummary(run)
    if run.sets[0].complete:
        from ...store import registry
        from ...store.db import connect

        with connect(workspace, read_only=True) as con:
            frame_set = registry.get(con, run.sets[0].name, run.sets[0].version)
        summary.table, summary.table_created = write_detection_table(workspace, frame_set, config.threshold)
    return summary

"""The detector pass of featurize: MegadetectorLite over every video at its own frame rate.

:func:`detect` runs a :class:`~jungle.features.models.detector.DetectorModel` through the featurize
runner (:func:`jungle.features.featurize.runner.run_models`) as a pass of its own, with its own frame
sampling (default ``fps:4``, as zamba's configs), on frames at their native size. The per-frame
arrays (``score``, ``n_boxes``, ``box_area``, ``box_cx``, ``box_cy`` + ``valid``/``timestamps``/
``frame_index``) land in the frame-level set named after the weights (``megadetector_lite``),
resumable and shardable like any other. Its video-level summary (``det_megadetector_lite``) is the
aggregate stage's ``detector`` kind (:mod:`jungle.features.aggregates.detections`), which
``jungle featurize --detector`` runs right after the pass (:func:`jungle.pipeline.featurize_videos`).
Unchanged work is skipped: the same detector settings, sampling and videos give the same versions.

(A featurize run's boxes, :mod:`.crops`, run the same detector on the encoders' own sampled frames
in the same decoding; this pass is for a denser look at every video.)
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from ...config import JungleConfig
from ...runtime import available_cores, torch_threads
from ...store import registry
from ...store.db import connect
from ..models.detector import DetectorConfig, DetectorModel, load_detector
from ..models.weights import weights_path
from ..video.sampling import parse_sampling
from .calibration import calibration_set
from .config import Shard, default_workers
from .decode_pool import DecodePool
from .runner import FeaturizeSummary, run_models

__all__ = ["DetectConfig", "DetectSummary", "detect"]


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
        threshold: score that counts as a detected frame in the video-level features (``det_<name>``).
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
    """What :func:`detect` did: the runner's summary and the frame-level set (None while it is
    incomplete, e.g. other shards still run)."""

    run: FeaturizeSummary
    frame_set: object | None = None

    def rows(self) -> tuple[list[str], list[tuple]]:
        return self.run.rows()


def detect(workspace, config: DetectConfig | None = None, shard: Shard | str | None = None,
           progress: bool = True) -> DetectSummary:
    """Run the detector over every ingested video, then write its video-level features.

    Args:
        workspace: a :class:`jungle.store.workspace.Workspace`.
        config: detector and run settings (default: MegadetectorLite at 640x384 on ``fps:4`` frames).
        shard: only this shard's blocks (``Shard`` or "I/N"); the video-level set is written by
            the run that finds the frame-level set complete.
        progress: show a progress bar on a terminal.

    Returns:
        A :class:`DetectSummary` (``frame_set``: the complete frame-level set, for its video-level summary).

    Raises:
        WeightsError: the detector's weights are missing or damaged (the message says how to fetch them).
    """
    config = config or DetectConfig()
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    workers = default_workers() if config.workers is None else config.workers
    weights_path(config.detector.weights)  # the cache's file, checked now (a loaded detector is kept per process)
    detector = load_detector(config.detector, sample=lambda: calibration_set(workspace))
    model = DetectorModel(detector, name=config.name)
    with torch_threads(config.torch_threads or available_cores()), DecodePool(workers) as pool:
        run = run_models(workspace, [model], parse_sampling(config.frames), shard=shard,
                         batch_size=config.batch_size, block=config.block, decode_threads=1 if workers else 0,
                         progress=progress, pool=pool)
    summary = DetectSummary(run)
    if run.sets[0].complete:
        with connect(workspace, read_only=True) as con:
            summary.frame_set = registry.get(con, run.sets[0].name, run.sets[0].version)
    return summary

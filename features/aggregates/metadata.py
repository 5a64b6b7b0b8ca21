"""Metadata features from the ``videos`` table, and the 2nd place's neighbour features.

Cheap and strong: on Pri-matrix, file size and resolution alone reach ~65% accuracy, and a clip
with an animal moving is larger per second than a blank one. Neighbour features are the
statistics of the clips recorded just before and after at the same camera: a camera triggered
by an animal tends to fire several times in a row, and a blank clip between two busy ones is
suspicious. Everything is one DuckDB query with window functions over (site, captured_at).

Columns (all numeric; NULL where the videos table has no value):

- per clip: ``bytes``, ``log_bytes``, ``bytes_per_second``, ``bit_rate``, ``bits_per_pixel``
  (bit rate / (width x height x fps)), ``width``, ``height``, ``pixels``, ``aspect``, ``fps``,
  ``duration``, ``frames``, ``frames_decodable``, ``has_audio``, ``brightness``, ``is_night``,
  ``colourfulness``, ``motion_energy``, ``hour`` (of the capture time on the camera's clock, fractional);
- per neighbour ``i`` in 1..``neighbours``: ``prev{i}_`` and ``next{i}_`` + ``bytes_per_second``,
  ``brightness``, ``motion_energy``, ``is_night``, ``gap_s`` (seconds between the two clips' capture times);
- per site: ``site_clips``, ``site_position`` (0..1 along the site's timeline), ``site_bps_rank``
  (0..1 rank of bytes per second within the site), and over the ``window`` clips on each side
  (the clip included): ``window_bps_mean``, ``window_brightness_mean``, ``window_motion_mean``,
  ``bps_vs_window`` (the clip's bytes per second / the window mean).
"""

from __future__ import annotations

from pydantic import Field

from ...config import JungleConfig
from ...store.rows import relation_fingerprint
from ...store.videos import readable_videos

__all__ = ["MetadataConfig", "metadata_query", "metadata_features", "videos_fingerprint", "NEIGHBOUR_COLUMNS"]

NEIGHBOUR_COLUMNS: tuple[str, ...] = ("bytes_per_second", "brightness", "motion_energy", "is_night")

_CLIP = """
    video_id, site, captured_at, captured_at + to_minutes(coalesce(utc_offset_minutes, 0)) AS clock, bytes,
    bytes_per_second, bit_rate, width, height, fps, duration, frames,
    frames_decodable, CAST(has_audio AS TINYINT) AS has_audio, brightness, CAST(is_night AS TINYINT) AS is_night,
    colourfulness, motion_energy"""


class MetadataConfig(JungleConfig):
    """Which neighbour features to make.

    Attributes:
        neighbours: clips before and after (at the same site, by capture time) whose statistics become columns.
        window: clips on each side for the site-window means.
    """

    neighbours: int = Field(1, ge=0, le=10)
    window: int = Field(5, ge=1, le=1000)


def videos_fingerprint(con) -> str:
    """A digest of the columns of the readable videos the metadata features depend on (for lineage)."""
    return relation_fingerprint(readable_videos(con), "videos", f"SELECT {_CLIP} FROM videos")


def metadata_query(config: MetadataConfig = MetadataConfig()) -> str:
    """The SQL that computes the metadata feature table from ``videos`` (the readable videos,
    :func:`jungle.store.videos.readable_videos`): one row per video."""
    neighbour = []
    for i in range(1, config.neighbours + 1):
        for direction, fn in (("prev", "lag"), ("next", "lead")):
            for column in NEIGHBOUR_COLUMNS:
                neighbour.append(f"{fn}({column}, {i}) OVER site_time AS {direction}{i}_{column}")
            gap = (f"epoch(captured_at - lag(captured_at, {i}) OVER site_time)" if fn == "lag"
                   else f"epoch(lead(captured_at, {i}) OVER site_time - captured_at)")
            neighbour.append(f"{gap} AS {direction}{i}_gap_s")
    w = config.window
    window = f"site_time ROWS BETWEEN {w} PRECEDING AND {w} FOLLOWING"
    neighbour_sql = "".join(f",\n        {n}" for n in neighbour)
    return f"""
    WITH clip AS (SELECT {_CLIP} FROM videos),
    ordered AS (
      SELECT *,
        count(*) OVER (PARTITION BY site) AS site_clips,
        percent_rank() OVER site_time AS site_position,
        percent_rank() OVER (PARTITION BY site ORDER BY bytes_per_second) AS site_bps_rank,
        avg(bytes_per_second) OVER ({window}) AS window_bps_mean,
        avg(brightness) OVER ({window}) AS window_brightness_mean,
        avg(motion_energy) OVER ({window}) AS window_motion_mean{neighbour_sql}
      FROM clip
      WINDOW site_time AS (PARTITION BY site ORDER BY captured_at, video_id)
    )
    SELECT
      video_id,
      bytes, ln(nullif(bytes, 0)) AS log_bytes, bytes_per_second, bit_rate,
      bit_rate / nullif(width * height * fps, 0) AS bits_per_pixel,
      width, height, width * height AS pixels, width / nullif(height, 0) AS aspect,
      fps, duration, frames, frames_decodable, has_audio, brightness, is_night, colourfulness, motion_energy,
      hour(clock) + minute(clock) / 60.0 AS hour,
      * EXCLUDE (video_id, site, captured_at, clock, bytes, bytes_per_second, bit_rate, width, height, fps,
                 duration, frames, frames_decodable, has_audio, brightness, is_night, colourfulness, motion_energy),
      bytes_per_second / nullif(window_bps_mean, 0) AS bps_vs_window
    FROM ordered
    ORDER BY video_id"""


def metadata_features(con, config: MetadataConfig = MetadataConfig()):
    """The metadata feature table (polars, keyed by ``video_id``) of the workspace's readable videos."""
    return readable_videos(con).query("videos", metadata_query(config)).pl()

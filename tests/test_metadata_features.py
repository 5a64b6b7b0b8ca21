"""Metadata features and the neighbour features (clips before/after at the same camera)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _aggregate_helpers import make_labelled_workspace
from jungle.features.aggregates.aggregate import AggregateConfig, aggregate
from jungle.features.aggregates.metadata import MetadataConfig, metadata_features
from jungle.store import registry
from jungle.store.db import connect


@pytest.fixture(scope="module")
def meta_ws(tmp_path_factory):
    from jungle.store.workspace import Workspace

    ws = Workspace.resolve(tmp_path_factory.mktemp("meta") / "ws")
    make_labelled_workspace(ws, n_videos=30, n_frames=4, dims=4, stage_dims=None)
    with connect(ws) as con:
        con.execute("UPDATE videos SET status = 'error', error = 'moov atom not found' WHERE video_id = "
                    "(SELECT min(video_id) FROM videos)")
        videos = con.sql("SELECT * FROM videos WHERE status = 'ok'").pl()
    return ws, videos


def _by_site(videos):
    rows = videos.sort(["site", "captured_at", "video_id"]).to_dicts()
    sites: dict[str, list[dict]] = {}
    for row in rows:
        sites.setdefault(row["site"], []).append(row)
    return sites


def _none_or(value, fn=float):
    return None if value is None else fn(value)


def test_clip_columns_come_from_the_videos_table(meta_ws):
    ws, videos = meta_ws
    with connect(ws) as con:
        table = metadata_features(con)
    assert table.height == videos.height and table["video_id"].is_unique().all()
    got = {r["video_id"]: r for r in table.to_dicts()}
    for video in videos.to_dicts():
        row = got[video["video_id"]]
        for column in ("bytes", "bytes_per_second", "width", "height", "fps", "duration", "bit_rate", "brightness",
                       "colourfulness", "motion_energy"):
            assert row[column] == video[column], column
        assert row["is_night"] == int(video["is_night"]) and row["has_audio"] == int(video["has_audio"])
        assert row["pixels"] == video["width"] * video["height"]
        assert row["aspect"] == pytest.approx(video["width"] / video["height"])
        assert row["log_bytes"] == pytest.approx(math.log(video["bytes"]))
        assert row["bits_per_pixel"] == pytest.approx(video["bit_rate"] / (video["width"] * video["height"] * 24.0))
        assert row["hour"] == pytest.approx(video["captured_at"].hour + video["captured_at"].minute / 60)


def test_neighbour_columns_are_the_clips_before_and_after_at_the_same_site(meta_ws):
    ws, videos = meta_ws
    with connect(ws) as con:
        table = metadata_features(con, MetadataConfig(neighbours=2, window=2))
    got = {r["video_id"]: r for r in table.to_dicts()}
    for site, clips in _by_site(videos).items():
        for i, clip in enumerate(clips):
            row = got[clip["video_id"]]
            assert row["site_clips"] == len(clips)
            assert row["site_position"] == pytest.approx(i / (len(clips) - 1))
            for offset in (1, 2):
                for direction, j in (("prev", i - offset), ("next", i + offset)):
                    other = clips[j] if 0 <= j < len(clips) else None
                    for column in ("bytes_per_second", "brightness", "motion_energy"):
                        expected = None if other is None else other[column]
                        assert row[f"{direction}{offset}_{column}"] == expected, (site, i, direction, column)
                    gap = None if other is None else abs((other["captured_at"] - clip["captured_at"]).total_seconds())
                    assert row[f"{direction}{offset}_gap_s"] == gap
            window = clips[max(0, i - 2): i + 3]
            mean_bps = np.mean([c["bytes_per_second"] for c in window])
            assert row["window_bps_mean"] == pytest.approx(mean_bps)
            assert row["bps_vs_window"] == pytest.approx(clip["bytes_per_second"] / mean_bps)
            motion = [c["motion_energy"] for c in window if c["motion_energy"] is not None]
            assert row["window_motion_mean"] == (pytest.approx(np.mean(motion)) if motion else None)
            ranks = sorted(c["bytes_per_second"] for c in clips)
            assert row["site_bps_rank"] == pytest.approx(ranks.index(clip["bytes_per_second"]) / (len(clips) - 1))


def test_meta_set_is_versioned_by_the_videos_it_read(meta_ws):
    ws, videos = meta_ws
    first = aggregate(ws, AggregateConfig(kinds=("meta",)))[0]
    assert first.name == "meta" and first.kind == "video" and first.row_count == videos.height
    assert list(first.inputs[0]) == ["name", "fingerprint"] and first.config["neighbours"] == 1
    again = aggregate(ws, AggregateConfig(kinds=("meta",)))
    assert again[0].version == first.version and not again.computed
    with connect(ws) as con:
        con.execute("UPDATE videos SET brightness = brightness + 1 WHERE video_id = ?", [videos["video_id"][0]])
    changed = aggregate(ws, AggregateConfig(kinds=("meta",)))[0]
    assert changed.version == first.version + 1
    other_params = aggregate(ws, AggregateConfig(kinds=("meta",), meta=MetadataConfig(neighbours=3)))[0]
    assert other_params.version == first.version + 2
    table = registry.read_video_table(ws, other_params)
    assert "prev3_gap_s" in table.columns and "next3_is_night" in table.columns

"""Frame sampling strategies: parsing, the frames they choose on real clips, short clips and the validity mask."""

from __future__ import annotations

import numpy as np
import pytest

from jungle.features.video.sampling import (
    WINNER1_INDICES, Fps, Indices, Motion, Uniform, parse_sampling, pick_spread, sample_frames,
)
from jungle.features.video.decode import index_video

from _errors import says
from _features_helpers import ZAMBA, frame_number, write_clip

CAT = "camera_trap/ACP0006s6f-small-cat.mp4"
SHORT = ZAMBA / "dzanga_sangha/T10/Second_visit_T10/Second_visit_T10C2/01170043.MP4"  # 6 frames


@pytest.mark.parametrize("text, expected, slots", [
    ("uniform:32", Uniform(n=32), 32),
    ("fps:3", Fps(fps=3), 45),
    ("fps:2,seconds=30", Fps(fps=2, seconds=30), 60),
    ("indices:2,8,12", Indices(indices=(2, 8, 12)), 3),
    ("[2, 8, 12]", Indices(indices=(2, 8, 12)), 3),
    ("motion:4", Motion(n=4), 4),
])
def test_parse_and_spec_round_trip(text, expected, slots):
    parsed = parse_sampling(text)
    assert parsed == expected and parsed.slots == slots
    assert parse_sampling(parsed.spec()) == parsed
    assert parsed.key() == expected.key() and len(parsed.key()) == 12


def test_winner1_is_the_first_place_frame_list():
    winner = parse_sampling("winner1")
    assert winner.indices == WINNER1_INDICES
    assert winner.slots == 32 and winner.indices[:5] == (2, 8, 12, 18, 24) and winner.indices[-1] == 24 + 12 * 27
    assert winner.spec() == "winner1"


@pytest.mark.parametrize("text, facts", [
    ("bogus:3", ("'bogus:3'", "detector:…, fps:…, indices:…, motion:…, uniform:…, winner1")),
    ("uniform:x", ("'uniform:x'", "whole number", "'x'")),
    ("uniform:0", ("'uniform:0'", "at least 1")),
    ("indices:3,3", ("frame indices repeat",)),
    ("fps:3,speed", ("'speed'", "'fps:3,speed'", "key=value")),
])
def test_bad_sampling_strings_say_what_is_accepted(text, facts):
    with pytest.raises(ValueError) as caught:
        parse_sampling(text)
    says(str(caught.value), *facts)


def test_uniform_and_fps_choose_frames_of_a_real_clip(shared_media):
    index = index_video(shared_media / CAT)  # 24 fps, 360 frames
    assert Uniform(n=5).choose(index).tolist() == [0, 90, 180, 269, 359]
    assert Fps(fps=3).choose(index).tolist() == list(range(0, 360, 8))
    assert Indices(indices=WINNER1_INDICES).choose(index).tolist() == list(WINNER1_INDICES)


def test_short_clip_gives_what_it_has_and_a_validity_mask(media):
    sampled = sample_frames(media / SHORT, Uniform(n=8), (32, 32))
    assert sampled.n_frames == 6 and sampled.n_valid == 6
    assert sampled.valid.tolist() == [True] * 6 + [False] * 2
    assert sampled.frame_index.tolist() == [0, 1, 2, 3, 4, 5, -1, -1]
    assert np.isnan(sampled.timestamps[6:]).all() and not np.isnan(sampled.timestamps[:6]).any()
    assert sampled.frames.images.shape == (6, 32, 32, 3)  # no zero-filled frames presented as data


def test_explicit_indices_past_the_end_are_invalid_slots(media):
    sampled = sample_frames(media / SHORT, parse_sampling("winner1"), (16, 16))
    assert sampled.frame_index[:2].tolist() == [2, -1] and sampled.n_valid == 1


def test_motion_finds_the_frames_where_something_appears(tmp_path):
    import av

    path = tmp_path / "static.mp4"
    rng = np.random.default_rng(1)
    background = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(48):
            image = background.copy()
            if 8 <= i < 12 or 32 <= i < 36:  # an "animal" passes twice, for half a second
                image[10:30, 20:40] = 250
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    chosen = Motion(n=2).choose(index_video(path))
    assert len(chosen) == 2 and 8 <= chosen[0] <= 14 and 32 <= chosen[1] <= 38, chosen


def test_motion_on_the_real_clip_finds_the_cat_leaving(shared_media):
    chosen = Motion(n=4).choose(index_video(shared_media / CAT))  # the cat leaves at about 9 s (frame 216)
    assert len(chosen) == 4 and any(205 <= i <= 240 for i in chosen), chosen


def test_pick_spread_keeps_picks_apart_and_fills_up():
    scores = np.array([0, 9, 8.9, 0, 0, 0, 0, 0, 5, 0], dtype=float)  # picks kept 10 // 4 = 2 apart
    assert pick_spread(scores, 2).tolist() == [1, 8]
    assert pick_spread(scores, 12).tolist() == list(range(10))


def test_sampled_frames_are_the_frames_asked_for(tmp_path):
    path = write_clip(tmp_path / "numbered.mp4", frames=40, gop=10)
    sampled = sample_frames(path, Uniform(n=4), (64, 48))
    assert [frame_number(im) for im in sampled.frames.images] == sampled.frame_index.tolist() == [0, 13, 26, 39]

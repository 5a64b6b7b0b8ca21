"""Video reading on real clips (several codecs and containers) and on clips generated with PyAV."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from jungle.features.video.decode import VideoReadError, index_video, iter_frames, plan_decode, read_frames, split_plan

from _features_helpers import ZAMBA, frame_number, write_clip

CAT = "camera_trap/ACP0006s6f-small-cat.mp4"
CUT_SHORT = "other_video/cut_short_PICT0265.avi"  # the first half of a zamba AVI: the header claims 61 frames
#: (media folder fixture, path): ``media`` is the committed set, ``shared_media`` ../shared/media (skips without it)
REAL_CLIPS = [
    ("shared_media", CAT),  # H.264 MP4 720x404
    ("media", ZAMBA / "chimpandsee/Trip_5/card 1.2_location/PICT0074.ASF"),  # MS-MPEG4 ASF, space
    ("media", ZAMBA / "noemie/Videos_All/Taï_T124/Taï_cam61_687002_647212_20161106/f4636736.avi"),  # MPEG-4 AVI, Taï
    ("media", ZAMBA / "savanna/Grumeti_Tanzania/G41_check2/09100029_Eland.MP4"),  # H.264 MP4, tiny
    ("media", CUT_SHORT),  # MPEG-4 AVI, cut short
    ("shared_media", "other_video/opencv_vtest_static_cam_people.avi"),  # MS-MPEG4 AVI 768x576
]


@pytest.mark.parametrize("folder, relpath", REAL_CLIPS, ids=lambda p: str(p).rsplit("/", 1)[-1])
def test_real_clips_decode_same_frames_by_seeking_skipping_and_counting(request, folder, relpath):
    path = request.getfixturevalue(folder) / relpath
    index = index_video(path)
    assert index.n_frames > 0 and index.fps > 0
    wanted = [0, index.n_frames // 3, index.n_frames // 3 + 1, index.n_frames - 1, index.n_frames + 5]
    counted = read_frames(path, wanted, (48, 32), method="count")  # every frame decoded: the reference
    assert counted.method == "count"
    assert counted.indices.tolist() == wanted[:4]  # the index past the end is simply absent
    assert counted.images.shape == (4, 32, 48, 3) and counted.images.dtype == np.uint8
    for method in ("seek", "sequential", "auto"):
        other = read_frames(path, wanted, (48, 32), method=method)
        assert other.indices.tolist() == wanted[:4]
        assert np.array_equal(counted.images, other.images), method
        np.testing.assert_allclose(counted.timestamps, other.timestamps)
    assert counted.timestamps[0] == 0.0 and np.all(np.diff(counted.timestamps) > 0)
    assert counted.images.std() > 1  # real pixels, not a blank frame


def test_full_size_frames_and_timestamps_of_the_competition_clip(shared_media):
    frames = read_frames(shared_media / CAT, [0, 24, 359])
    assert frames.images.shape == (3, 404, 720, 3)
    np.testing.assert_allclose(frames.timestamps, [0.0, 1.0, 359 / 24])
    assert frames.n_frames == 360


@pytest.mark.parametrize("folder, relpath, claimed, decodable", [
    ("media", CUT_SHORT, 61, 25),  # tests/media/LICENSES.md
    ("shared_media", "other_video/opencv_tree_foliage_hand.avi", 444, 68),  # ../shared/media/README.md
], ids=["cut_short", "opencv_tree"])
def test_header_that_lies_about_length_is_ignored(request, folder, relpath, claimed, decodable):
    path = request.getfixturevalue(folder) / relpath
    index = index_video(path)
    assert (index.frames_claimed, index.n_frames) == (claimed, decodable)
    frames = read_frames(path, [0, decodable - 1, decodable, claimed // 2 + decodable // 2, claimed - 1])
    assert frames.indices.tolist() == [0, decodable - 1]
    assert frames.n_frames == decodable


def test_seek_is_chosen_for_short_gops_and_decode_and_skip_for_long_ones(tmp_path):
    short = write_clip(tmp_path / "short_gop.mp4", frames=60, gop=2)
    long = write_clip(tmp_path / "long_gop.mp4", frames=60, gop=250)
    wanted = [5, 30, 55]
    assert plan_decode(index_video(short), wanted).method == "seek"
    assert plan_decode(index_video(long), wanted).method == "sequential"
    frames = read_frames(short, wanted)
    assert frames.method == "seek"
    assert [frame_number(im) for im in frames.images] == wanted
    skipped = read_frames(long, list(range(0, 60, 7)), method="sequential")  # B-frames dropped in between
    assert [frame_number(im) for im in skipped.images] == list(range(0, 60, 7))


def test_h264_in_avi_is_counted_not_trusted_by_timestamp(tmp_path):
    """AVI carries decode-order timestamps: with B-frames they are scrambled, so frames are counted."""
    path = write_clip(tmp_path / "h264 in avi é.avi", frames=40, gop=12)
    index = index_video(path)
    assert not index.seekable
    frames = read_frames(path, [3, 17, 39], method="seek")  # asks to seek; must still be exact
    assert frames.method == "count"
    assert [frame_number(im) for im in frames.images] == [3, 17, 39]
    np.testing.assert_allclose(frames.timestamps, np.array([3, 17, 39]) / 8)
    assert [round(t * 8) for _, t, _ in iter_frames(path, (16, 16))] == list(range(40))


def test_stretches_after_different_keyframes_are_decoded_side_by_side_and_exactly(tmp_path):
    path = write_clip(tmp_path / "four gops.mp4", frames=96, gop=24)
    index = index_video(path)
    assert len(index.keyframes) >= 4  # x264 places them about every 24 frames
    wanted = list(range(2, 96, 3))
    runs = split_plan(index, wanted, parts=2, min_frames=0)
    assert len(runs) == 2
    assert sorted(i for run in runs for _, targets in run.steps for i in targets) == wanted
    assert runs[0].steps[0][0] is None and runs[1].steps[0][0] in index.keyframes  # the second seeks
    assert max(run.cost for run in runs) <= 0.65 * plan_decode(index, wanted).cost  # balanced
    counted = read_frames(path, wanted, (32, 24), method="count")
    together = read_frames(path, wanted, (32, 24), threads=2)
    alone = read_frames(path, wanted, (32, 24), threads=1)
    assert (together.runs, alone.runs) == (2, 1)
    for frames in (together, alone):
        assert frames.indices.tolist() == wanted
        assert np.array_equal(frames.images, counted.images)
        np.testing.assert_allclose(frames.timestamps, counted.timestamps)
    assert [frame_number(im) for im in together.images] == wanted


def test_one_decoder_when_splitting_would_not_pay(tmp_path):
    one_gop = index_video(write_clip(tmp_path / "one gop.mp4", frames=96, gop=250))
    assert len(split_plan(one_gop, range(0, 96, 3), parts=4, min_frames=0)) == 1  # nothing to split at
    four = index_video(write_clip(tmp_path / "four gops.mp4", frames=96, gop=24))
    second = int(four.keyframes[1])
    lopsided = [*range(0, second, 2), second]  # all but one frame before the second keyframe: no gain
    assert len(split_plan(four, lopsided, parts=2, min_frames=0)) == 1
    assert len(split_plan(four, range(0, 96, 3), parts=2, min_frames=200)) == 1  # too little to decode
    assert len(split_plan(four, range(0, 96, 3), parts=1, min_frames=0)) == 1
    assert 2 < len(split_plan(four, range(0, 96, 3), parts=8, min_frames=0)) <= len(four.keyframes)


def test_avi_of_a_codec_that_never_reorders_is_located_by_timestamp(shared_media):
    """MS-MPEG4 has no B-frames: AVI's decode-order timestamps are display order, so it seeks and
    splits like an MP4 (H.264 in AVI stays counted: see above)."""
    path = shared_media / "other_video/opencv_vtest_static_cam_people.avi"
    index = index_video(path)
    assert index.seekable and index.keyframes.tolist() == [0, 250, 500, 750]
    wanted = np.linspace(0, index.n_frames - 1, 16).round().astype(int).tolist()
    counted = read_frames(path, wanted, (40, 30), method="count")
    frames = read_frames(path, wanted, (40, 30), index=index, threads=2)
    assert frames.method == "seek" and frames.runs == 2
    assert np.array_equal(frames.images, counted.images)
    np.testing.assert_allclose(frames.timestamps, counted.timestamps)


def test_mjpeg_is_intra_only_and_seeks(tmp_path):
    path = write_clip(tmp_path / "mjpeg.avi", frames=30, codec="mjpeg")
    index = index_video(path)
    assert index.seekable and len(index.keyframes) == 30
    frames = read_frames(path, [2, 29])
    assert frames.method == "seek"
    assert [frame_number(im) for im in frames.images] == [2, 29]


def test_memory_is_bounded_by_the_request_not_the_clip(shared_media):
    tracemalloc.start()
    frames = read_frames(shared_media / CAT, [10, 200, 350])  # 360 full frames would be 314 MB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(frames) == 3
    assert peak < 20e6, f"peak {peak / 1e6:.1f} MB"


def test_iter_frames_yields_every_frame_one_at_a_time(media):
    hyena = media / ZAMBA / "savanna/Grumeti_Tanzania/K38_check3/09190048_Hyena.AVI"
    seen = [(i, round(t, 3), im.shape) for i, t, im in iter_frames(hyena, (16, 12), fmt="gray")]
    assert [i for i, _, _ in seen] == list(range(15))
    assert seen[0][2] == (12, 16)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"this is not a video file\n" * 40, "FFmpeg cannot open it"),
    (None, "does not exist"),
])
def test_unreadable_files_raise_an_error_that_names_the_file(tmp_path, content, reason):
    path = tmp_path / "bad clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoReadError) as caught:
        read_frames(path, [0])
    assert str(path) in str(caught.value) and reason in str(caught.value)


def test_truncated_avi_gives_the_frames_it_has(shared_media, tmp_path):
    data = (shared_media / "other_video/opencv_vtest_static_cam_people.avi").read_bytes()
    path = tmp_path / "truncated.avi"
    path.write_bytes(data[: len(data) // 3])
    frames = read_frames(path, range(0, 795, 50))
    assert 0 < len(frames) < 16
    assert frames.indices[-1] < frames.n_frames < 795

"""Container metadata of one video, from its headers, without decoding frames.

:func:`probe_video` opens the file once with PyAV (FFmpeg's own demuxers, as ``ffprobe`` uses)
and reads what the headers say; each field is defined to agree with ``ffprobe -show_format
-show_streams`` (the tests use it as the oracle):

============== ==================================================================================
field          meaning (ffprobe equivalent)
============== ==================================================================================
container      FFmpeg format name, e.g. ``avi``, ``mov,mp4,m4a,3gp,3g2,mj2`` (``format.format_name``)
video_codec    codec of the first video stream, e.g. ``h264`` (``codec_name``)
pix_fmt        pixel format (``pix_fmt``)
width, height  coded frame size in pixels (``width``, ``height``)
fps            average frame rate; the stream's base rate when the average is unknown
               (``avg_frame_rate``, else ``r_frame_rate``)
frames         frame count **the header claims** (``nb_frames``); None when the container has
               none (ASF, MKV)
duration       container duration in seconds (``format.duration``)
bit_rate       container bit rate in bits/s (``format.bit_rate``)
has_audio      whether an audio stream exists; ``audio_codec`` its codec (``codec_name``)
capture_time   when the clip was recorded, from the container's tags (``format.tags.creation_time``
               and others: :mod:`jungle.ingest.times`); None when it has none
============== ==================================================================================

``frames_decodable`` is what the file **really** holds: the number of video packets the
demuxer reads (with ``count_frames=True``), which reads the file but decodes nothing. Headers
can lie: ``other_video/opencv_tree_foliage_hand.avi`` claims 444 frames and holds 68, and a
truncated AVI keeps its header's count. On every test clip this equals ``ffprobe -count_frames``
(``nb_read_frames``, which decodes everything); a codec that packs two frames into one packet
(DivX "packed B-frames" in AVI) would be undercounted by those.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..features.video.decode import VideoReadError
from .times import CaptureTime, read_container_time

__all__ = ["VideoProbe", "probe_video", "VideoReadError", "PROBE_VERSION"]

#: Version of what the probe reads, recorded on every row (``videos.probe_version``): 1 added the
#: capture time. Rows written by an older probe get what it lacked on the next ingest.
PROBE_VERSION = 1


@dataclass(frozen=True)
class VideoProbe:
    """Header metadata of one video (see the module docstring for each field's definition)."""

    container: str
    video_codec: str | None
    pix_fmt: str | None
    width: int | None
    height: int | None
    fps: float | None
    frames: int | None
    frames_decodable: int | None
    duration: float | None
    bit_rate: int | None
    has_audio: bool
    audio_codec: str | None
    capture_time: CaptureTime | None = None


def _codec_name(stream) -> str | None:
    """ffprobe's ``codec_name`` (the codec descriptor, e.g. ``mp3``, not the decoder ``mp3float``)."""
    try:
        return stream.codec_context.codec.canonical_name
    except Exception:  # no decoder in this FFmpeg build
        return None


def _count_packets(container, stream) -> int:
    """Video packets with data, read by demuxing only (a damaged tail ends the count)."""
    import av

    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size and not packet.is_discard:
                count += 1
    except av.error.FFmpegError:
        pass  # damaged data after the last good packet: what was read is what there is
    return count


def probe_video(path: str | os.PathLike, count_frames: bool = True) -> VideoProbe:
    """Read the container headers of ``path`` (and count its frames by demuxing).

    Args:
        path: the video file.
        count_frames: also demux the video stream to count the frames it really holds
            (``frames_decodable``); a few milliseconds for a typical clip.

    Raises:
        VideoReadError: the file is empty, not a media file FFmpeg recognises (random bytes,
            text, a file cut before its header ends), has no video stream, or holds no frames.
    """
    import av

    path = os.fspath(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise VideoReadError(path, "it is not a regular file", "Remove it from the collection.")
    if info.st_size == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if isinstance(exc, PermissionError):
            raise VideoReadError(path, "permission denied",
                                 "Make the file readable (chmod) for the user running jungle.") from exc
        reason = exc.strerror or str(exc)
        raise VideoReadError(path, f"FFmpeg cannot open it as a video ({reason}); it may be truncated, "
                                   "damaged or not a video at all") from exc
    try:
        if not container.streams.video:
            raise VideoReadError(path, "it has no video stream", "Remove it from the collection.")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        audio = container.streams.audio
        rate = stream.average_rate or stream.base_rate
        frames_decodable = _count_packets(container, stream) if count_frames else None
        if frames_decodable == 0:
            raise VideoReadError(path, "its video stream holds no frames")
        return VideoProbe(
            container=container.format.name,
            video_codec=_codec_name(stream),
            pix_fmt=ctx.pix_fmt,
            width=ctx.width or None,
            height=ctx.height or None,
            fps=float(rate) if rate else None,
            frames=int(stream.frames) or None,
            frames_decodable=frames_decodable,
            duration=container.duration / av.time_base if container.duration is not None else None,
            bit_rate=int(container.bit_rate) or None,
            has_audio=bool(audio),
            audio_codec=_codec_name(audio[0]) if audio else None,
            capture_time=read_container_time(container, path),
        )
    finally:
        container.close()

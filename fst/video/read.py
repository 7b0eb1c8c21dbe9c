"""Reading: a video file (video frames and audio in file order) or a folder of image frames.

Items go into a bounded queue for the pipeline: ``Frame`` for pictures, PyAV packets (audio to copy)
or audio frames (audio to re-encode) as they are, and ``END`` last.
"""

from __future__ import annotations

import math
import queue
import struct
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from fst import images
from fst.errors import FstError

END = None
#: Container formats that FFmpeg reads single images with: a picture, not a video.
IMAGE_FORMATS = {"image2", "apng", "gif", "webp_pipe"}


@dataclass
class Frame:
    """One decoded picture and its timestamp."""

    rgb: np.ndarray
    pts: int
    time_base: Fraction


@dataclass
class Source:
    """What the writer needs to know about the input before the first frame."""

    rate: Fraction
    rotation: int | None = None


def put(q: queue.Queue, item, stop: threading.Event) -> None:
    """Puts an item, giving up when the pipeline is being stopped (never blocks forever)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def get(q: queue.Queue, stop: threading.Event):
    """Gets the next item, or END once the pipeline is being stopped."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return END


def reason(exc: Exception) -> str:
    """The first line of an FFmpeg error, for a one-line message."""
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def open_video(src: Path):
    """Opens a video file for reading; a one-line error for anything that is not a video."""
    import av

    if not src.exists():
        raise FstError(f"{src}: no such file")
    try:
        container = av.open(str(src))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if lacks_mp4_index(src):
            raise FstError(f"{src}: truncated before its index (the 'moov' box at the end of an MP4/MOV), "
                           "without which no frame can be read") from None
        raise FstError(f"{src}: not a video FFmpeg can read ({reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise FstError(f"{src}: has no video stream")
    if container.format.name in IMAGE_FORMATS or container.format.name.endswith("_pipe"):
        kind = container.streams.video[0].codec_context.name
        container.close()
        raise FstError(f"{src}: is a still image ({kind}), not a video; use 'fst run' for images")
    return container


def lacks_mp4_index(src: Path) -> bool:
    """Whether src is an MP4/MOV cut short before its 'moov' box: its top-level boxes, which
    start with 'ftyp', run past the end of the file with no 'moov' among them."""
    if not src.is_file():
        return False
    size, position, kinds = src.stat().st_size, 0, []
    try:
        with open(src, "rb") as f:
            while position + 8 <= size:
                f.seek(position)
                length, kind = struct.unpack(">I4s", f.read(8))
                if length == 1 and position + 16 <= size:
                    length = struct.unpack(">Q", f.read(8))[0]
                elif length == 0:  # the last box, to the end of the file
                    length = size - position
                if length < 8:
                    return False
                kinds.append(kind)
                position += length
    except OSError:
        return False
    return kinds[:1] == [b"ftyp"] and b"moov" not in kinds and position > size


def decode(packet, report=None) -> list:
    """Decodes one packet; a corrupt one is skipped rather than ending the render, and counted in
    ``report`` when given (video packets, which the warning counts; a sound packet is not worth one)."""
    import av

    try:
        return packet.decode()
    except av.error.InvalidDataError:
        if report is not None:
            report.corrupt_packets += 1
        return []


def read_video(container, audio, src: Path, out: queue.Queue, stop: threading.Event, report, source: Source,
               max_size: int | None, start: float, end: float | None, copy_audio: bool) -> None:
    """Demuxes video and ``audio`` (the input's audio stream, or None) in file order: frames go out
    as RGB, audio as packets (copy) or frames.  The first frame's display rotation is noted in
    ``source`` for the writer.  The container is this thread's alone from the start: closed here."""
    import av

    video = container.streams.video[0]
    if start > 0:
        container.seek(int(start / video.time_base), stream=video)
    streams = [video] + ([audio] if audio is not None else [])
    try:
        for packet in container.demux(*streams):
            if stop.is_set():
                return
            if packet.stream is audio:
                # A corrupt packet (one a truncation cut off, say) is dropped: copied, the output's
                # sound would not decode.
                if packet.size == 0 or packet.pts is None or packet.is_corrupt:
                    continue
                t = float(packet.pts * packet.time_base)
                if t < start or (end is not None and t >= end):
                    continue
                if copy_audio:
                    put(out, packet, stop)
                else:
                    for frame in decode(packet):
                        put(out, frame, stop)
                continue
            for frame in decode(packet, report):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    return
                if source.rotation is None:
                    source.rotation = int(round(frame.rotation or 0)) % 360
                width, height = images.scaled_size(frame.width, frame.height, max_size)
                rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
                put(out, Frame(rgb, frame.pts, frame.time_base), stop)
    except av.error.FFmpegError as exc:
        raise FstError(f"{src}: cannot read the video ({reason(exc)})") from None
    finally:
        put(out, END, stop)
        container.close()


def folder_range(count: int, rate: Fraction, start: float, end: float | None) -> range:
    """The indices of a folder's frames, 1/rate seconds apart, that fall from start to end."""
    first = max(0, math.ceil((start - 1e-6) * float(rate)))
    last = count if end is None else min(count, math.ceil((end - 1e-6) * float(rate)))
    return range(first, max(first, last))


def read_frames_folder(src: Path, out: queue.Queue, stop: threading.Event, max_size: int | None,
                       rate: Fraction, start: float, end: float | None) -> None:
    """A folder of image files in name order, as frames 1/rate apart, those from start to end."""
    files = images.frame_files(src)
    try:
        size = None
        for i in folder_range(len(files), rate, start, end):
            if stop.is_set():
                return
            path = files[i]
            rgb = images.load_image(path)[0]
            if max_size and max(rgb.shape[:2]) > max_size:
                rgb = images.resize_long_side(rgb, max_size)
            if size is not None and rgb.shape != size:
                raise FstError(f"{path}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the first frame's")
            size = rgb.shape
            put(out, Frame(rgb, i, 1 / rate), stop)
    finally:
        put(out, END, stop)


def expected_frames(container, video, start: float, end: float | None) -> int | None:
    """The frame count the file's header promises in the time range (for the progress bar's ETA and
    to notice a truncated file), or None when it does not say."""
    seconds = float(video.duration * video.time_base) if video.duration else (
        container.duration / 1e6 if container.duration else None)
    if seconds is None or not video.average_rate:
        return video.frames or None
    seconds = (min(end, seconds) if end is not None else seconds) - start
    return max(0, round(seconds * float(video.average_rate)))

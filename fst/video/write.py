"""Writing: encoding and muxing a video file, or PNG frames into a folder.

Each output container's facts (its muxer, the video encoders to try, each encoder's CRF range and
default, whether it needs even sizes, the audio encoder) live in one table, ``CONTAINERS``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fst import images
from fst.errors import FstError
from fst.video.read import END, Frame, Source, get

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoder:
    """A video encoder: its FFmpeg name, the constant-quality (CRF) values it takes (None: no CRF),
    its default CRF, and whether its 4:2:0 output needs an even width and height."""

    name: str
    crf: tuple[int, int] | None = None
    default_crf: int | None = None
    even_size: bool = True


@dataclass(frozen=True)
class Container:
    """An output container: FFmpeg's muxer, its video encoders in order of preference (the first
    this FFmpeg has is used), and the audio encoder for sound that cannot be copied as it is."""

    muxer: str
    encoders: tuple[Encoder, ...]
    audio: str


_LIBX264 = Encoder("libx264", crf=(0, 51), default_crf=18)
_H264 = Encoder("h264")  # whichever other H.264 encoder this FFmpeg has
_MPEG4 = Encoder("mpeg4")
_VP9 = Encoder("libvpx-vp9", crf=(0, 63), default_crf=31, even_size=False)
_VP8 = Encoder("libvpx")
_H264_FAMILY = (_LIBX264, _H264, _MPEG4)

CONTAINERS = {
    ".mp4": Container("mp4", _H264_FAMILY, "aac"),
    ".m4v": Container("mp4", _H264_FAMILY, "aac"),
    ".mov": Container("mov", _H264_FAMILY, "aac"),
    ".mkv": Container("matroska", _H264_FAMILY, "aac"),
    ".webm": Container("webm", (_VP9, _VP8), "libopus"),
}


def _ffmpeg_name(codec: str) -> str | None:
    """The name of the video encoder FFmpeg picks for a codec or encoder name, or None if it has none."""
    import av

    try:
        found = av.Codec(codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return None
    return found.name if found.type == "video" else None


def choose_encoder(suffix: str, codec: str | None, crf: int | None) -> tuple[Encoder, int | None]:
    """The encoder and CRF for a container: checked before any frame is decoded, so that a wrong
    ``codec`` or an out-of-range ``crf`` is a one-line error rather than a failure mid-video."""
    container = CONTAINERS[suffix]
    available = [e for e in container.encoders if _ffmpeg_name(e.name) is not None]
    if codec is None:
        if not available:
            raise FstError(f"this FFmpeg has no video encoder for {suffix}")
        encoder = available[0]
    else:
        name = _ffmpeg_name(codec)
        encoder = next((e for e in available if codec == e.name or name == e.name), None)
        if encoder is None:
            choices = ", ".join(e.name for e in available) or "none in this FFmpeg"
            raise FstError(f"video encoder {codec!r} cannot write {suffix}; choose {choices}")
    if crf is None:
        return encoder, encoder.default_crf
    if encoder.crf is None:
        raise FstError(f"the {encoder.name} encoder takes no crf; leave it out or choose another codec")
    low, high = encoder.crf
    if not low <= crf <= high:
        raise FstError(f"crf for {encoder.name} must be between {low} and {high}, not {crf}")
    return encoder, crf


class VideoWriter:
    """Encodes and muxes in order; the video stream's size is set on the first frame.

    ``audio`` is the input's audio stream (or None), copied or re-encoded as ``report.audio`` says.
    The output container and its streams are made here, on the caller's thread before the reader
    starts, so that the writer thread never touches the input container, which the reader thread
    demuxes and closes: the sound's stream made from the input's on the first frame read freed
    memory (a segfault) once a short or truncated input had been read to its end and closed.
    """

    def __init__(self, path: Path, suffix: str, source: Source, encoder: Encoder, crf: int | None,
                 start: float, report, audio=None):
        import av

        facts = CONTAINERS[suffix]
        self.source, self.encoder, self.crf, self.start, self.report = source, encoder, crf, start, report
        self.container = av.open(str(path), "w", format=facts.muxer)
        self.video = self.container.add_stream(encoder.name, rate=source.rate)
        self.audio = None
        if audio is not None and report.audio == "copied":
            self.audio = self.container.add_stream_from_template(audio)
        elif audio is not None:
            self.audio = self.container.add_stream(facts.audio, rate=audio.codec_context.sample_rate)
        self.report.codec = self.video.codec_context.name
        self.started = False
        self.pending_audio: list = []
        self.pad = (0, 0)

    def _start(self, frame: Frame) -> None:
        """Sets the video stream's size, timing and rotation from the first frame."""
        video, name = self.video, self.report.codec
        height, width = frame.rgb.shape[:2]
        self.pad = (height % 2, width % 2) if self.encoder.even_size else (0, 0)
        video.width, video.height = width + self.pad[1], height + self.pad[0]
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = frame.time_base
        if self.crf is not None:
            video.options = {"crf": str(self.crf), **({"b": "0"} if name == "libvpx-vp9" else {})}
        if self.source.rotation:
            video.set_display_rotation(self.source.rotation)
        self.report.width, self.report.height = width, height
        if any(self.pad):
            log.info("padding %dx%d frames to %dx%d for %s", width, height, video.width, video.height, name)
        self.start_pts = round(self.start / frame.time_base)
        self.started = True

    def write(self, item) -> None:
        import av

        if isinstance(item, Frame):
            if not self.started:
                self._start(item)
                for pending in self.pending_audio:
                    self._write_audio(pending)
                self.pending_audio.clear()
            rgb = item.rgb
            if any(self.pad):
                rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = item.pts - self.start_pts, item.time_base
            for packet in self.video.encode(frame):
                self.container.mux(packet)
        elif not self.started:
            self.pending_audio.append(item)
        else:
            self._write_audio(item)

    def _write_audio(self, item) -> None:
        if self.audio is None:
            return
        offset = round(self.start / item.time_base)
        if self.report.audio == "copied":
            item.pts -= offset
            if item.dts is not None:
                item.dts -= offset
            item.stream = self.audio
            self.container.mux(item)
        else:
            item.pts = None
            for packet in self.audio.encode(item):
                self.container.mux(packet)

    def close(self) -> None:
        """Flushes the encoders (when a frame came) and closes the file."""
        try:
            if self.started:
                for packet in self.video.encode():
                    self.container.mux(packet)
                if self.audio is not None and self.report.audio == "re-encoded":
                    for packet in self.audio.encode():
                        self.container.mux(packet)
        finally:
            self.container.close()


class FramesWriter:
    """Writes frame_000001.png, frame_000002.png, ... into a folder."""

    def __init__(self, folder: Path, report):
        self.folder, self.report, self.count = folder, report, 0

    def write(self, item) -> None:
        if isinstance(item, Frame):
            self.count += 1
            self.report.height, self.report.width = item.rgb.shape[:2]
            path = self.folder / f"frame_{self.count:06d}.png"
            path.write_bytes(images.encode(item.rgb, "PNG"))

    def close(self) -> None:
        pass


def write_all(writer, inbox: queue.Queue, stop: threading.Event) -> None:
    """The writer stage: everything from the queue until END, then the writer is closed."""
    try:
        while (item := get(inbox, stop)) is not END:
            writer.write(item)
    finally:
        writer.close()


def can_copy(audio, suffix: str) -> bool:
    """Whether the output container takes the source's audio codec as it is."""
    import av

    probe = av.open(os.devnull, "w", format=CONTAINERS[suffix].muxer)
    try:
        return audio.codec_context.name in probe.supported_codecs
    finally:
        probe.close()

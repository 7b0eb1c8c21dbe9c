"""Video: decode with PyAV, stylize the frames in batches, encode; timing, rotation and sound kept.

Three stages overlap: a reader thread decodes (and passes the audio along in
order), the caller's thread stylizes batches of frames, a writer thread
encodes and muxes.  Bounded queues between them keep memory flat for any
length of video.  Output goes to a temporary file (or folder) renamed into
place at the end, so an error or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from fst import images, styles
from fst.errors import FstError
from fst.files import atomic_path, temporary_beside

log = logging.getLogger("fst")

#: Video encoders to try, in order, for each output extension (first one FFmpeg has wins).
VIDEO_CODECS = {
    ".mp4": ("libx264", "h264", "mpeg4"),
    ".m4v": ("libx264", "h264", "mpeg4"),
    ".mov": ("libx264", "h264", "mpeg4"),
    ".mkv": ("libx264", "h264", "mpeg4"),
    ".webm": ("libvpx-vp9", "libvpx"),
}
#: Audio encoder for each extension when the source's audio codec cannot be copied as it is.
AUDIO_CODECS = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus"}
#: Default constant-quality setting per encoder (lower is better and bigger).
DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 31}
_QUEUE_FRAMES = 16
_END = None


@dataclass
class VideoReport:
    """What a render did, for the command's summary line and for tests."""

    frames: int = 0
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    corrupt_packets: int = 0
    audio: str = "none"  # "copied", "re-encoded" or "none"
    codec: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


@dataclass
class _Frame:
    rgb: np.ndarray
    pts: int
    time_base: Fraction


@dataclass
class _Source:
    """What the writer needs to know about the input before the first frame."""

    rate: Fraction
    rotation: int | None = None
    audio_stream: object = None  # the input audio stream, when there is one


class _Stage(threading.Thread):
    """A pipeline thread: on an error it stops the whole pipeline and keeps the exception
    for the caller's thread to re-raise."""

    def __init__(self, target: Callable[[], None], name: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self._target_fn, self._stop_all, self.error = target, stop, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
            self._stop_all.set()


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    """Puts an item, giving up when the pipeline is being stopped (never blocks forever)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    """Gets the next item, or the end marker once the pipeline is being stopped."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def _scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


# Reading ---------------------------------------------------------------------------------------


def _open_video(src: Path):
    import av

    if not src.exists():
        raise FstError(f"{src}: no such file")
    try:
        container = av.open(str(src))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise FstError(f"{src}: not a video FFmpeg can read ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise FstError(f"{src}: has no video stream")
    return container


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def _read_video(container, src: Path, out: queue.Queue, stop: threading.Event, report: VideoReport,
                source: _Source, max_size: int | None, start: float, end: float | None, copy_audio: bool) -> None:
    """Demuxes video and audio in file order: frames go out as RGB, audio as packets (copy) or
    frames.  The first frame's display rotation is noted in ``source`` for the writer."""
    import av

    video, audio = container.streams.video[0], source.audio_stream
    if start > 0:
        container.seek(int(start / video.time_base), stream=video)
    streams = [video] + ([audio] if audio is not None else [])
    try:
        for packet in container.demux(*streams):
            if stop.is_set():
                return
            if packet.stream is audio:
                if packet.size == 0 or packet.pts is None:
                    continue
                t = float(packet.pts * packet.time_base)
                if t < start or (end is not None and t >= end):
                    continue
                if copy_audio:
                    _put(out, packet, stop)
                else:
                    for frame in _decode(packet, report):
                        _put(out, frame, stop)
                continue
            for frame in _decode(packet, report):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    return
                if source.rotation is None:
                    source.rotation = int(round(frame.rotation or 0)) % 360
                width, height = _scaled_size(frame.width, frame.height, max_size)
                rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
                _put(out, _Frame(rgb, frame.pts, frame.time_base), stop)
    except av.error.FFmpegError as exc:
        raise FstError(f"{src}: cannot read the video ({_reason(exc)})") from None
    finally:
        _put(out, _END, stop)
        container.close()


def _decode(packet, report: VideoReport) -> list:
    """Decodes one packet; a corrupt one is counted and skipped rather than ending the render."""
    import av

    try:
        return packet.decode()
    except av.error.InvalidDataError:
        report.corrupt_packets += 1
        return []


def _read_frames_folder(src: Path, out: queue.Queue, stop: threading.Event, max_size: int | None,
                        rate: Fraction) -> None:
    """A folder of image files in name order, as frames 1/rate apart."""
    files = _frame_files(src)
    try:
        size = None
        for i, path in enumerate(files):
            if stop.is_set():
                return
            rgb = images.load_image(path)[0]
            if max_size:
                rgb = images.resize_long_side(rgb, max_size) if max(rgb.shape[:2]) > max_size else rgb
            if size is not None and rgb.shape != size:
                raise FstError(f"{path}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the first frame's")
            size = rgb.shape
            _put(out, _Frame(rgb, i, 1 / rate), stop)
    finally:
        _put(out, _END, stop)


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in images.IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FstError(f"{folder}: no image files to use as frames")
    return files


# Writing ---------------------------------------------------------------------------------------


class _VideoWriter:
    """Opens the output on the first frame (its size is known then), then encodes and muxes in order."""

    def __init__(self, path: Path, suffix: str, source: _Source, codec: str | None, crf: int | None,
                 start: float, report: VideoReport):
        self.path, self.suffix, self.source, self.codec, self.crf = path, suffix, source, codec, crf
        self.start, self.report = start, report
        self.container = self.video = self.audio = None
        self.pending_audio: list = []
        self.pad = (0, 0)

    def _open(self, frame: _Frame) -> None:
        import av

        self.container = av.open(str(self.path), "w")
        height, width = frame.rgb.shape[:2]
        name = self.codec or next((c for c in VIDEO_CODECS[self.suffix] if c in av.codecs_available), None)
        if name is None or name not in av.codecs_available:
            raise FstError(f"this FFmpeg has no {self.codec or 'suitable'} video encoder for {self.suffix}")
        video = self.container.add_stream(name, rate=self.source.rate)
        even = name != "libvpx-vp9"  # 4:2:0 H.264/MPEG-4 need even sizes; VP9 takes any
        self.pad = (height % 2, width % 2) if even else (0, 0)
        video.width, video.height = width + self.pad[1], height + self.pad[0]
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = frame.time_base
        crf = self.crf if self.crf is not None else DEFAULT_CRF.get(name)
        if crf is not None:
            video.options = {"crf": str(crf), **({"b": "0"} if name == "libvpx-vp9" else {})}
        if self.source.rotation:
            video.set_display_rotation(self.source.rotation)
        self.video = video
        self.report.codec, self.report.width, self.report.height = name, width, height
        if any(self.pad):
            log.info("padding %dx%d frames to %dx%d for %s", width, height, video.width, video.height, name)
        source_audio = self.source.audio_stream
        if source_audio is not None:
            if self.report.audio == "copied":
                self.audio = self.container.add_stream_from_template(source_audio)
            else:
                self.audio = self.container.add_stream(AUDIO_CODECS[self.suffix],
                                                       rate=source_audio.codec_context.sample_rate)
        self.start_pts = round(self.start / frame.time_base)

    def write(self, item) -> None:
        import av

        if isinstance(item, _Frame):
            if self.container is None:
                self._open(item)
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
        elif self.container is None:
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
        if self.container is None:
            return
        for packet in self.video.encode():
            self.container.mux(packet)
        if self.audio is not None and self.report.audio == "re-encoded":
            for packet in self.audio.encode():
                self.container.mux(packet)
        self.container.close()


class _FramesWriter:
    """Writes frame_000001.png, frame_000002.png, ... into a folder."""

    def __init__(self, folder: Path, report: VideoReport):
        self.folder, self.report, self.count = folder, report, 0

    def write(self, item) -> None:
        if isinstance(item, _Frame):
            self.count += 1
            self.report.height, self.report.width = item.rgb.shape[:2]
            path = self.folder / f"frame_{self.count:06d}.png"
            path.write_bytes(images.encode(item.rgb, "PNG"))

    def close(self) -> None:
        pass


def _write(writer, inbox: queue.Queue, stop: threading.Event) -> None:
    try:
        while (item := _get(inbox, stop)) is not _END:
            writer.write(item)
    finally:
        writer.close()


# Destinations ----------------------------------------------------------------------------------


def _is_frames_folder(path: Path) -> bool:
    return path.is_dir() or not path.suffix


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    if not _is_frames_folder(dst) and dst.suffix.lower() not in VIDEO_CODECS:
        known = ", ".join(sorted(VIDEO_CODECS))
        raise FstError(f"{dst}: unknown video extension {dst.suffix!r}; use {known} or a folder for PNG frames")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise FstError(f"{dst}: is the input; write the result somewhere else")
    if _is_frames_folder(dst) and dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FstError(f"{dst}: folder is not empty; pass --overwrite to replace its contents")


class _atomic_folder:
    """Like files.atomic_path for a folder: filled beside dst, swapped in at the end."""

    def __init__(self, dst: Path):
        self.dst = dst

    def __enter__(self) -> Path:
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_beside(self.dst, ".part", folder=True)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.dst.exists():
                shutil.rmtree(self.dst)
            os.replace(self.tmp, self.dst)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# The pipeline ----------------------------------------------------------------------------------


def render(
    style: str | os.PathLike | styles.Style,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    max_size: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    codec: str | None = None,
    crf: int | None = None,
    fps: float = 25.0,
    batch_size: int = 4,
    strength: float = 1.0,
    preserve_color: bool = False,
    stroke_scale: float = 1.0,
    overwrite: bool = False,
    progress: bool = True,
) -> VideoReport:
    """Stylizes a video (or a folder of frames) into a video file (or a folder of PNG frames).

    Frame timestamps (variable rates too), the rotation tag and the audio
    (copied when the output container takes its codec, else re-encoded) are
    kept.  ``start``/``duration`` are in seconds; ``fps`` is the rate of a
    folder of frames.  Returns a VideoReport.
    """
    from tqdm import tqdm

    from fst.inference import check_options, stylize_frames
    from fst.runners import as_runner

    src, dst = Path(src), Path(dst)
    if start < 0 or (duration is not None and duration <= 0) or batch_size < 1 or fps <= 0:
        raise FstError("start must be >= 0, and duration, fps and batch size > 0")
    check_options(max_size=max_size, strength=strength, stroke_scale=stroke_scale)
    _check_destination(src, dst, overwrite)
    runner = as_runner(style)  # an unknown style fails before any decoding
    report, stop = VideoReport(), threading.Event()
    frames_in: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    frames_out: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    end = start + duration if duration is not None else None

    if src.is_dir():
        rate = Fraction(fps).limit_denominator(1001)
        source, total = _Source(rate=rate, rotation=0), len(_frame_files(src))
        reader = _Stage(lambda: _read_frames_folder(src, frames_in, stop, max_size, rate), "fst-reader", stop)
    else:
        container = _open_video(src)
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        source = _Source(rate=rate, audio_stream=audio)
        total = _expected_frames(container, video, start, end)
        copy_audio = False
        if audio is not None and _is_frames_folder(dst):
            log.info("%s: the sound is not written to a folder of frames", src)
            source.audio_stream = None
        elif audio is not None:
            copy_audio = _can_copy(audio, dst.suffix.lower())
            report.audio = "copied" if copy_audio else "re-encoded"
        reader = _Stage(lambda: _read_video(container, src, frames_in, stop, report, source, max_size, start,
                                            end, copy_audio), "fst-reader", stop)

    destination = _atomic_folder(dst) if _is_frames_folder(dst) else atomic_path(dst, suffix=dst.suffix)
    began = time.monotonic()
    with destination as target:
        if _is_frames_folder(dst):
            writer = _FramesWriter(target, report)
        else:
            writer = _VideoWriter(target, dst.suffix.lower(), source, codec, crf, start, report)
        writer_stage = _Stage(lambda: _write(writer, frames_out, stop), "fst-writer", stop)
        reader.start()
        writer_stage.start()
        bar = None  # made on the first batch, so that an error is not preceded by an empty bar
        try:
            for batch in _batches(frames_in, stop, batch_size):
                if bar is None:
                    bar = tqdm(total=total, unit="frame", desc="stylizing", disable=not progress,
                               dynamic_ncols=True)
                rgb = [item.rgb for item in batch if isinstance(item, _Frame)]
                if rgb:
                    stylized = iter(stylize_frames(np.stack(rgb), runner, strength=strength,
                                                   preserve_color=preserve_color, stroke_scale=stroke_scale))
                    for item in batch:
                        if isinstance(item, _Frame):
                            item.rgb = next(stylized)
                for item in batch:
                    _put(frames_out, item, stop)
                report.frames += len(rgb)
                bar.update(len(rgb))
            _put(frames_out, _END, stop)
            writer_stage.join()
        except BaseException:
            stop.set()
            raise
        finally:
            if bar is not None:
                bar.close()
            stop.set()
            reader.join()
            writer_stage.join()
        for stage in (reader, writer_stage):
            if stage.error is not None:
                raise stage.error
        if report.frames == 0:
            raise FstError(f"{src}: no video frames to stylize" + (" in that time range" if start or end else ""))
    report.seconds = time.monotonic() - began
    if report.corrupt_packets:
        log.warning("%s: skipped %d corrupt video packet(s)", src, report.corrupt_packets)
    return report


def _batches(inbox: queue.Queue, stop: threading.Event, batch_size: int) -> Iterator[list]:
    """Items in order, cut after every batch_size frames of one size (audio rides along)."""
    batch, frames, size = [], 0, None
    while (item := _get(inbox, stop)) is not _END:
        if isinstance(item, _Frame):
            if size is not None and item.rgb.shape != size and frames:
                yield batch
                batch, frames = [], 0
            size = item.rgb.shape
            frames += 1
        batch.append(item)
        if frames == batch_size:
            yield batch
            batch, frames = [], 0
    if batch:
        yield batch


def _expected_frames(container, video, start: float, end: float | None) -> int | None:
    """Frame count for the progress bar's ETA, when the file says (else None)."""
    seconds = float(video.duration * video.time_base) if video.duration else (
        container.duration / 1e6 if container.duration else None)
    if seconds is None or not video.average_rate:
        return video.frames or None
    seconds = (min(end, seconds) if end is not None else seconds) - start
    return max(0, round(seconds * float(video.average_rate)))


def _can_copy(audio, suffix: str) -> bool:
    """Whether the output container takes the source's audio codec as it is."""
    import av

    probe = av.open(os.devnull, "w", format={".mkv": "matroska", ".m4v": "mp4"}.get(suffix, suffix[1:]))
    try:
        return audio.codec_context.name in probe.supported_codecs
    finally:
        probe.close()

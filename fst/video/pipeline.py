"""The pipeline: a reader thread decodes, the caller's thread stylizes batches of frames, a writer
thread encodes.

Bounded queues between the three keep memory flat for any length of video.  Output goes to a
temporary file (or folder) renamed into place at the end, so an error, Ctrl-C or SIGTERM leaves
nothing behind (and what a killed run left is swept by the next run to the same destination).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from fst import images, styles
from fst.errors import FstError
from fst.files import atomic_folder, atomic_path, sweep_temporaries
from fst.options import StylizeOptions, VideoOptions
from fst.video.read import (END, Frame, Source, expected_frames, folder_range, get, open_video, put,
                            read_frames_folder, read_video)
from fst.video.write import CONTAINERS, FramesWriter, VideoWriter, can_copy, choose_encoder, write_all

log = logging.getLogger(__name__)

_QUEUE_FRAMES = 16


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
    expected_frames: int | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


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


class _Interrupt:
    """Ctrl-C during a render, remembered: the KeyboardInterrupt it raises can land inside library code
    that swallows it (Keras loading the network with bare excepts), so the render checks between
    batches and stops anyway. Only in the main thread, where Python delivers signals."""

    def __enter__(self) -> _Interrupt:
        self.signalled, self.previous = False, None
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
                signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        self.signalled = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.signalled:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def is_frames_folder(path: Path) -> bool:
    """A destination without an extension (or an existing folder) is a folder of PNG frames."""
    return path.is_dir() or not path.suffix


def check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    """Checks dst before any work: a known container (or a folder), not the source, writable."""
    if is_frames_folder(dst):
        if dst.exists() and any(dst.iterdir()) and not overwrite:
            raise FstError(f"{dst}: folder is not empty; pass --overwrite to replace its contents")
    elif dst.suffix.lower() not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise FstError(f"{dst}: unknown video extension {dst.suffix!r}; use {known} or a folder for PNG frames")
    images.check_writable(dst)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise FstError(f"{dst}: is the input; write the result somewhere else")


def render(
    style: str | os.PathLike | styles.Style,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    options: StylizeOptions = StylizeOptions(),
    video: VideoOptions = VideoOptions(),
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> VideoReport:
    """Stylizes a video (or a folder of frames) into a video file (or a folder of PNG frames).

    Frame timestamps (variable rates too), the rotation tag and the audio
    (copied when the output container takes its codec, else re-encoded) are
    kept.  ``options`` are those of images: frames are shrunk to ``max_size``,
    stylized in tiles over ``tile_size`` squared pixels, and ``stroke_scale``
    follows the frame size (``"auto"``). ``video`` gives the time range
    (seconds), a folder's frame rate, the batch and the encoder. Returns a
    VideoReport.
    """
    from tqdm import tqdm

    from fst.inference import stylize_frames
    from fst.runners import as_runner

    src, dst = Path(src), Path(dst)
    max_size, start, duration, fps = options.max_size, video.start, video.duration, video.fps
    check_destination(src, dst, overwrite)
    frames_folder = is_frames_folder(dst)
    if not frames_folder:
        encoder, crf = choose_encoder(dst.suffix.lower(), video.codec, video.crf)
    runner = as_runner(style)  # an unknown style fails before any decoding
    sweep_temporaries(dst)
    report, stop = VideoReport(), threading.Event()
    frames_in: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    frames_out: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    end = start + duration if duration is not None else None

    if src.is_dir():
        rate = Fraction(fps).limit_denominator(1001)
        source, audio = Source(rate=rate, rotation=0), None
        total = len(folder_range(len(images.frame_files(src)), rate, start, end))
        reader = _Stage(lambda: read_frames_folder(src, frames_in, stop, max_size, rate, start, end), "fst-reader",
                        stop)
    else:
        container = open_video(src)
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        source = Source(rate=rate)
        total = report.expected_frames = expected_frames(container, stream, start, end)
        copy_audio = False
        if audio is not None and frames_folder:
            log.info("%s: the sound is not written to a folder of frames", src)
            audio = None
        elif audio is not None:
            copy_audio = can_copy(audio, dst.suffix.lower())
            report.audio = "copied" if copy_audio else "re-encoded"
        reader = _Stage(lambda: read_video(container, audio, src, frames_in, stop, report, source, max_size,
                                           start, end, copy_audio), "fst-reader", stop)

    destination = atomic_folder(dst) if frames_folder else atomic_path(dst, suffix=dst.suffix)
    began = time.monotonic()
    with destination as target, _Interrupt() as interrupted:
        if frames_folder:
            writer = FramesWriter(target, report)
        else:  # before the reader starts, which then has the input container to itself
            writer = VideoWriter(target, dst.suffix.lower(), source, encoder, crf, start, report, audio)
        writer_stage = _Stage(lambda: write_all(writer, frames_out, stop), "fst-writer", stop)
        reader.start()
        writer_stage.start()
        bar = None  # made on the first batch, so that an error is not preceded by an empty bar
        try:
            for batch in _batches(frames_in, stop, video.batch_size):
                interrupted.check()
                if bar is None:
                    bar = tqdm(total=total, unit="frame", desc="stylizing", disable=not progress,
                               dynamic_ncols=True)
                rgb = [item.rgb for item in batch if isinstance(item, Frame)]
                if rgb:
                    stylized = iter(stylize_frames(np.stack(rgb), runner, options))
                    for item in batch:
                        if isinstance(item, Frame):
                            item.rgb = next(stylized)
                for item in batch:
                    put(frames_out, item, stop)
                report.frames += len(rgb)
                bar.update(len(rgb))
                interrupted.check()
            put(frames_out, END, stop)
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
        if report.frames == 0 and (start or end):
            raise FstError(f"{src}: no video frames to stylize in that time range")
        if report.frames == 0 and report.expected_frames:
            raise FstError(f"{src}: none of the {report.expected_frames} video frames its header promises "
                           "could be read (truncated?)")
        if report.frames == 0:
            raise FstError(f"{src}: no video frames to stylize")
    report.seconds = time.monotonic() - began
    if report.corrupt_packets:
        log.warning("%s: skipped %d corrupt video packet(s)", src, report.corrupt_packets)
    elif report.expected_frames and report.frames + max(2, report.expected_frames // 20) < report.expected_frames:
        log.warning("%s: only %d of the %d frames its header promises could be read (truncated?)",
                    src, report.frames, report.expected_frames)
    return report


def _batches(inbox: queue.Queue, stop: threading.Event, batch_size: int) -> Iterator[list]:
    """Items in order, cut after every batch_size frames of one size (audio rides along)."""
    batch, frames, size = [], 0, None
    while (item := get(inbox, stop)) is not END:
        if isinstance(item, Frame):
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

"""Video: clips built with PyAV are stylized with timing, size, rotation and sound kept; bad input fails cleanly."""

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")

from conftest import VAL_PHOTOS, ctrl_c_default  # noqa: E402

from fst.cli import main  # noqa: E402
from fst.errors import FstError  # noqa: E402
from fst.options import StylizeOptions  # noqa: E402
from fst.video import VideoOptions, render  # noqa: E402

SAMPLE_RATE = 48000


def photo_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """A slow pan across a real photo."""
    photo = np.asarray(Image.open(VAL_PHOTOS / "000007.jpg").convert("RGB").resize((width + count, height)))
    return [photo[:, i:i + width] for i in range(count)]


def make_clip(path, *, frames=12, size=(64, 48), fps=12, audio=False, rotation=0, codec="libx264",
              pts=None, corrupt_at=None, audio_codec="aac", options=None):
    """Writes a clip; `pts` gives explicit timestamps in 1/1000 s (variable frame rate), `options`
    the muxer's (e.g. movflags)."""
    width, height = size
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if pts is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio_codec, rate=SAMPLE_RATE) if audio else None
        for i, rgb in enumerate(photo_frames(frames, width, height)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = Fraction(1, 1000) if pts is not None else Fraction(1, fps)
            for packet in video.encode(frame):
                if corrupt_at is not None and i == corrupt_at:
                    packet = av.Packet(bytes(np.random.default_rng(0).integers(0, 256, 400, np.uint8)))
                    packet.stream, packet.pts, packet.dts = video, None, None
                    packet.time_base = video.time_base
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            seconds = frames / fps
            t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = np.stack([tone[start:start + 1024]] * 2)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = SAMPLE_RATE, start
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def probe(path):
    """(frame count, width, height, rotation, frame times, audio codec, audio seconds)."""
    with av.open(str(path)) as f:
        frames = list(f.decode(video=0))
        times = [float(fr.pts * fr.time_base) for fr in frames]
        rotation = int(round(frames[0].rotation or 0)) % 360 if frames else 0
        audio = f.streams.audio[0] if f.streams.audio else None
        audio_codec = audio.codec_context.name if audio else None
    audio_seconds = 0.0
    if audio is not None:
        with av.open(str(path)) as f:
            audio_seconds = sum(fr.samples for fr in f.decode(audio=0)) / f.streams.audio[0].sample_rate
    return len(frames), frames[0].width, frames[0].height, rotation, times, audio_codec, audio_seconds


def test_mp4_keeps_frames_timing_and_sound(tmp_path, tiny_style):
    src = make_clip(tmp_path / "clip.mp4", frames=12, fps=12, audio=True)
    report = render(tiny_style, src, tmp_path / "out.mp4", progress=False)
    count, width, height, _, times, audio, seconds = probe(tmp_path / "out.mp4")
    assert (count, width, height) == (12, 64, 48) and report.frames == 12
    np.testing.assert_allclose(times, np.arange(12) / 12, atol=1e-3)
    assert audio == "aac" and report.audio == "copied" and abs(seconds - 1.0) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # no temporary file left


def test_output_frames_are_stylized(tmp_path, tiny_style):
    from fst.inference import stylize

    src = make_clip(tmp_path / "clip.mkv", frames=3, size=(64, 48), codec="libx264")
    render(tiny_style, src, tmp_path / "frames", progress=False)
    with av.open(str(src)) as f:
        first = next(f.decode(video=0)).to_ndarray(format="rgb24")
    written = np.asarray(Image.open(tmp_path / "frames" / "frame_000001.png"))
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"frame_00000{i}.png" for i in (1, 2, 3)]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "frames").stat().st_mode & 0o777 == 0o777 & ~umask  # not tempfile's private 0700
    # Frames go through the network in a batch, the reference alone: convolution kernels may sum in
    # another order for another batch size, so a value can round to its neighbour.
    difference = np.abs(written.astype(int) - stylize(first, tiny_style))
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_webm_reencodes_aac_and_keeps_odd_size(tmp_path, tiny_style):
    src = make_clip(tmp_path / "clip.mp4", frames=6, size=(64, 48), fps=6, audio=True)
    frames = tmp_path / "odd"
    frames.mkdir()
    for i, rgb in enumerate(photo_frames(6, 67, 41)):
        Image.fromarray(rgb).save(frames / f"{i:03d}.png")
    report = render(tiny_style, frames, tmp_path / "odd.webm", video=VideoOptions(fps=6), progress=False)
    count, width, height, *_ = probe(tmp_path / "odd.webm")
    assert (count, width, height) == (6, 67, 41) and report.codec == "libvpx-vp9"
    report = render(tiny_style, src, tmp_path / "sound.webm", progress=False)
    *_, audio, seconds = probe(tmp_path / "sound.webm")
    assert report.audio == "re-encoded" and audio == "opus" and abs(seconds - 1.0) < 0.1


def test_odd_size_is_padded_for_h264_never_scaled(tmp_path, tiny_style):
    frames = tmp_path / "odd"
    frames.mkdir()
    source = photo_frames(4, 67, 41)
    for i, rgb in enumerate(source):
        Image.fromarray(rgb).save(frames / f"{i:03d}.png")
    render(tiny_style, frames, tmp_path / "odd.mp4", progress=False)
    count, width, height, *_ = probe(tmp_path / "odd.mp4")
    assert (count, width, height) == (4, 68, 42)


def test_rotation_tag_and_variable_frame_rate_survive(tmp_path, tiny_style):
    pts = [0, 40, 80, 200, 240, 400, 440, 480]
    src = make_clip(tmp_path / "vfr.mp4", frames=8, pts=pts, rotation=90)
    render(tiny_style, src, tmp_path / "out.mp4", progress=False)
    count, width, height, rotation, times, *_ = probe(tmp_path / "out.mp4")
    assert (count, width, height, rotation) == (8, 64, 48, 90)
    np.testing.assert_allclose(times, np.array(pts) / 1000, atol=2e-3)


def test_start_duration_and_max_size(tmp_path, tiny_style):
    src = make_clip(tmp_path / "clip.mp4", frames=24, fps=12, size=(96, 64), audio=True)
    report = render(tiny_style, src, tmp_path / "cut.mp4", StylizeOptions(max_size=48),
                    VideoOptions(start=0.5, duration=1.0), progress=False)
    count, width, height, _, times, _, seconds = probe(tmp_path / "cut.mp4")
    assert (count, width, height) == (12, 48, 32) and report.frames == 12
    np.testing.assert_allclose(times, np.arange(12) / 12, atol=1e-3)
    assert abs(seconds - 1.0) < 0.1


def test_corrupt_packet_is_skipped_and_reported(tmp_path, tiny_style, caplog):
    src = make_clip(tmp_path / "bad.mp4", frames=12, codec="mpeg4", corrupt_at=6)
    report = render(tiny_style, src, tmp_path / "out.mp4", progress=False)
    assert report.corrupt_packets >= 1 and 6 <= report.frames < 12
    assert "corrupt video packet" in caplog.text
    assert probe(tmp_path / "out.mp4")[0] == report.frames


@pytest.mark.parametrize("case, reason", [
    ("missing", "no such file"),
    ("text", "not a video FFmpeg can read"),
    ("audio_only", "has no video stream"),
    ("empty_range", "no video frames to stylize in that time range"),
    ("empty_folder", "no image files to use as frames"),
    ("extension", "unknown video extension '.gif'"),
    ("same_file", "is the input"),
])
def test_bad_input_one_line_errors(tmp_path, tiny_style, case, reason, capsys):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    args = []
    if case == "text":
        src.write_text("not a video at all")
    elif case == "audio_only":
        src = tmp_path / "sound.m4a"
        with av.open(str(src), "w") as out:
            sound = out.add_stream("aac", rate=SAMPLE_RATE)
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = SAMPLE_RATE, 0
            for packet in [*sound.encode(frame), *sound.encode()]:
                out.mux(packet)
    elif case == "empty_range":
        make_clip(src, frames=6, fps=12)
        args = ["--start", "5"]
    elif case == "empty_folder":
        src = tmp_path / "frames"
        src.mkdir()
    elif case == "extension":
        make_clip(src, frames=2)
        dst = tmp_path / "out.gif"
    elif case == "same_file":
        make_clip(src, frames=2)
        dst = src
    assert main(["video", str(tiny_style), str(src), str(dst), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0], err
    assert not dst.exists() or dst == src
    assert not list(tmp_path.glob(".*part*"))


#: A child process's memory bound (RLIMIT_DATA: its heap and private writable mappings, not the address
#: space that TensorFlow only reserves): a tiny clip needs under 1 GiB, so that a runaway allocation on
#: bad input fails rather than taking the machine's memory.
CHILD_MEMORY = 4 * 2**30
TRUNCATION_WARNING = re.compile(r"only (\d+) of the (\d+) frames its header promises could be read \(truncated\?\)")


def run_fst(*args, timeout=300) -> subprocess.CompletedProcess:
    """Runs the fst command in a child process, bounded in time and memory (a crash is an exit status
    here, not the end of the test run).  On the CPU: a GPU's driver maps memory of its own."""
    def bound_memory():
        resource.setrlimit(resource.RLIMIT_DATA, (CHILD_MEMORY, CHILD_MEMORY))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "fst.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=bound_memory, env=env)


@pytest.mark.slow  # six containers, each encoded and rendered in a child process
@pytest.mark.parametrize("source, codec, audio_codec, options, destination", [
    ("clip.webm", "libvpx-vp9", "libopus", None, "out.webm"),  # the sound copied
    ("clip.webm", "libvpx-vp9", "libopus", None, "out.mp4"),  # copied into another container
    ("clip.mkv", "libx264", "aac", None, "out.webm"),  # re-encoded
    ("clip.mp4", "libx264", "aac", {"movflags": "faststart"}, "out.mkv"),
    ("clip.mov", "libx264", "aac", {"movflags": "faststart"}, "out.mov"),
    ("clip.avi", "mpeg4", "libmp3lame", None, "out.m4v"),
])
def test_truncated_video_with_sound_keeps_what_could_be_read(tmp_path, tiny_style, source, codec, audio_codec,
                                                             options, destination):
    """A clip with sound cut at half its bytes (a download stopped short): the frames before the cut
    are stylized, with one warning line.  This crashed (segfault) while the output's sound stream was
    made from the input's after the reader, done with so short an input, had closed it."""
    src = make_clip(tmp_path / source, frames=12, fps=12, audio=True, codec=codec, audio_codec=audio_codec,
                    options=options)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    dst = tmp_path / destination
    result = run_fst("video", tiny_style, src, dst)
    assert result.returncode == 0, result.stderr[-3000:]
    warning = TRUNCATION_WARNING.search(result.stderr)
    assert warning, result.stderr[-3000:]
    count, width, height, _, _, audio, _ = probe(dst)
    assert 0 < count == int(warning[1]) < int(warning[2]) and (width, height) == (64, 48)
    assert audio is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source, destination])  # no temporary file


def test_truncated_mp4_without_its_index_is_one_line(tmp_path, tiny_style, capsys):
    """An MP4 keeps its index at the end by default: cut short, not one frame can be found."""
    src = make_clip(tmp_path / "clip.mp4", frames=12, fps=12, audio=True)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    assert main(["video", str(tiny_style), str(src), str(tmp_path / "out.webm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fst: error: {src}: truncated before its index (the 'moov' box at the end of an MP4/MOV), "
                   "without which no frame can be read"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_video_cut_before_its_first_frame_is_one_line(tmp_path, tiny_style, capsys):
    src = make_clip(tmp_path / "clip.webm", frames=12, fps=12, codec="libvpx-vp9")
    with av.open(str(src)) as f:
        first = next(p for p in f.demux(video=0) if p.size)
    src.write_bytes(src.read_bytes()[: first.pos + first.size // 2])
    assert main(["video", str(tiny_style), str(src), str(tmp_path / "out.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fst: error: {src}: none of the 12 video frames its header promises could be read (truncated?)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.webm"]


def test_frames_folder_takes_start_and_duration(tmp_path, tiny_style):
    """A folder's frames are 1/fps apart: start and duration pick them by that time, as for a video."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate(photo_frames(10, 64, 48)):
        Image.fromarray(rgb).save(frames / f"{i:03d}.png")
    report = render(tiny_style, frames, tmp_path / "cut.mp4", video=VideoOptions(fps=10, start=0.3, duration=0.5),
                    progress=False)
    count, *_, times, _, _ = probe(tmp_path / "cut.mp4")
    assert report.frames == count == 5
    np.testing.assert_allclose(times, np.arange(5) / 10, atol=1e-3)


def test_unknown_style_fails_before_decoding(tmp_path):
    with pytest.raises(FstError, match="no_such_style"):
        render("no_such_style", tmp_path / "missing.mp4", tmp_path / "out.mp4")


@contextlib.contextmanager
def unfinished_source(path, clip: bytes):
    """A named pipe at path that gives three quarters of a clip, then stays open until the function
    yielded is called (or the block ends): a render reading it cannot reach the end of its input, and so
    cannot finish before a signal sent first, however slowly a loaded machine runs either process.  (Three quarters of a
    48-frame clip is enough for FFmpeg to open it: it reads 20 frames to find the frame rate.)"""
    os.mkfifo(path)
    ended = threading.Event()

    def feed():
        try:
            with open(path, "wb") as pipe:  # opens once the render opens the other end
                pipe.write(clip[: len(clip) * 3 // 4])
                pipe.flush()
                ended.wait(timeout=120)
        except BrokenPipeError:  # the render closed its end first
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield ended.set  # call it to end the input (once the signal is sent)
    finally:
        ended.set()
        feeder.join(timeout=10)


def signal_mid_render(style, tmp_path, signum: int, env: dict) -> tuple[int, str]:
    """Starts `fst video` on an unfinished source, sends signum once the first batch is being
    stylized (its progress bar shows), and returns the exit status and everything it wrote to stderr."""
    clip = make_clip(tmp_path / "clip.mkv", frames=48, fps=12).read_bytes()
    src = tmp_path / "live.mkv"
    with unfinished_source(src, clip) as end_input:
        process = subprocess.Popen([sys.executable, "-m", "fst.cli", "video", str(style), str(src),
                                    str(tmp_path / "out.mp4")], stderr=subprocess.PIPE, text=True, env=env,
                                   preexec_fn=ctrl_c_default)
        err = ""
        for char in iter(lambda: process.stderr.read(1), ""):
            err += char
            if "stylizing" in err:  # frames were decoded and the first batch is under way
                break
        assert list(tmp_path.glob(".out.mp4.*")), err  # the render has its temporary output
        process.send_signal(signum)
        end_input()  # the decoder thread, blocked on the pipe, can then see the end and stop
        err += process.communicate(timeout=120)[1]
    return process.returncode, err


@pytest.mark.slow  # a signal to a child process mid-render
def test_interrupted_render_leaves_no_output(tmp_path, tiny_style):
    """Ctrl-C mid-render: exit 130, and neither the output nor its temporary file is left."""
    code, err = signal_mid_render(tiny_style, tmp_path, signal.SIGINT, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert code == 130 and err.strip().endswith("fst: interrupted"), err
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4.*"))


def test_flicker_metric_on_known_answers():
    """Identity 'stylization': flicker 1 on noisy stills, 0 on a pan once the motion is undone."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("flicker", REPO / "scripts" / "flicker.py")
    flicker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flicker)
    photo = np.asarray(Image.open(VAL_PHOTOS / "000003.jpg").convert("RGB"))
    still = flicker.still_clip(photo[:64, :64], 6, 3.0, seed=0)
    assert flicker.flicker(still, still, 0, 4) == pytest.approx(1.0)
    assert flicker.flicker(still, np.repeat(still[:1], 6, axis=0), 0, 4) == 0.0
    pan = flicker.pan_clip(photo[:64], 64, 6, speed=2)
    assert flicker.flicker(pan, pan, 2, 4) == 0.0
    assert flicker.flicker(pan, pan, 0, 4) > 0.5

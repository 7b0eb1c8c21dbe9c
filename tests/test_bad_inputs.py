"""The catalogue of bad inputs: each one a user can produce, and what fst does with it.

Every case ends in one line, ``fst: error: ...`` with exit status 2, checked before any stylizing
work where it can be (or, inside a folder run, a skipped file and a count); a few are accepted
instead, as said below.  More cases live beside the feature they belong to: test_cli.py (missing,
empty, corrupt files, numeric option ranges), test_video.py (unreadable videos), test_images.py.

    image too large to decode (a 60000x60000 header)   error; in a folder: skipped, counted, rest done
    output name of 241 or 252 characters               accepted (temporary names are shortened)
    output name over 255 bytes                         error before reading the source
    fst video --codec foo, --crf 999, mpeg4 with --crf  error before any frame is decoded
    malformed TOML of a user style                     that style skipped with one warning line
    .weights.h5 of another network                     error, without Keras' warnings
    float array in 0..1 / out of 0..1 / int out of 0..255   accepted as 0..1 / error / error
    fst.run(array, ...) / fst.run(style, array or PIL)  error / accepted
    PIL image with an EXIF orientation                 rotated as the command line rotates files
    SIGTERM during fst video                           temporary output removed, exit 143
    a killed run's temporary output                    swept by the next run to that destination
    a JPEG renamed .mp4                                error: a still image, not a video
    a truncated webm                                   frames kept, one warning line with the count
    train-style --data /nope                           error, no empty run folder left
    folder source, destination o.jpg                   error, nothing created
    destination folder inside the source folder        its images are not stylized again
    destination under a file (unwritable)              error before any image is stylized
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import fst
from fst.cli import main
from fst.errors import FstError

STYLE = "udnie"


def one_error_line(capsys, *reasons: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fst: error: "), err
    assert all(reason in err for reason in reasons), err
    return err


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (with no real pixel data behind it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def small_photo(tmp_path, val_photo):
    path = tmp_path / "photo.png"
    Image.open(val_photo).resize((48, 40)).save(path)
    return path


# Images ----------------------------------------------------------------------------------------


def test_decompression_bomb_is_one_line(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_claiming(60000, 60000))
    assert main(["run", STYLE, str(bomb), str(tmp_path / "out.png")]) == 2
    one_error_line(capsys, "bomb.png: too large to open safely", "3600000000 pixels")
    assert not (tmp_path / "out.png").exists()


def test_decompression_bomb_in_a_folder_is_skipped_and_counted(tmp_path, small_photo, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(small_photo, src / "a.png")
    (src / "b_bomb.png").write_bytes(png_header_claiming(60000, 60000))
    shutil.copy(small_photo, src / "c.png")
    assert main(["run", STYLE, str(src), str(tmp_path / "out")]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    err = capsys.readouterr().err
    assert "b_bomb.png: too large to open safely" in err and "1 of 3 images failed" in err


@pytest.mark.parametrize("length", [241, 252])
def test_long_output_names_are_written(tmp_path, small_photo, length):
    dst = tmp_path / ("n" * (length - 4) + ".png")
    assert main(["run", STYLE, str(small_photo), str(dst)]) == 0
    assert Image.open(dst).size == (48, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dst.name, small_photo.name])  # no temporary left


def test_output_name_too_long_fails_before_reading_the_source(tmp_path, capsys):
    dst = tmp_path / ("n" * 300 + ".png")
    assert main(["run", STYLE, str(tmp_path / "never_read.jpg"), str(dst)]) == 2
    one_error_line(capsys, "file name too long (304 bytes; the limit is 255)")


def test_malformed_user_style_toml_is_skipped_with_one_warning(tmp_path, monkeypatch, capsys, caplog, val_photo):
    from fst.styles import shipped_dir

    monkeypatch.setenv("FST_STYLES_DIR", str(tmp_path))
    shutil.copy(shipped_dir() / "udnie.weights.h5", tmp_path / "broken.weights.h5")
    (tmp_path / "broken.toml").write_text('title = "unterminated\n')
    assert main(["styles"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in fst.list_styles()) and "broken" not in table and "udnie" in table
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and "skipped style 'broken'" in warnings[0].getMessage()  # main, then list_styles
    assert main(["run", "broken", str(val_photo), str(tmp_path / "out.png")]) == 2
    one_error_line(capsys, "broken.toml: invalid style metadata")


def test_weights_of_another_network_are_one_line(tmp_path, capsys, recwarn):
    import h5py

    wrong = tmp_path / "wrong.weights.h5"
    with h5py.File(wrong, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((3, 3), np.float32))
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(photo)
    assert main(["run", str(wrong), str(photo), str(tmp_path / "out.png")]) == 2
    one_error_line(capsys, "wrong.weights.h5: not the weights of an fst style network")
    assert not [w for w in recwarn if "keras" in str(w.filename)]


def test_float_arrays_are_0_to_1_never_posterized(photo_array):
    small = photo_array[:40, :48]
    as_uint8 = fst.stylize(small, STYLE)
    as_float = fst.stylize(small.astype(np.float64) / 255, STYLE)
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 1
    assert np.abs(as_float * 255 - as_uint8).max() <= 1
    with pytest.raises(FstError, match=r"float pixel values must be in 0\.\.1, found 0\.\.\d+; pass uint8"):
        fst.stylize(small.astype(np.float32), STYLE)
    with pytest.raises(FstError, match=r"integer pixel values must be in 0\.\.255, found 0\.\.300"):
        fst.stylize(np.full((8, 8, 3), 300, np.int64) * (np.arange(8)[:, None, None] > 0), STYLE)


def test_run_takes_arrays_and_pil_images_as_source_but_not_as_style(tmp_path, photo_array):
    small = photo_array[:40, :48]
    with pytest.raises(FstError, match="style: expected a style name, a .weights.h5 path, a Style or a runner, "
                                       "not ndarray"):
        fst.run(small, "photo.jpg", tmp_path / "out.png")
    fst.run(STYLE, small, tmp_path / "from_array.png")
    fst.run(STYLE, Image.fromarray(small), tmp_path / "from_pil.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "from_array.png")),
                                  np.asarray(Image.open(tmp_path / "from_pil.png")))
    with pytest.raises(FstError, match="src: expected a file path, a PIL image or a numpy array, not list"):
        fst.run(STYLE, [[1, 2, 3]], tmp_path / "out.png")


def test_pil_input_gets_its_exif_orientation_like_files(tmp_path, photo_array):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    Image.fromarray(photo_array[:40, :64]).save(path, exif=exif)
    from_pil = fst.stylize(Image.open(path), STYLE)
    from_file = fst.stylize(path, STYLE)
    assert from_pil.size == (40, 64) and from_file.shape == (64, 40, 3)
    np.testing.assert_array_equal(np.asarray(from_pil), from_file)


# Folders and destinations ----------------------------------------------------------------------


def test_folder_source_with_an_image_file_destination(tmp_path, small_photo, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(small_photo, src / "a.png")
    assert main(["run", STYLE, str(src), str(tmp_path / "o.jpg")]) == 2
    one_error_line(capsys, "o.jpg: is an image file name; with a folder as input, the output must be a folder")
    assert not (tmp_path / "o.jpg").exists()


def test_destination_inside_the_source_is_not_stylized_again(tmp_path, small_photo):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(small_photo, src / "a.png")
    for _ in range(2):
        assert main(["run", STYLE, str(src), str(src / "stylized")]) == 0
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) == ["a.png", "stylized/a.png"]


def test_unwritable_folder_destination_fails_before_any_work(tmp_path, small_photo, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(small_photo, src / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["run", STYLE, str(src), str(blocker / "out")]) == 2
    one_error_line(capsys, "cannot write", "is not a writable folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "in", "photo.png"]


def test_train_style_with_missing_data_leaves_no_run_folder(tmp_path, capsys):
    painting = tmp_path / "painting.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(painting)
    run_dir = tmp_path / "runs" / "x"
    assert main(["train-style", "--style", str(painting), "--name", "x", "--data", str(tmp_path / "nope"),
                 "--run-dir", str(run_dir), "--out", str(tmp_path / "styles")]) == 2
    one_error_line(capsys, "nope: no such folder of training photos")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "styles").exists()


# Video -----------------------------------------------------------------------------------------

av = pytest.importorskip("av")


def clip(tmp_path, name="clip.mp4", frames=6, **kwargs):
    from test_video import make_clip

    return make_clip(tmp_path / name, frames=frames, **kwargs)


@pytest.mark.parametrize("args, reason", [
    (["--codec", "foo"], "video encoder 'foo' cannot write .mp4; choose libx264"),
    (["--codec", "libvpx-vp9"], "video encoder 'libvpx-vp9' cannot write .mp4"),
    (["--crf", "999"], "crf for libx264 must be between 0 and 51, not 999"),
    (["--crf", "-1"], "crf for libx264 must be between 0 and 51, not -1"),
    (["--codec", "mpeg4", "--crf", "20"], "the mpeg4 encoder takes no crf"),
])
def test_video_encoder_options_fail_before_any_frame(tmp_path, capsys, args, reason):
    """The source does not even exist: the encoder is checked first."""
    assert main(["video", STYLE, str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4"), *args]) == 2
    one_error_line(capsys, reason)


def test_video_crf_in_range_is_used(tmp_path):
    from fst.video import render

    src = clip(tmp_path, size=(64, 48))
    sizes = [render(STYLE, src, tmp_path / f"crf{crf}.webm", crf=crf, progress=False) and
             (tmp_path / f"crf{crf}.webm").stat().st_size for crf in (10, 60)]
    assert sizes[0] > sizes[1]


def test_jpeg_renamed_mp4_is_not_a_video(tmp_path, val_photo, capsys):
    fake = tmp_path / "photo.mp4"
    shutil.copy(val_photo, fake)
    assert main(["video", STYLE, str(fake), str(tmp_path / "out.mp4")]) == 2
    one_error_line(capsys, "photo.mp4: is a still image (mjpeg), not a video; use 'fst run' for images")
    assert not (tmp_path / "out.mp4").exists()


def test_truncated_webm_warns_with_the_count(tmp_path, caplog):
    from fst.video import render

    src = clip(tmp_path, "clip.webm", frames=50, fps=25, size=(64, 48), codec="libvpx-vp9")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 6 // 10])  # the first key frame and some frames after it
    report = render(STYLE, src, tmp_path / "out.mp4", progress=False)
    assert 0 < report.frames < 50 and report.expected_frames == 50
    assert f"only {report.frames} of the 50 frames its header promises could be read" in caplog.text


def test_sigterm_during_video_leaves_no_temporary_file(tmp_path):
    from test_video import make_clip

    src = make_clip(tmp_path / "long.mp4", frames=240, size=(256, 192), fps=24)
    dst = tmp_path / "out.mp4"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    process = subprocess.Popen([sys.executable, "-m", "fst", "video", STYLE, str(src), str(dst)],
                               stderr=subprocess.PIPE, text=True, env=env)
    for _ in iter(lambda: process.stderr.read(1), ""):
        if list(tmp_path.glob(".out.mp4.*")):  # the render has begun writing
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and err.strip().endswith("fst: terminated"), err
    assert not dst.exists() and not list(tmp_path.glob(".out.mp4.*"))


def test_a_killed_runs_temporary_output_is_swept_next_time(tmp_path):
    from fst.files import sweep_temporaries
    from fst.video import render

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    killed = tmp_path / f".out.mp4.{dead_pid}.0123abcd.mp4"
    killed.write_bytes(b"half a video")
    killed_frames = tmp_path / f".out.mp4.{dead_pid}.4567cdef.part"
    killed_frames.mkdir()
    running = tmp_path / f".out.mp4.{os.getpid()}.89abcdef.mp4"  # a run still going: left alone
    running.write_bytes(b"being written")
    render(STYLE, clip(tmp_path, frames=2), tmp_path / "out.mp4", progress=False)
    assert (tmp_path / "out.mp4").stat().st_size > 0
    assert not killed.exists() and not killed_frames.exists() and running.exists()
    assert sweep_temporaries(tmp_path / "out.mp4") == 0


def test_unwritable_video_destination_fails_before_decoding(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["video", STYLE, str(tmp_path / "missing.mp4"), str(blocker / "out.mp4")]) == 2
    one_error_line(capsys, "cannot write", "is not a writable folder")


# Serve (issue 34) ------------------------------------------------------------------------------


@pytest.fixture
def styles_never_loaded(monkeypatch):
    """fst serve checks --port and --host before it loads the styles (seconds each), and fails fast."""
    serve_app = pytest.importorskip("fst.serve.app", reason="fst serve needs the serve extra")

    def refuse(*args, **kwargs):
        pytest.fail("the styles were loaded before the port and host were checked")

    monkeypatch.setattr(serve_app, "create_app", refuse)


@pytest.mark.parametrize("port, reason", [
    ("70000", "--port must be from 0 to 65535, not 70000"),
    ("-1", "--port must be from 0 to 65535, not -1"),
    ("eighty", "--port must be a number from 0 to 65535, not 'eighty'"),
])
def test_serve_port_out_of_range_or_not_a_number(styles_never_loaded, capsys, port, reason):
    assert main(["serve", "--port", port]) == 2
    one_error_line(capsys, reason)


def test_serve_port_in_use(styles_never_loaded, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    one_error_line(capsys, f"cannot listen on 127.0.0.1 port {port}", "in use", "--port 0 picks a free one")


@pytest.mark.parametrize("host, reason", [
    ("no-such-host.invalid", "--host no-such-host.invalid: cannot resolve it"),
    ("192.0.2.1", "cannot listen on 192.0.2.1 port 8000 (Cannot assign requested address)"),
], ids=["unresolvable", "not-this-machine"])
def test_serve_host_that_cannot_be_resolved_or_bound(styles_never_loaded, capsys, host, reason):
    assert main(["serve", "--host", host, "--port", "8000"]) == 2
    one_error_line(capsys, reason)


# Video (issue 34) ------------------------------------------------------------------------------


@pytest.mark.parametrize("args, reason", [
    (["--fps", "nan"], "fps must be from 0.001 to 10000, not nan"),
    (["--fps", "inf"], "fps must be from 0.001 to 10000, not inf"),
    (["--fps=-inf"], "fps must be from 0.001 to 10000, not -inf"),
    (["--fps", "-1"], "fps must be from 0.001 to 10000, not -1.0"),
    (["--fps", "0.0001"], "fps must be from 0.001 to 10000, not 0.0001"),  # a rate that rounds to 0
    (["--fps", "1e12"], "fps must be from 0.001 to 10000, not 1000000000000.0"),
    (["--start", "nan"], "start must be from 0 to 1,000,000,000 seconds, not nan"),
    (["--start", "inf"], "start must be from 0 to 1,000,000,000 seconds, not inf"),
    (["--start=-inf"], "start must be from 0 to 1,000,000,000 seconds, not -inf"),
    (["--start", "-1"], "start must be from 0 to 1,000,000,000 seconds, not -1.0"),
    (["--start", "1e300"], "start must be from 0 to 1,000,000,000 seconds, not 1e+300"),
    (["--duration", "nan"], "duration must be a number of seconds over 0, not nan"),
    (["--duration", "inf"], "duration must be a number of seconds over 0, not inf"),
    (["--duration", "-1"], "duration must be a number of seconds over 0, not -1.0"),
    (["--duration", "0"], "duration must be a number of seconds over 0, not 0.0"),
    (["--strength", "nan"], "strength must be between 0 and 1, not nan"),
    (["--strength", "inf"], "strength must be between 0 and 1, not inf"),
    (["--strength", "-1"], "strength must be between 0 and 1, not -1.0"),
    (["--stroke-scale", "nan"], "stroke scale must be between 1 and 64, not nan"),
    (["--stroke-scale", "inf"], "stroke scale must be between 1 and 64, not inf"),
    (["--stroke-scale", "-1"], "stroke scale must be between 1 and 64, not -1.0"),
])
@pytest.mark.parametrize("source", ["video", "folder"])
def test_video_float_options_out_of_range_are_one_line(tmp_path, small_photo, capsys, args, reason, source):
    """NaN, infinity, negative and unusable values of every float option of fst video, for a video
    and for a folder of frames (where --fps applies): one line before any frame is stylized."""
    if source == "video":
        src = clip(tmp_path, frames=3)
    else:
        src = tmp_path / "frames"
        src.mkdir()
        shutil.copy(small_photo, src / "000.png")
    assert main(["video", STYLE, str(src), str(tmp_path / "out.mp4"), *args]) == 2
    one_error_line(capsys, reason)
    assert not (tmp_path / "out.mp4").exists()

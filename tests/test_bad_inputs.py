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
    /dev/zero, /dev/urandom, endless stdin             error at 512 MiB read (memory and time bound)
    a FIFO that no program writes to                   error: empty input, no hang
    stdout a closed pipe or /dev/full                  error, exit 2 (not exit 0 or a traceback)
    a style name with / .. . spaces or over 64 chars   error before any work (train, copy, export, serve)
    training under a shipped style's name              error unless --replace; `fst styles` marks it
    FST_STYLES_DIR naming a file                       error
    fst run STYLE src src / x.tflite / x.xml alone     error naming what is wrong
    --format png with a .jpg destination               error
    fst.run(strength="0.5" / True, format="png")       error naming the option, not Options.__init__
    config steps = "abc", out-of-range values          error, no run folder left
    fst optimize --max-size 0                          error before VGG19 loads
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


# Endless and odd sources, and standard output ----------------------------------------------------


#: Runs `python -m fst ARGS` with its data segment limited to 3 GiB and prints its peak resident memory (MiB).
BOUNDED = ("import resource, subprocess, sys\n"
           "resource.setrlimit(resource.RLIMIT_DATA, (3 * 2**30, 3 * 2**30))\n"
           "code = subprocess.run([sys.executable, '-m', 'fst', *sys.argv[1:]], stdout=subprocess.DEVNULL).returncode\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
           "sys.exit(code)\n")


def user_env() -> dict:
    """The environment a user has: without the TensorFlow log level that in-process `main` calls set here."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def bounded_fst(*args: str, stdin=None, timeout: float = 60) -> tuple[int, str, int]:
    """`fst ARGS` with a memory and a time bound (a crash case must not take the machine with it);
    returns its exit status, its stderr and its peak resident memory in MiB."""
    done = subprocess.run([sys.executable, "-c", BOUNDED, *args], stdin=stdin, capture_output=True, text=True,
                          timeout=timeout, env=user_env())
    return done.returncode, done.stderr, int(done.stdout.split()[-1])


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "stdin"])
def test_endless_sources_are_refused_at_the_largest_image_size(source, tmp_path):
    """/dev/zero used to grow to 10 GB until the OS killed fst: a stream is read up to the largest file fst
    reads (512 MiB), then refused in one line."""
    if source == "stdin":
        with open("/dev/zero", "rb") as zero:
            code, err, peak = bounded_fst("run", STYLE, "-", str(tmp_path / "o.png"), stdin=zero)
    else:
        code, err, peak = bounded_fst("run", STYLE, source, str(tmp_path / "o.png"))
    name = "<stdin>" if source == "stdin" else source
    assert code == 2 and err == f"fst: error: {name}: more than 512 MiB, larger than any image fst reads\n", err
    assert peak < 2048 and not list(tmp_path.iterdir())


def test_fifo_with_no_writer_is_empty_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err, _ = bounded_fst("run", STYLE, str(fifo), str(tmp_path / "o.png"), timeout=30)
    assert code == 2 and err == f"fst: error: {fifo}: empty input (0 bytes)\n", err


def test_stdin_errors_name_stdin(monkeypatch, capsys, tmp_path):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"not an image")))
    assert main(["run", STYLE, "-", str(tmp_path / "o.png")]) == 2
    one_error_line(capsys, "<stdin>: not an image")


@pytest.mark.slow  # a child process: its broken pipe and full disk are the point
@pytest.mark.parametrize("reader", ["closed pipe", "/dev/full"])
def test_stdout_that_cannot_be_written_is_an_error(reader, small_photo):
    """A broken pipe exited 0 (and /dev/full gave a traceback): the image did not arrive, so it is an error."""
    command = [sys.executable, "-m", "fst", "run", STYLE, str(small_photo), "-"]
    if reader == "/dev/full":
        with open("/dev/full", "wb") as full:
            done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=user_env())
        code, err = done.returncode, done.stderr
    else:
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will read: the first write fails with EPIPE
        process = subprocess.Popen(command, stdout=write_end, stderr=subprocess.PIPE, text=True, env=user_env())
        os.close(write_end)
        err = process.communicate(timeout=120)[1]
        code = process.returncode
    assert code == 2 and err.startswith("fst: error: standard output: cannot write the image (") \
        and err.count("\n") == 1, err


# Names, folders and options ----------------------------------------------------------------------


@pytest.fixture
def painting(tmp_path):
    path = tmp_path / "painting.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("name", ["../../../../../evil", "a/b", "with space", ".hidden", "x" * 65, "dots.in.it"])
def test_train_style_name_must_be_plain(name, painting, tmp_path, monkeypatch, capsys):
    """--name ../../evil wrote evil.weights.h5 outside the style folder and a run folder outside runs/."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(tmp_path.rglob("*"))
    assert main(["train-style", "--style", str(painting), "--name", name, "--data", str(tmp_path),
                 "--steps", "1"]) == 2
    one_error_line(capsys, f"style name {name!r}: use letters, digits, '_' and '-'")
    assert sorted(tmp_path.rglob("*")) == before


def test_style_names_are_plain_wherever_a_name_is_taken(tmp_path, tiny_style):
    """Saving, copying, exporting and serving take the same plain names as training."""
    from fst import styles
    from fst.runners import export

    odd = tmp_path / "odd name.weights.h5"
    shutil.copy(tiny_style, odd)
    with pytest.raises(FstError, match="style name 'odd name'"):
        styles.copy_style(odd, tmp_path / "copies")
    with pytest.raises(FstError, match="style name 'odd name'"):
        export.export(odd, format="onnx")
    with pytest.raises(FstError, match=r"style name '\.\./x'"):
        styles.save_style(None, "../x", {}, tmp_path / "saved")
    serve_app = pytest.importorskip("fst.serve.app")
    with pytest.raises(FstError, match=r"style name '\.\./tiny'"):
        serve_app.create_app(["../tiny"])
    assert not (tmp_path / "copies").exists() and not (tmp_path / "saved").exists()
    assert not list(tmp_path.glob("*.onnx"))


def test_a_style_file_with_an_odd_name_is_skipped_with_a_warning(tmp_path, tiny_style, monkeypatch, caplog):
    from fst import styles

    monkeypatch.setenv("FST_STYLES_DIR", str(tmp_path))
    shutil.copy(tiny_style, tmp_path / "fine.weights.h5")
    shutil.copy(tiny_style, tmp_path / "not fine.weights.h5")
    assert styles.list_styles().count("fine") == 1 and "not fine" not in styles.list_styles()
    assert "skipped" in caplog.text and "not fine.weights.h5" in caplog.text


def test_training_over_a_shipped_name_asks_for_replace(painting, tmp_path, capsys):
    """Training configs/udnie.toml replaced the shipped udnie in the user's folder without a word."""
    from fst import styles

    assert main(["train-style", "--style", str(painting), "--name", STYLE, "--data", str(tmp_path),
                 "--run-dir", str(tmp_path / "run"), "--steps", "1"]) == 2
    one_error_line(capsys, f"'{STYLE}' is a shipped style", "--replace", "--name", "--out")
    assert not (tmp_path / "run").exists() and not (styles.user_dir() / f"{STYLE}.weights.h5").exists()


def test_a_user_style_in_place_of_a_shipped_one_is_marked(tmp_path, tiny_style, monkeypatch, capsys):
    monkeypatch.setenv("FST_STYLES_DIR", str(tmp_path))
    shutil.copy(tiny_style, tmp_path / f"{STYLE}.weights.h5")
    shutil.copy(tiny_style.with_suffix("").with_suffix(".toml"), tmp_path / f"{STYLE}.toml")
    assert main(["styles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (mine,) = [line for line in lines if line.startswith(STYLE)]
    assert mine.startswith(f"{STYLE}*") and "Test Pattern" in mine  # the user style's own credits
    assert lines[-1].startswith(f"* your own network from {tmp_path}, used in place of the shipped style")


def test_styles_dir_that_is_a_file_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("FST_STYLES_DIR", str(tmp_path / "file"))
    assert main(["styles"]) == 2
    one_error_line(capsys, "is a file, not a folder of styles")


def test_folder_into_itself(tmp_path, small_photo, capsys):
    """`fst run udnie src src` said "no images found" though src had images."""
    assert main(["run", STYLE, str(tmp_path), str(tmp_path)]) == 2
    one_error_line(capsys, "is the input folder; write the stylized images into another folder")


@pytest.mark.parametrize("model, reason", [
    ("x.tflite", "x.tflite: not a style fst can run; give a style name"),
    ("x.pt", "x.pt: not a style fst can run"),
    ("x.xml", "its weights file x.bin is missing"),
])
def test_models_fst_cannot_run_are_named(model, reason, tmp_path, small_photo, capsys, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.chdir(tmp_path)
    (tmp_path / model).write_text("<net/>")
    assert main(["run", model, str(small_photo), str(tmp_path / "o.png")]) == 2
    one_error_line(capsys, reason)
    assert "did you mean" not in capsys.readouterr().err


def test_format_that_disagrees_with_the_destination(tmp_path, small_photo, capsys):
    assert main(["run", STYLE, str(small_photo), str(tmp_path / "o.jpg"), "--format", "png"]) == 2
    one_error_line(capsys, "o.jpg: its extension sets the format, which is not png")
    assert not (tmp_path / "o.jpg").exists()


def test_replacing_the_input_message(small_photo, capsys):
    assert main(["run", STYLE, str(small_photo), str(small_photo)]) == 2
    one_error_line(capsys, "is the input file; to replace it, pass --overwrite (overwrite=True in Python)")


@pytest.mark.parametrize("options, reason", [
    ({"strength": "0.5"}, "strength must be a number, not '0.5'"),
    ({"strength": True}, "strength must be a number, not True"),
    ({"max_size": 512.5}, "max_size must be a whole number, not 512.5"),
    ({"preserve_color": "yes"}, "preserve_color must be True or False"),
    ({"format": "png"}, "run() has no option 'format' (options: max_size, strength"),
])
def test_api_options_of_the_wrong_kind(options, reason, tmp_path, small_photo):
    with pytest.raises(FstError) as error:
        fst.run(STYLE, small_photo, tmp_path / "o.png", **options)
    assert reason in str(error.value) and "__init__" not in str(error.value)
    assert not (tmp_path / "o.png").exists()


def test_float_pixels_just_over_one_say_by_how_much():
    with pytest.raises(FstError, match=r"found 0\.25\.\.1\.0000001;"):
        fst.stylize(np.array([[[0.25, 0.5, 1.0000001]]]), STYLE)


def test_the_test_session_leaves_no_style_folder_behind(tmp_path):
    """Every test session left an fst-test-styles-* folder in the system's temporary folder."""
    from conftest import REPO

    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                           str(REPO / "tests" / "test_images.py")], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=REPO)
    assert done.returncode == 0, done.stdout[-500:]
    assert not list(tmp_path.glob("fst-test-styles-*"))


# Training configs -------------------------------------------------------------------------------


@pytest.mark.parametrize("line, reason", [
    ('steps = "abc"', "steps must be a whole number, not 'abc'"),
    ("steps = 1.5", "steps must be a whole number, not 1.5"),
    ("style_weight = true", "style_weight must be a number, not True"),
    ('style_layers = "block1_conv1"', "style_layers must be a list of texts"),
    ("jit_compile = 1", "jit_compile must be true or false, not 1"),
])
def test_config_value_of_the_wrong_kind(line, reason, painting, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(f'name = "c"\nstyle_image = "{painting}"\n{line}\n')
    assert main(["train-style", str(config), "--data", str(tmp_path), "--run-dir", str(tmp_path / "run")]) == 2
    one_error_line(capsys, reason)
    assert not (tmp_path / "run").exists()


def test_config_values_out_of_range_leave_nothing(painting, tmp_path, monkeypatch, capsys):
    """`--learning-rate -1 --image-size 3 --batch-size 0` raised a ValueError and left runs/w."""
    monkeypatch.chdir(tmp_path)
    for args, reason in [(["--learning-rate", "-1"], "learning_rate must be zero or more, not -1.0"),
                         (["--image-size", "3"], "image_size must be at least 16 pixels, not 3"),
                         (["--batch-size", "0"], "batch_size must be at least 1, not 0"),
                         (["--checkpoint-every", "0"], "checkpoint_every must be at least 1, not 0"),
                         (["--tv-weight", "nan"], "tv_weight must be zero or more, not nan"),
                         (["--image-size", "64", "--stability-shift", "32"],
                          "stability_shift must be from 0 to 31 pixels at image_size 64, not 32"),
                         (["--stability-still-weight", "100"],
                          "stability_still_weight needs stability_shift: without a shift, stability_weight is "
                          "the still term")]:
        assert main(["train-style", "--style", str(painting), "--name", "w", "--data", str(tmp_path), *args]) == 2
        one_error_line(capsys, reason)
    assert not (tmp_path / "runs").exists()


def test_train_style_help_shows_real_defaults():
    done = subprocess.run([sys.executable, "-m", "fst", "train-style", "--help"], capture_output=True, text=True,
                          env=user_env())
    assert done.returncode == 0 and "else )" not in done.stdout and "(default: the config's, else none)" in done.stdout


@pytest.mark.parametrize("args, reason", [
    (["--max-size", "0"], "max_size must be at least 16 pixels, not 0"),
    (["--coarse-size", "4"], "coarse_size must be at least 16 pixels, not 4"),
    (["--style-scale", "0"], "style_scale must be a positive number, not 0.0"),
])
def test_optimize_sizes_too_small_for_vgg(args, reason, tmp_path, small_photo, painting, capsys):
    """`fst optimize --max-size 0` ended in a TensorFlow AbortedError."""
    assert main(["optimize", str(small_photo), str(painting), str(tmp_path / "o.png"), "--iterations", "2",
                 *args]) == 2
    one_error_line(capsys, reason)


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
    from fst.video import VideoOptions, render

    src = clip(tmp_path, size=(64, 48))
    sizes = [render(STYLE, src, tmp_path / f"crf{crf}.webm", video=VideoOptions(crf=crf), progress=False) and
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


@pytest.mark.slow  # a signal to a child process mid-render
def test_sigterm_during_video_leaves_no_temporary_file(tmp_path):
    """SIGTERM mid-render (the source never ends before it, see test_video.unfinished_source)."""
    from test_video import signal_mid_render

    code, err = signal_mid_render(STYLE, tmp_path, signal.SIGTERM, user_env())
    assert code == 143 and err.strip().endswith("fst: terminated"), err
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4.*"))


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
    (["--fps", "nan"], "fps must be between 0.001 and 10,000, not nan"),
    (["--fps", "inf"], "fps must be between 0.001 and 10,000, not inf"),
    (["--fps=-inf"], "fps must be between 0.001 and 10,000, not -inf"),
    (["--fps", "-1"], "fps must be between 0.001 and 10,000, not -1.0"),
    (["--fps", "0.0001"], "fps must be between 0.001 and 10,000, not 0.0001"),  # a rate that rounds to 0
    (["--fps", "1e12"], "fps must be between 0.001 and 10,000, not 1000000000000.0"),
    (["--start", "nan"], "start must be between 0 and 1,000,000,000 seconds, not nan"),
    (["--start", "inf"], "start must be between 0 and 1,000,000,000 seconds, not inf"),
    (["--start=-inf"], "start must be between 0 and 1,000,000,000 seconds, not -inf"),
    (["--start", "-1"], "start must be between 0 and 1,000,000,000 seconds, not -1.0"),
    (["--start", "1e300"], "start must be between 0 and 1,000,000,000 seconds, not 1e+300"),
    (["--duration", "nan"], "duration must be over 0 seconds, not nan"),
    (["--duration", "inf"], "duration must be over 0 seconds, not inf"),
    (["--duration", "-1"], "duration must be over 0 seconds, not -1.0"),
    (["--duration", "0"], "duration must be over 0 seconds, not 0.0"),
    (["--strength", "nan"], "strength must be between 0 and 1, not nan"),
    (["--strength", "inf"], "strength must be between 0 and 1, not inf"),
    (["--strength", "-1"], "strength must be between 0 and 1, not -1.0"),
    (["--stroke-scale", "nan"], "stroke scale must be 'auto' or between 1 and 64, not nan"),
    (["--stroke-scale", "inf"], "stroke scale must be 'auto' or between 1 and 64, not inf"),
    (["--stroke-scale", "-1"], "stroke scale must be 'auto' or between 1 and 64, not -1.0"),
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

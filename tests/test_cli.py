"""The fst command: one-line errors, folders, stdin/stdout, the styles table."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fst
from fst.cli import main


def fst_cmd(*args, stdin=None):
    """Runs the real command in a subprocess (to see exit codes and stderr as a user does)."""
    return subprocess.run([sys.executable, "-m", "fst.cli", *map(str, args)], input=stdin,
                          capture_output=True, env=os.environ.copy())


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.fixture
def photos(tmp_path, val_photo):
    """A folder of three small photos (one in a subfolder) and one corrupt file."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.jpg", "b.png", "sub/c.jpg"]):
        Image.open(val_photo).resize((48 + 4 * i, 40)).save(folder / name)
    write(folder / "broken.jpg", val_photo.read_bytes()[:2000])
    return folder


def test_run_file(tiny_style, val_photo, tmp_path):
    out = tmp_path / "deep" / "out.png"
    assert main(["run", "tiny", str(val_photo), str(out), "--max-size", "64"]) == 0
    assert Image.open(out).size == (64, 64)


def test_folder_with_one_corrupt_file(tiny_style, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "tiny", str(photos), str(out), "--format", "png"]) == 1
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert made == ["a.png", "b.png", "sub/c.png"]
    assert "broken.jpg" in capsys.readouterr().err


@pytest.mark.slow  # a child process with real standard input and output
def test_stdin_to_stdout(tiny_style, val_photo):
    result = fst_cmd("run", tiny_style, "-", "-", "--format", "png", "--max-size", "32",
                     stdin=val_photo.read_bytes())
    assert result.returncode == 0, result.stderr
    assert result.stdout[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "case,reason",
    [
        ("missing", "no such file"),
        ("directory", "is a directory"),
        ("text", "not an image"),
        ("truncated", "truncated"),
        ("empty", "empty file"),
        ("unknown_style", "did you mean tiny"),
        ("unwritable", "cannot write"),
        ("extension", "no image writer"),
        ("empty_folder", "no images found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_style, val_photo, tmp_path, case, reason):
    style, src, dst = "tiny", val_photo, tmp_path / "out.png"
    if case == "missing":
        src = tmp_path / "nope.jpg"
    elif case == "directory":
        dst = tmp_path / "existing_folder"
        dst.mkdir()
    elif case == "text":
        src = write(tmp_path / "notes.jpg", b"just text")
    elif case == "truncated":
        src = write(tmp_path / "cut.jpg", val_photo.read_bytes()[:3000])
    elif case == "empty":
        src = write(tmp_path / "zero.jpg", b"")
    elif case == "unknown_style":
        style = "tinny"
    elif case == "unwritable":
        dst = write(tmp_path / "file", b"x") / "out.png"
    elif case == "extension":
        dst = tmp_path / "out.xyz"
    elif case == "empty_folder":
        src = tmp_path / "nothing"
        src.mkdir()
        dst = tmp_path / "outdir"
    result = fst_cmd("run", style, src, dst)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("fst: error:") and reason in err, err
    assert "Traceback" not in err
    assert not dst.is_file()


def test_styles_table_and_help(tiny_style, capsys):
    assert main(["styles"]) == 0
    table = capsys.readouterr().out
    assert "tiny" in table and "Test Pattern" in table and "public domain" in table
    for args in (["--help"], ["run", "--help"], ["styles", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_source_is_protected(tiny_style, tmp_path, val_photo):
    src = tmp_path / "photo.png"
    Image.open(val_photo).resize((32, 32)).save(src)
    before = src.read_bytes()
    assert main(["run", "tiny", str(src), str(src)]) == 2
    assert src.read_bytes() == before
    assert main(["run", "tiny", str(src), str(src), "--overwrite"]) == 0
    assert src.read_bytes() != before
    assert np.asarray(Image.open(src)).shape == (32, 32, 3)


def test_python_m_fst_and_commands_that_need_no_tensorflow():
    """`python -m fst` is the command; listing styles, help and the version never load a Keras backend
    (nor the web server's packages)."""
    version = subprocess.run([sys.executable, "-m", "fst", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"fst {fst.__version__}"
    script = ("import sys\nfrom fst.cli import main\nfor args in (['styles'], ['--help'], ['--version'], "
              "['run', '--help'], ['video', '--help'], ['train-style', '--help'], ['optimize', '--help'], "
              "['serve', '--help']):\n    try:\n        main(args)\n    except SystemExit:\n        pass\n"
              "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch', 'fastapi', 'uvicorn')"
              " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "[]", done.stdout[-500:] + done.stderr[-500:]


@pytest.mark.parametrize("option,value,reason", [
    ("--max-size", "-5", "max size must be at least 1 pixel"),
    ("--max-size", "0", "max size must be at least 1 pixel"),
    ("--tile-size", "3", "tile size must be at least 64 pixels"),
    ("--tile-size", "0", "tile size must be at least 64 pixels"),
    ("--quality", "0", "quality must be between 1 and 100"),
    ("--quality", "1000", "quality must be between 1 and 100"),
    ("--strength", "1.5", "strength must be between 0 and 1"),
    ("--stroke-scale", "0.5", "stroke scale must be 'auto' or between 1 and 64"),
])
def test_out_of_range_numbers_are_one_line_errors_before_any_work(tiny_style, tmp_path, option, value, reason):
    """Checked before the source is even read: a missing source is not what the error names."""
    result = fst_cmd("run", "tiny", tmp_path / "not_read.jpg", tmp_path / "out.png", option, value)
    err = result.stderr.decode()
    assert result.returncode == 2 and err.count("\n") == 1 and err.startswith("fst: error:") and reason in err, err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow  # a child process: its standard error is the point
def test_run_prints_nothing_on_stderr(val_photo, tmp_path):
    """TensorFlow's start-up lines (absl, oneDNN, CUDA, cuInit) are held back; the user's own log level wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "fst", "run", "great_wave", str(val_photo), str(tmp_path / "out.jpg")],
                          capture_output=True, env=env)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()[-2000:]
    assert Image.open(tmp_path / "out.jpg").size == Image.open(val_photo).size


@pytest.mark.slow  # a child process that loads TensorFlow
def test_a_user_log_level_shows_tensorflows_lines():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    done = subprocess.run([sys.executable, "-c", "from fst.quiet import load_keras; load_keras()"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "All log messages before absl::InitializeLog()" in done.stderr, done.stderr


def test_held_back_stderr_passes_real_messages_through(capfd):
    """Only the known start-up noise is dropped: anything else written to fd 2 meanwhile still shows."""
    from fst.quiet import quietly

    with quietly():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1795788547.893058   30985 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1795788555.481175   30985 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
        os.write(2, b"E0000 00:00:1795788555.481175   30985 other.cc:1] a real error\n")
        os.write(2, b"something else\n")
    assert capfd.readouterr().err == "E0000 00:00:1795788555.481175   30985 other.cc:1] a real error\nsomething else\n"


def test_every_option_shows_its_default():
    import argparse

    from fst.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                if "default" not in formatter._get_help_string(action):
                    missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing


def test_images_of_many_sizes_give_the_same_pixels(val_photo):
    """One compiled function serves every image size (tests/test_tiling.py checks that nothing is
    traced again); the pixels do not depend on what ran before."""
    from fst.runners import open_runner

    photo = np.asarray(Image.open(val_photo).convert("RGB"))
    runner = open_runner("udnie")
    first = fst.stylize(photo[:100, :120], runner)
    for h, w in [(64, 80), (96, 52), (100, 120), (130, 70)]:
        out = fst.stylize(photo[:h, :w], runner)
        assert out.shape == (h, w, 3)
    assert np.abs(out.astype(int) - fst.stylize(photo[:130, :70], runner)).max() == 0
    assert np.abs(first.astype(int) - fst.stylize(photo[:100, :120], runner)).max() <= 1


def test_stylize_flags_and_server_parameters_come_from_the_options():
    """Each stylize option is declared once (fst.options): fst run's and fst video's flags and the
    server's parameters carry its default, range and help."""
    import argparse
    import dataclasses

    from fst.cli import build_parser
    from fst.options import StylizeOptions

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("run", "video"):
        actions = {a.dest: a for a in commands[command]._actions}
        for f in dataclasses.fields(StylizeOptions):
            assert (actions[f.name].default, actions[f.name].help) == (f.default, f.metadata["help"]), command
    pytest.importorskip("fastapi")
    from fst.serve.app import StylizeParams

    schema = StylizeParams.model_json_schema()["properties"]
    assert (schema["strength"]["minimum"], schema["strength"]["maximum"]) == (0.0, 1.0)
    assert schema["stroke_scale"]["anyOf"][1]["maximum"] == 64.0 and schema["stroke_scale"]["default"] == "auto"
    assert schema["preserve_color"]["description"] == StylizeOptions.__dataclass_fields__["preserve_color"].metadata["help"]

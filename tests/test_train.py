"""Training: losses fall, kill-and-resume, two logical devices, JAX, bad photos, one-line errors."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, as in fst.training.config
    import tomli as tomllib

import h5py
import numpy as np
import pytest
from conftest import SHARED, VAL_PHOTOS
from PIL import Image

pytestmark = pytest.mark.slow  # training runs

VGG = SHARED / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
PAINTING = SHARED / "data" / "styles" / "starry_night.jpg"
TINY = ["--image-size", "64", "--batch-size", "2", "--width", "0.25", "--style-size", "128",
        "--workers", "1", "--preview-every", "100000"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve validation photos in a scratch folder (the rest of val stays held out)."""
    folder = tmp_path_factory.mktemp("photos")
    for i in range(1, 13):
        shutil.copy(VAL_PHOTOS / f"{i:06d}.jpg", folder / f"{i:06d}.jpg")
    return folder


def train_cmd(tmp_path, data, *args, env=None, **popen):
    """The fst train-style command line for a tiny run into tmp_path."""
    command = [sys.executable, "-m", "fst.cli", "train-style", "--name", "t", "--style", str(PAINTING),
               "--data", str(data), "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out"),
               "--vgg-weights", str(VGG), *TINY, *map(str, args)]
    return command, {**os.environ, **(env or {})}


def run_train(tmp_path, data, *args, env=None):
    command, env = train_cmd(tmp_path, data, *args, env=env)
    return subprocess.run(command, capture_output=True, text=True, env=env)


def read_weights(path):
    with h5py.File(path, "r") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def held_out_style_loss(weights_path):
    """Mean style term of a style's outputs on held-out val photos (at 64 px)."""
    from fst.images import load_painting
    from fst.styles import load_model
    from fst.training.losses import PerceptualLoss
    from fst.training.objective import LossConfig

    loss = PerceptualLoss(LossConfig(style_weight=1.0, tv_weight=0.0), str(VGG))
    loss.set_style(load_painting(str(PAINTING), 128))
    photos = np.stack([np.asarray(Image.open(VAL_PHOTOS / f"{i:06d}.jpg").resize((64, 64)))
                       for i in range(41, 51)]).astype("float32")
    content, _ = loss.features(photos)
    out = load_model(weights_path).predict_on_batch(photos)
    return float(loss(out, content)["style"])


def test_training_lowers_the_losses(tmp_path, photos):
    from fst.training.config import TrainConfig
    from fst.training.train import train_style

    config = TrainConfig.load(None, name="fall", style_image=str(PAINTING), steps=40, checkpoint_every=10,
                              preview_every=20, image_size=64, batch_size=2, width=0.25, style_size=128, workers=1)
    style = train_style(config, photos, run_dir=tmp_path / "run", out_dir=tmp_path / "out",
                        vgg_weights=str(VGG), preview_data=VAL_PHOTOS, verbose=False)
    header, *rows = (tmp_path / "run" / "losses.csv").read_text().splitlines()
    assert header.startswith("epoch,content,loss,stability,style,tv")
    losses = [float(r.split(",")[2]) for r in rows]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], losses
    assert style.meta["figures"]["steps"] == 40 and style.artist == ""
    assert style.meta["figures"]["photos"] == 12 and style.meta["figures"]["data"] == str(photos.resolve())
    previews = sorted(p.name for p in (tmp_path / "run" / "previews").iterdir())
    assert previews == ["preview_0000020.png", "preview_0000040.png"]
    assert any((tmp_path / "run" / "logs" / "train").iterdir())

    import keras

    from fst.network import build_network
    from fst.styles import save_style

    keras.utils.set_random_seed(0)
    untrained = save_style(build_network(width=0.25), "untrained", {}, tmp_path / "out",
                           {"upsampling": "transpose", "width": 0.25})
    assert held_out_style_loss(style.weights) < 0.8 * held_out_style_loss(untrained.weights)


def test_kill_and_resume_equals_uninterrupted(tmp_path, photos):
    straight = run_train(tmp_path / "a", photos, "--steps", "6", "--checkpoint-every", "2")
    assert straight.returncode == 0, straight.stderr
    written = tmp_path / "a" / "out" / "t.weights.h5"  # after --out, the hint names the file, not the name
    assert straight.stdout.strip().endswith(f"try: fst run {written} photo.jpg out.jpg"), straight.stdout

    command, env = train_cmd(tmp_path / "b", photos, "--steps", "6", "--checkpoint-every", "2")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "b" / "run" / "checkpoint.weights.h5"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (tmp_path / "b" / "out").exists()
    with h5py.File(checkpoint, "r") as f:
        assert f.attrs["step"] < 6

    resumed = run_train(tmp_path / "b", photos, "--steps", "6", "--checkpoint-every", "2")
    assert resumed.returncode == 0, resumed.stderr
    first, second = read_weights(tmp_path / "a" / "out" / "t.weights.h5"), read_weights(tmp_path / "b" / "out" / "t.weights.h5")
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fewer_steps_than_a_lone_checkpoint_exports_it_under_its_own_step(tmp_path, photos):
    trained = run_train(tmp_path, photos, "--steps", "4", "--checkpoint-every", "2")
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "run" / "checkpoint.weights.h5", tmp_path / "copy")  # the checkpoint alone, no losses.csv
    again = run_train(tmp_path, photos, "--steps", "2", "--checkpoint-every", "2", "--out", tmp_path / "again",
                      "--run-dir", tmp_path / "copy")
    assert again.returncode == 0, again.stderr
    assert "checkpoint is at step 4, past steps = 2" in again.stderr
    with open(tmp_path / "again" / "t.toml", "rb") as f:
        assert tomllib.load(f)["figures"]["steps"] == 4
    first, second = read_weights(tmp_path / "out" / "t.weights.h5"), read_weights(tmp_path / "again" / "t.weights.h5")
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_logical_devices(tmp_path, photos):
    script = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from fst.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    # With the shifted stability term and the still one beside it, whose (moved copy, offsets, unmoved copy)
    # are split between the replicas too.
    command, env = train_cmd(tmp_path, photos, "--steps", "4", "--checkpoint-every", "2", "--distribute", "mirrored",
                             "--stability-shift", "3", "--stability-still-weight", "1000")
    result = subprocess.run([sys.executable, "-c", script, *command[3:]], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    meta = (tmp_path / "out" / "t.toml").read_text()
    assert "replicas = 2" in meta
    losses = (tmp_path / "run" / "losses.csv").read_text().splitlines()[1:]
    assert all(math.isfinite(float(r.split(",")[2])) for r in losses)


def test_jax_backend_trains_data_parallel(tmp_path, photos):
    """Under JAX, with the CPU split into two devices, batches are sharded by DataParallel (the shifted
    stability term's offsets too)."""
    pytest.importorskip("jax")
    # Both simulated devices run their part of each step as tasks on XLA's PjRt CPU thread pool, which
    # has one thread per core. On a loaded 2-core machine one device's part can block in the gradient
    # all-reduce on one thread while the other's waits behind other work for the second: a deadlock
    # (seen in CI). PJRT_NPROC sizes that pool; single-threaded Eigen kernels keep the parts from
    # competing for it. Real accelerators have their own streams and are unaffected.
    env = {"KERAS_BACKEND": "jax", "PJRT_NPROC": "8",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false "
           "--xla_cpu_collective_call_terminate_timeout_seconds=300 "
           "--xla_cpu_collective_call_warn_stuck_timeout_seconds=120"}
    result = run_train(tmp_path, photos, "--steps", "4", "--checkpoint-every", "2", "--stability-shift", "3", env=env)
    assert result.returncode == 0, result.stderr
    meta = (tmp_path / "out" / "t.toml").read_text()
    losses = (tmp_path / "run" / "losses.csv").read_text().splitlines()[1:]
    assert all(math.isfinite(float(r.split(",")[3])) for r in losses)  # the stability column
    assert 'backend = "jax"' in meta and "replicas = 2" in meta


def test_bad_photo_is_skipped(tmp_path, photos):
    from fst.training.config import TrainConfig
    from fst.training.train import train_style

    data = tmp_path / "data"
    shutil.copytree(photos, data)
    (data / "000001.jpg").write_bytes(b"not a jpeg")
    # 6 steps of 2 visit every one of the 12 photos once, the corrupt one included.
    config = TrainConfig.load(None, name="skip", style_image=str(PAINTING), steps=6, checkpoint_every=6,
                              image_size=64, batch_size=2, width=0.25, style_size=128, workers=1)
    style = train_style(config, data, run_dir=tmp_path / "run", out_dir=tmp_path / "out",
                        vgg_weights=str(VGG), verbose=False)
    assert style.meta["figures"]["skipped_photos"] == 1


def test_stability_batches_are_photos_plus_seeded_noise(photos):
    from fst.training.data import PhotoBatches

    a = PhotoBatches(photos, 64, 2, steps=3, seed=5, noise=3.0)
    b = PhotoBatches(photos, 64, 2, steps=3, seed=5, start=2, noise=3.0)
    clean, noisy = a[2]
    assert clean.shape == noisy.shape == (2, 64, 64, 3)
    assert 2.5 < float(np.std(noisy - clean)) < 3.5
    for x, y in zip(a[2], b[0], strict=True):
        np.testing.assert_array_equal(x, y)
    assert isinstance(PhotoBatches(photos, 64, 2, steps=3, seed=5)[0], np.ndarray)


class NoLoss:
    """Stands in for the perceptual loss where only the terms on the network itself are under test."""

    def content_targets(self, x):
        return None

    def __call__(self, y_pred, targets):
        return {"total": 0.0, "content": 0.0, "style": 0.0, "tv": 0.0}


def test_shifted_stability_term_lines_the_outputs_up(photos):
    """With stability_shift the noisy copy comes moved up and left by (dy, dx) with its offsets, and the
    term compares the outputs moved alike: zero for a network that moves with its input (the identity),
    not zero when the outputs are compared unmoved."""
    import keras

    from fst.training.data import PhotoBatches
    from fst.training.train import StyleTrainer

    batches = PhotoBatches(photos, 64, 2, steps=8, seed=5, noise=1e-3, shift=3)
    offsets_seen = set()
    for step in range(8):
        clean, (moved, offsets) = batches[step]
        dy, dx = offsets[0]
        assert moved.shape == clean.shape and (offsets == offsets[0]).all() and 0 <= dy <= 3 and 0 <= dx <= 3
        np.testing.assert_allclose(moved[:, :64 - dy, :64 - dx], clean[:, dy:, dx:], atol=0.01)
        offsets_seen.add((int(dy), int(dx)))
    assert len(offsets_seen) > 2

    clean, (moved, offsets) = next(batches[i] for i in range(8) if batches[i][1][1][0].any())
    trainer = StyleTrainer(keras.Sequential([keras.layers.Identity()]), NoLoss(), stability_weight=1.0,
                           stability_shift=3)
    trainer.build(clean.shape)
    aligned = float(trainer.compute_loss(clean, (moved, offsets), clean))
    unmoved = float(trainer.compute_loss(clean, (moved, np.zeros_like(offsets)), clean))
    assert aligned < 1e-4 and unmoved > 1.0, (aligned, unmoved)


def test_still_term_beside_the_shifted_one(photos):
    """With stability_still_weight the batch also carries the unmoved noisy copy (the same one an unshifted
    run draws, and the moved copy unchanged), and the term adds its comparison at that weight: for the
    identity network each comparison is the noise's variance."""
    import keras

    from fst.training.data import PhotoBatches
    from fst.training.train import StyleTrainer

    plain = PhotoBatches(photos, 64, 2, steps=4, seed=5, noise=3.0)
    shifted = PhotoBatches(photos, 64, 2, steps=4, seed=5, noise=3.0, shift=3)
    both = PhotoBatches(photos, 64, 2, steps=4, seed=5, noise=3.0, shift=3, still=True)
    for step in range(4):
        clean, (moved, offsets, noisy) = both[step]
        np.testing.assert_array_equal(noisy, plain[step][1])
        np.testing.assert_array_equal(moved, shifted[step][1][0])
        np.testing.assert_array_equal(offsets, shifted[step][1][1])

    def term(still_weight, y):
        trainer = StyleTrainer(keras.Sequential([keras.layers.Identity()]), NoLoss(), stability_weight=1.0,
                               stability_shift=3, stability_still_weight=still_weight)
        trainer.build(clean.shape)
        return float(trainer.compute_loss(clean, y, clean))

    moved_only = term(0.0, (moved, offsets))
    with_still = term(2.0, (moved, offsets, noisy))
    assert 7.0 < moved_only < 10.0, moved_only
    np.testing.assert_allclose(with_still, moved_only + 2.0 * float(np.mean(np.square(noisy - clean))), rtol=1e-4)


def test_saturation_term_brings_saturated_pixels_back():
    """An output layer whose tanh is saturated everywhere (a black image) gets no gradient from a loss on
    the pixels, so it would stay black; with saturation_weight the term pulls it back towards 0..255,
    where that loss acts again."""
    import keras

    from fst.network import build_network
    from fst.training.train import SATURATION_EDGE, StyleTrainer

    class PixelLoss:  # stands in for the perceptual loss: the photo itself as the target
        def content_targets(self, x):
            return x

        def __call__(self, y_pred, targets):
            content = keras.ops.mean(keras.ops.square(y_pred - targets))
            return {"total": content, "content": content, "style": 0.0, "tv": 0.0}

    photos = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    network = build_network(width=0.25)
    for layer in network.layers:
        layer.trainable = layer.name == "conv_out"
    bias = network.get_layer("conv_out").weights[-1]
    pixels = {}
    for value in (-11.0, -12.0):  # tanh is -1 in float32 at both: no loss on the pixels can move them
        bias.assign(np.full(bias.shape, value, "float32"))
        pixels[value] = network(photos, training=True)
    np.testing.assert_array_equal(pixels[-11.0], pixels[-12.0])
    before = np.mean(np.square(network.predict_on_batch(photos) - photos))

    trainer = StyleTrainer(network, PixelLoss(), saturation_weight=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(0.3))
    trainer.build(photos.shape)
    many = np.tile(photos, (30, 1, 1, 1))  # 30 steps in one epoch
    trainer.fit(many, many, epochs=1, batch_size=2, shuffle=False, verbose=0)
    logits = keras.Model(network.input, network.get_layer("pixels").input)(photos)
    saturated = float(np.mean(np.asarray(logits) < -SATURATION_EDGE))
    error = float(np.mean(np.square(network.predict_on_batch(photos) - photos)) / before)
    assert saturated < 0.5 and error < 0.97, (saturated, error)


@pytest.mark.parametrize("case,reason", [("empty_data", "no images found"), ("no_painting", "painting not found"),
                                         ("no_vgg", "VGG19 weights file not found")])
def test_one_line_errors(tmp_path, case, reason, photos):
    data, args = photos, ["--steps", "2", "--checkpoint-every", "2"]
    if case == "empty_data":
        data = tmp_path / "empty"
        data.mkdir()
    command, env = train_cmd(tmp_path, data, *args)
    if case == "no_painting":
        command[command.index("--style") + 1] = str(tmp_path / "missing.jpg")
    if case == "no_vgg":
        command[command.index("--vgg-weights") + 1] = str(tmp_path / "vgg.h5")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("fst:")]
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_nan_stops_and_keeps_the_last_checkpoint(tmp_path):
    import keras

    from fst.training.callbacks import Checkpoint, StopOnNaN

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = Checkpoint(tmp_path / "c.weights.h5", "x", start_step=0, steps=100, elapsed=0.0)
    stop = StopOnNaN(start_step=0)
    for callback in (checkpoint, stop):
        callback.set_model(model)
    for batch in range(5):
        checkpoint.on_train_batch_end(batch, {"loss": 1.0})
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    before = (tmp_path / "c.weights.h5").read_bytes()
    stop.on_train_batch_end(0, {"loss": float("nan")})
    checkpoint.on_epoch_end(1, {"loss": float("nan")})
    assert model.stop_training and stop.bad_step == 1
    assert (tmp_path / "c.weights.h5").read_bytes() == before and checkpoint.last_good_step == 5


@pytest.mark.parametrize("tf_config,folder", [
    (None, None),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, None),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, "worker-1"),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, "worker-0"),
])
def test_only_the_chief_worker_owns_the_run_folder(monkeypatch, tf_config, folder):
    from fst.training.backends import worker_folder

    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert worker_folder() == folder


def test_init_starts_from_a_trained_style(tmp_path, photos):
    from conftest import make_style

    from fst.training.config import TrainConfig
    from fst.errors import FstError
    from fst.training.train import train_style

    start = make_style("start", tmp_path / "styles", seed=3)
    common = dict(name="tuned", style_image=str(PAINTING), steps=2, checkpoint_every=2, image_size=64, batch_size=2,
                  width=0.25, style_size=128, workers=1)
    # At learning rate 0 the network is left as it started: exactly the init style's weights.
    config = TrainConfig.load(None, init=str(start), learning_rate=0.0, **common)
    assert config.fingerprint() != TrainConfig.load(None, learning_rate=0.0, **common).fingerprint()
    tuned = train_style(config, photos, run_dir=tmp_path / "run", out_dir=tmp_path / "out", vgg_weights=str(VGG),
                        verbose=False)
    first, second = read_weights(start), read_weights(tuned.weights)
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert tuned.meta["figures"]["steps"] == 2 and tuned.meta["figures"]["init_steps"] == 0

    with pytest.raises(FstError, match="network options"):
        TrainConfig.load(None, init=str(start), **{**common, "width": 0.5})


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("90s", 90.0), ("7m", 420.0), ("1.5h", 5400.0)])
def test_durations(text, seconds):
    from fst.training.config import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["x", "-5", "0", "5d", "inf"])
def test_bad_durations_are_one_line_errors(text):
    from fst.training.config import parse_duration
    from fst.errors import FstError

    with pytest.raises(FstError, match="not a positive duration"):
        parse_duration(text)


def test_time_limit_holds_between_checkpoints_exports_and_resumes(tmp_path, photos):
    help_text = subprocess.run([sys.executable, "-m", "fst.cli", "train-style", "--help"], capture_output=True,
                               text=True).stdout
    assert "--time-limit" in help_text
    # The limit is looked at after every step, not only at checkpoints 50 steps apart: the first step (with
    # compilation) takes longer than a second, so the run stops after it, checkpoints that step and exports.
    args = ("--steps", "100", "--checkpoint-every", "50", "--time-limit", "1s")
    first = run_train(tmp_path, photos, *args)
    assert first.returncode == 0, first.stderr
    assert "time limit 1s reached" in first.stderr
    with open(tmp_path / "out" / "t.toml", "rb") as f:
        figures = tomllib.load(f)["figures"]
    reached = figures["steps"]
    assert 1 <= reached < 50 and figures["stopped_on_time"] is True
    with h5py.File(tmp_path / "run" / "checkpoint.weights.h5", "r") as f:
        assert f.attrs["step"] == reached
    # The same command again resumes from that step (not a multiple of checkpoint_every) for another slice.
    again = run_train(tmp_path, photos, *args)
    assert again.returncode == 0, again.stderr
    with open(tmp_path / "out" / "t.toml", "rb") as f:
        resumed = tomllib.load(f)["figures"]["steps"]
    assert reached < resumed < 50
    # Without a limit it ends exactly at steps, its last interval cut short by the resume point (1 + 1 + 2 rows).
    last = run_train(tmp_path, photos, "--steps", "100", "--checkpoint-every", "50")
    assert last.returncode == 0, last.stderr
    with open(tmp_path / "out" / "t.toml", "rb") as f:
        figures = tomllib.load(f)["figures"]
    assert figures["steps"] == 100 and "stopped_on_time" not in figures
    assert len((tmp_path / "run" / "losses.csv").read_text().splitlines()[1:]) == 4


def test_bfloat16_under_jax_stays_close_to_float32(tmp_path, photos):
    """A few mixed_bfloat16 steps under JAX: finite losses within a few percent of float32's, float32 output."""
    pytest.importorskip("jax")
    script = (
        "import json, sys, keras\n"
        "from fst.training.config import TrainConfig\n"
        "from fst.training.train import train_style\n"
        "result = {}\n"
        "for policy in ('none', 'mixed_bfloat16'):\n"
        "    config = TrainConfig.load(None, name='p' + policy, style_image=sys.argv[1], steps=3, checkpoint_every=3,\n"
        "                              image_size=64, batch_size=2, width=0.25, style_size=128, workers=1,\n"
        "                              mixed_precision=policy)\n"
        "    style = train_style(config, sys.argv[2], run_dir=sys.argv[3] + policy, out_dir=sys.argv[3] + 'out',\n"
        "                        vgg_weights=sys.argv[4], verbose=False)\n"
        "    result[policy] = style.meta['figures']['final_losses']\n"
        "result['policy_after'] = keras.mixed_precision.global_policy().name\n"
        "print(json.dumps(result))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", script, str(PAINTING), str(photos), str(tmp_path / "r"), str(VGG)],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["policy_after"] == "float32"  # evaluation after training runs in float32 again
    for term in ("loss", "content", "style", "tv"):
        full, half = result["none"][term], result["mixed_bfloat16"][term]
        assert math.isfinite(half) and abs(half - full) <= 0.05 * abs(full), (term, full, half)

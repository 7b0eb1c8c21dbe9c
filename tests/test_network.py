"""The transformation network: shapes, options, the blocked output convolution."""

import keras
import numpy as np
import pytest

from fst.network import MACS_PER_PIXEL, BlockConv2D, build_network


@pytest.mark.parametrize("kernel,cin,cout,size", [(9, 32, 3, (24, 40)), (9, 5, 3, (16, 20)), (3, 4, 2, (10, 14))])
def test_block_conv_equals_conv2d(kernel, cin, cout, size):
    x = np.random.default_rng(0).normal(size=(2, *size, cin)).astype("float32")
    plain, blocked = keras.layers.Conv2D(cout, kernel), BlockConv2D(cout, kernel)
    plain.build(x.shape)
    blocked.build(x.shape)
    blocked.set_weights(plain.get_weights())
    np.testing.assert_allclose(np.asarray(blocked(x)), np.asarray(plain(x)), atol=1e-4)


@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
def test_network_shape_and_range(upsampling):
    model = build_network(upsampling=upsampling, width=0.25)
    x = np.random.default_rng(1).uniform(0, 255, (2, 36, 20, 3)).astype("float32")
    y = np.asarray(model(x))
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 255 and y.std() > 1


def test_full_width_layout():
    model = build_network()
    names = [layer.name for layer in model.layers]
    assert sum(n.startswith("residual") for n in names) == 5
    assert model.get_layer("conv1").layers[1].kernel.shape == (9, 9, 3, 32)
    assert model.get_layer("conv_out").layers[1].kernel.shape == (9, 9, 32, 3)
    assert model.get_layer("up1").layers[0].__class__.__name__ == "Conv2DTranspose"
    assert 1.6e6 < model.count_params() < 1.7e6


def test_macs_per_pixel_matches_layers():
    model = build_network()
    macs = 0.0
    for name, scale in [("conv1", 1), ("conv2", 1 / 4), ("conv3", 1 / 16), ("conv_out", 1)]:
        k = model.get_layer(name).layers[1].kernel.shape
        macs += scale * np.prod(k)
    for i in range(5):
        block = model.get_layer(f"residual{i + 1}")
        macs += 2 * np.prod(block.conv1.layers[1].kernel.shape) / 16
    for name, in_scale in [("up1", 1 / 16), ("up2", 1 / 4)]:
        macs += in_scale * np.prod(model.get_layer(name).layers[0].kernel.shape)
    assert macs == MACS_PER_PIXEL


def test_bad_options():
    with pytest.raises(ValueError):
        build_network(upsampling="bicubic")
    with pytest.raises(ValueError):
        build_network(width=0)

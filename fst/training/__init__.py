"""Training a style's network: the config, the photo batches, VGG19, the perceptual loss and the
training loop. Only ``fst train-style`` and ``fst optimize`` (``fst.training.gatys``) come here; stylizing
with a trained style (``fst.inference``) never imports this package."""

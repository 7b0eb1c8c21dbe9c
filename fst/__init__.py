"""fst: fast neural style transfer (Johnson et al. 2016) on Keras 3.

    import fst
    fst.list_styles()                              # ['starry_night', ...]
    fst.run("starry_night", "photo.jpg", "out.jpg")
    out = fst.stylize(pil_image_or_array, "starry_night", strength=0.8)
    art = fst.optimize("photo.jpg", "painting.jpg", max_size=512)   # Gatys et al., no training

Keras (and its backend) is imported on first use, so that the command line
starts fast.
"""

from fst.errors import FstError
from fst.styles import list_styles

__version__ = "0.1.0"
__all__ = ["FstError", "list_styles", "optimize", "run", "stylize"]


def __getattr__(name: str):
    if name in ("run", "stylize"):
        from fst import inference

        return getattr(inference, name)
    if name == "optimize":
        from fst.training.gatys import optimize

        return optimize
    raise AttributeError(f"module 'fst' has no attribute {name!r}")

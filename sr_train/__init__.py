"""sr_train: a lean PaddlePaddle trainer for ESRGAN-style super-resolution models."""

from srdata import __version__

__all__ = ["__version__"]

"""The one place srkit imports albumentations, with its update check turned off, and the transforms
the degradation ops apply.

`import albumentations` asks PyPI for the newest version on every import unless the environment
variable NO_ALBUMENTATIONS_UPDATE is set; srkit never goes on the network at run time (and a
build may run on a machine without it), so the variable is set before the import. The import
happens when an op first needs a transform, not when srdata starts: albumentations loads torch
when it is installed (over a second), which every command and every worker process would pay.
"""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=None)
def albumentations():
    """The albumentations module, imported once, without its network update check."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    import albumentations as A

    return A


@lru_cache(maxsize=None)
def iso_noise():
    return albumentations().ISONoise(p=1)


@lru_cache(maxsize=None)
def compression():
    return albumentations().ImageCompression(p=1)


@lru_cache(maxsize=None)
def unsharp_mask(threshold: int):
    return albumentations().UnsharpMask(threshold=threshold, p=1)

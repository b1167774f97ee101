"""The one place srkit imports albumentations, with its update check turned off.

`import albumentations` asks PyPI for the newest version on every import unless the environment
variable NO_ALBUMENTATIONS_UPDATE is set; srkit never goes on the network at run time (and a
build may run on a machine without it), so the variable is set before the import. Every other
module takes albumentations from here.
"""

from __future__ import annotations

import os

os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"

import albumentations as A  # noqa: E402  (must follow the environment variable)

__all__ = ["A"]

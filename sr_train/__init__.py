"""sr_train: a lean PaddlePaddle trainer for ESRGAN-style super-resolution models."""

import os
import warnings

from srdata import __version__

__all__ = ["__version__", "quiet_paddle_logs"]


def quiet_paddle_logs() -> None:
    """Keep Paddle's start-up noise out of srkit's output: its C++ INFO/WARNING lines (unless the
    user set GLOG_minloglevel) and the "No ccache found" warning, which is about compiling custom
    C++ ops, something srkit never does. Effective only before Paddle is imported."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")


# Every sr_train module imports Paddle after this package, so commands, benches and library users
# all get quiet output (the user's own GLOG_minloglevel still wins).
quiet_paddle_logs()

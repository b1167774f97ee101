"""`sr-train`: train, evaluate, run and export super-resolution models. Each command is a thin layer over a library function."""

from __future__ import annotations

import sys

from srdata.cliutil import make_app, run_app

app = make_app("sr-train", "Train (fit), evaluate (eval), upscale (predict) and export super-resolution models on PaddlePaddle.")

# Each module under sr_train/commands registers its command on `app` when imported.
# (one import line per command, added with the command)
from sr_train.commands import convert as _convert  # noqa: E402,F401
from sr_train.commands import fit as _fit  # noqa: E402,F401
from sr_train.commands import eval as _eval  # noqa: E402,F401
from sr_train.commands import predict as _predict  # noqa: E402,F401
from sr_train.commands import export as _export  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "sr-train", argv)


if __name__ == "__main__":
    # Under `python -m`, this file runs as __main__ while the command modules register on the
    # imported sr_train.cli: run that module's app.
    from sr_train.cli import main as _registered_main

    sys.exit(_registered_main())

"""`srdata`: the dataset tool. Each command is a thin layer over a library function."""

from __future__ import annotations

import sys

from srdata.cliutil import make_app, run_app

app = make_app("srdata", "Build and inspect paired HR/LR super-resolution datasets.")

# Each module under srdata/commands registers its command on `app` when imported.
# (one import line per command, added with the command)
from srdata.commands import inspect as _inspect  # noqa: E402,F401
from srdata.commands import build as _build  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "srdata", argv)


if __name__ == "__main__":
    # Under `python -m`, this file runs as __main__ while the command modules register on the
    # imported srdata.cli: run that module's app.
    from srdata.cli import main as _registered_main

    sys.exit(_registered_main())

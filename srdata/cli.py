"""`srdata`: the dataset tool. Each command is a function in srdata/commands, registered here."""

from __future__ import annotations

import sys

from srdata.cliutil import make_app, run_app
from srdata.commands.build import build_command
from srdata.commands.frames import frames_command
from srdata.commands.inspect import inspect_command
from srdata.commands.preview import preview_command

app = make_app("srdata", "Build and inspect paired HR/LR super-resolution datasets (and take their frames from videos).")
app.command("build")(build_command)
app.command("inspect")(inspect_command)
app.command("frames")(frames_command)
app.command("preview")(preview_command)


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "srdata", argv)


if __name__ == "__main__":
    sys.exit(main())

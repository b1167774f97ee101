"""`sr-train`: train, evaluate, run and export super-resolution models. Each command is a function in
sr_train/commands, registered here."""

from __future__ import annotations

import sys

from sr_train.commands.convert import convert_command
from sr_train.commands.eval import eval_command
from sr_train.commands.export import export_command
from sr_train.commands.fit import fit_command
from sr_train.commands.predict import predict_command
from sr_train.commands.runs import runs_command
from srdata.cliutil import make_app, run_app

app = make_app("sr-train", "Train (fit), evaluate (eval), upscale (predict), export and compare (runs) "
                           "super-resolution models on PaddlePaddle.")
app.command("convert")(convert_command)
app.command("fit")(fit_command)
app.command("eval")(eval_command)
app.command("predict")(predict_command)
app.command("export")(export_command)
app.command("runs")(runs_command)


def main(argv: list[str] | None = None) -> int:
    return run_app(app, "sr-train", argv)


if __name__ == "__main__":
    sys.exit(main())

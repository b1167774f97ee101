"""Run a Typer app the way srkit's tools promise: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from srdata.errors import UserError, WriteError
from srdata.stopping import Stopped, stop_on_signals



def make_app(name: str, help: str) -> typer.Typer:
    """A srkit tool's Typer app: no shell-completion options, no pretty tracebacks (run_app turns
    user errors into one line), help when called bare, and `TOOL COMMAND` syntax even while only
    one command is registered."""
    app = typer.Typer(name=name, help=help, add_completion=False, no_args_is_help=True,
                      pretty_exceptions_enable=False)

    @app.callback()
    def _tool() -> None:
        pass

    return app


def run_app(app: typer.Typer, prog: str, argv: list[str] | None = None) -> int:
    """Run `app` on `argv` and return the exit code instead of raising.

    The one place where errors become what the user sees, always one line on stderr
    (`PROG: error: MESSAGE`), never a traceback:
    - UserError and Typer's usage errors: code 2;
    - WriteError (the one writer could not write a file: it names the file and the errno): code 1
      when the storage failed (full, quota, too large, I/O error), 2 when the path was the
      user's choice (no permission, read-only, a folder in the way);
    - an OSError from the storage outside the writer (ENOSPC creating a folder, EIO): code 1;
    - Ctrl-C: 130, SIGTERM: 143 (srdata.stopping: both unwind like KeyboardInterrupt).
    Anything else is a bug and keeps its traceback. Unencodable characters in messages (file
    names that are not UTF-8) are printed escaped instead of failing.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        with stop_on_signals():
            result = app(args=args, prog_name=prog, standalone_mode=False)
    except UserError as exc:
        _say_error(prog, str(exc))
        return 2
    except WriteError as exc:
        _say_error(prog, str(exc))
        return 1 if exc.storage else 2
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        _say_error(prog, exc.format_message())
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Stopped as exc:
        print(f"{prog}: stopped by {exc.signal_name}; nothing is half-written", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        failure = WriteError.from_storage_failure(exc)
        if failure is None:
            raise
        _say_error(prog, str(failure))
        return 1
    return result if isinstance(result, int) else 0


def default_workers() -> int:
    """Default --workers: the cores this process may run on.

    The affinity mask, not os.cpu_count(): under taskset, a container's cpuset or a batch
    scheduler the machine's core count would start more workers than there are cores.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _say_error(prog: str, message: str) -> None:
    """`PROG: error: MESSAGE` on stderr, on one line (newlines in file names become spaces)."""
    one_line = " ".join(message.split())
    print(f"{prog}: error: {one_line}", file=sys.stderr)



class AverageRate(ProgressColumn):
    """Units per second since the start: rich's own speed is a short-window estimate that jumps
    when work arrives in uneven pieces (tiles, images of different sizes)."""

    def __init__(self, unit: str, digits: int = 1):
        super().__init__()
        self.unit, self.digits = unit, digits

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed > 0 and task.completed:
            return Text(f"{task.completed / elapsed:.{self.digits}f} {self.unit}/s")
        return Text(f"-- {self.unit}/s")


def progress_bar(unit: str, enabled: bool = True, digits: int = 1, count: str | None = None,
                 transient: bool = False) -> Progress:
    """The rich progress bar every srkit command shows: on stderr (stdout is for results), with the
    average rate in `unit`/s since the start, elapsed time and ETA. `count` replaces the "done/total"
    column with a format string (e.g. for fractional megapixels)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn(count) if count else MofNCompleteColumn(),
        AverageRate(unit, digits), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), disable=not enabled, transient=transient,
    )

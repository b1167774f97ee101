"""Run a Typer app the way srkit's tools promise: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import os
import sys

import typer

from srdata.errors import UserError


def run_app(app: typer.Typer, prog: str, argv: list[str] | None = None) -> int:
    """Run `app` on `argv` and return the exit code instead of raising.

    UserError and Typer's usage errors become `PROG: error: MESSAGE` (one line, no traceback)
    and code 2; Ctrl-C is code 130. Anything else is a bug and keeps its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(args=args, prog_name=prog, standalone_mode=False)
    except UserError as exc:
        _say_error(prog, str(exc))
        return 2
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        _say_error(prog, exc.format_message())
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
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
    one_line = " ".join(message.split())
    print(f"{prog}: error: {one_line}", file=sys.stderr)

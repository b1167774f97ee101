"""JSON as srkit writes and reads it: one rule for numbers JSON cannot hold, one JSONL reader.

JSON has no Infinity or NaN (Python's `json` would write the non-standard `Infinity`, which other
readers refuse). srkit writes every non-finite number (e.g. the PSNR of two identical images) as
`null`, in every file and every `--json` output.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from srdata.errors import UserError


def is_finite_number(value) -> bool:
    """True for an int or float that is not inf, -inf or nan (a value a plot or a table can show)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def finite_or_none(value):
    """`value` with every non-finite float (inf, -inf, nan) replaced by None, at any depth."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, indent: int | None = None, sort_keys: bool = False) -> str:
    """`json.dumps` under srkit's rule (non-finite numbers -> null; never writes Infinity/NaN)."""
    return json.dumps(finite_or_none(value), indent=indent, sort_keys=sort_keys, allow_nan=False)


def jsonl_line(row: dict) -> str:
    """One JSONL line (keys sorted, newline included)."""
    return dumps(row, sort_keys=True) + "\n"


def read_jsonl(path: str | os.PathLike, skip_bad_lines: bool = False) -> list[dict]:
    """The objects of a JSON-lines file ([] if it does not exist).

    A line that is not a JSON object is a UserError naming the file and line, or, with
    `skip_bad_lines`, dropped (an append-only log whose writer was killed mid-line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc}); delete it or restore it from a copy") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if skip_bad_lines:
                continue
            raise UserError(f"{path}:{number}: not a JSON object; fix or delete that line, or rebuild the file")
        rows.append(row)
    return rows

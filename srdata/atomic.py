"""Write files so that a reader (or a killed process) never sees half of one.

Every file srkit writes goes to a temporary name in the same folder and is renamed into
place, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from srdata.jsonio import dumps, jsonl_line


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success (fsync and) rename it onto `path`.

    The rename alone already means no reader and no kill ever sees half a file under `path`;
    fsync adds durability on power loss. `fsync=False` is for writers of many files that
    sync once at the end instead (srdata build: one fsync per PNG cost ~10% of a build).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(data)


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    """A JSON document (non-finite numbers as null, see srdata.jsonio)."""
    write_bytes(path, (dumps(obj, indent=indent) + "\n").encode())


def write_jsonl(path: str | os.PathLike, rows) -> None:
    """One JSON object per line, keys sorted (non-finite numbers as null)."""
    write_bytes(path, "".join(jsonl_line(row) for row in rows).encode())


def is_temp_name(name: str) -> bool:
    """True for the temporary names atomic_open uses (left behind only by a killed process)."""
    return name.startswith(".") and name.endswith(".tmp")

"""The one file writer: a reader (or a killed process, or a full disk) never sees half a file.

Every file srkit writes goes to a temporary name in the same folder and is renamed into
place, which is atomic on POSIX file systems. The temporary file is created like `open()` or
`cp` would create it, mode 0666 minus the process's umask (0644 under the usual 022), not
mkstemp's 0600: a dataset built by one user, or in a container, must be readable by the
training job of another, and a model by the server that serves it.

A write that fails (disk full, file too large, I/O error, no permission) raises
srdata.errors.WriteError naming the file and the errno; the temporary file is removed and
whatever was under the final name before is left untouched.

Append-only logs (a training run's metrics.jsonl) cannot be renamed into place at every line:
`AppendFile` appends and flushes, with the same errors; their readers drop a torn last line.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from srdata.errors import WriteError
from srdata.jsonio import dumps, jsonl_line

TEMP_SUFFIX = ".tmp"
# Characters of the final name kept in a temp name (with the dot, 8 random hex digits and the suffix, a
# temp name stays under the usual 255-byte limit even for 4-byte UTF-8 characters).
_TEMP_NAME_CHARS = 56


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success (fsync and) rename it onto `path`.

    The rename alone already means no reader and no kill ever sees half a file under `path`;
    fsync adds durability on power loss. `fsync=False` is for writers of many files that
    sync once at the end instead (srdata build: one fsync per PNG cost ~10% of a build).
    Any OSError while creating, writing or renaming is re-raised as a WriteError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise WriteError.from_os_error(path, exc) from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise WriteError.from_os_error(path, exc) from None
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty temp file beside `path`, created with mode 0666 so that the kernel applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name[:_TEMP_NAME_CHARS]}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # 1 in 4 billion: draw another name
            continue


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
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


class AppendFile:
    """A text file that grows by whole lines, each written straight to the file (unbuffered, so a failed
    line is never retried by a later flush), created with the umask's mode like every srkit file.

    Not atomic by nature: a kill or a full disk can leave a torn last line, which readers of such
    logs drop (srdata.jsonio.read_jsonl(skip_bad_lines=True)). Write errors are WriteErrors.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise WriteError.from_os_error(self.path, exc) from None

    def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            raise WriteError.from_os_error(self.path, exc) from None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    __del__ = close  # a run stopped by an error does not leak the descriptor

"""The exception types that the command-line tools turn into a one-line error instead of a traceback."""

from __future__ import annotations

import errno as errno_codes
import os

# A failed write that is about the machine, not the command line: exit code 1 (see srdata.cliutil.run_app).
STORAGE_ERRNOS = frozenset(
    (errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EFBIG, errno_codes.EIO)
)


class Refused(Exception):
    """An input (an image, a video) that is skipped while the others go on; str() is the one-line
    reason shown and recorded, `kind` the short category a summary counts (e.g. "truncated")."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        self.detail = " ".join(str(detail).split())
        super().__init__(f"{kind} ({self.detail})" if self.detail else kind)


class UserError(Exception):
    """Bad input from the user (a file, a key, an option): the message says what and what to do.

    The CLIs print it on one line, without a traceback, and exit with code 2.
    """


class WriteError(Exception):
    """Writing `path` failed (disk full, file too large, I/O error, no permission, ...).

    The message names the file and the errno (`ENOSPC`); the CLIs print it on one line and exit
    with code 1 when the cause is the storage (STORAGE_ERRNOS), 2 when it is the path the user
    chose (no permission, read-only file system, a folder in the way). Raised by srdata.atomic,
    the one writer, whose temp-then-rename protocol means nothing partial is left under `path`.
    Picklable (its constructor's arguments are its args), so it crosses from a build's worker
    processes to the main process intact.
    """

    def __init__(self, path: str | os.PathLike, errno: int | None, strerror: str, hint: str = "",
                 storage: bool | None = None):
        self.path, self.errno, self.strerror, self.hint = str(path), errno, strerror, hint
        self._storage = storage
        super().__init__(self.path, errno, strerror, hint, storage)

    @classmethod
    def from_os_error(cls, path: str | os.PathLike, exc: OSError) -> "WriteError":
        return cls(path, exc.errno, exc.strerror or str(exc))

    @classmethod
    def from_storage_failure(cls, exc: OSError) -> "WriteError | None":
        """An OSError raised outside srkit's writer (e.g. inside a library) as a WriteError when the
        storage failed (STORAGE_ERRNOS: full, quota, too large, I/O error); None for any other cause."""
        if exc.errno not in STORAGE_ERRNOS:
            return None
        return cls.from_os_error(exc.filename or "a file", exc)

    @property
    def storage(self) -> bool:
        """True when the storage failed (full, quota, too large, I/O error), not the choice of path;
        `storage` given to the constructor says it when there is no errno (a library that swallowed it)."""
        return self._storage if self._storage is not None else self.errno in STORAGE_ERRNOS

    def with_hint(self, hint: str) -> "WriteError":
        """The same error, with what to run once the cause is fixed (default: the same command again)."""
        return WriteError(self.path, self.errno, self.strerror, hint, self._storage)

    def __str__(self) -> str:
        name = errno_codes.errorcode.get(self.errno, "") if self.errno is not None else ""
        what = f"{self.strerror} ({name})" if name else self.strerror
        if self.errno in (errno_codes.ENOSPC, errno_codes.EDQUOT):
            fix = "free some space"
        elif self.errno == errno_codes.EFBIG:
            fix = "the file is larger than the file system or the file-size limit (ulimit -f) allows: raise the limit"
        elif self.storage:
            fix = "check the disk (free space, file-size limit)"
        else:
            fix = "choose a place you can write to, or fix its permissions"
        return f"cannot write {self.path}: {what}; {fix}, then {self.hint or 'run the same command again'}"

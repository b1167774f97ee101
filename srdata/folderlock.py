"""One run per output folder: an OS lock on a file inside the folder a command writes.

`srdata build` / `srdata frames` (on `--out`), `sr-train fit` (on `run_dir`, main process only)
and `sr-train predict` (on `--out`) hold `FOLDER/.srkit.lock` with `fcntl.flock` while they run.
A second run on the same folder is refused at once (UserError, exit 2) with the pid and the
command that holds it. The kernel releases the lock when its holder exits, however it exits
(kill -9 included), so a lock is never stale; the file itself is removed when its holder
finishes normally, and a file left by a killed holder is simply locked again by the next run.
Readers (`srdata inspect`, `sr-train eval`) take no lock and never wait.

Removing the file while others may open it is safe because a run that has locked the file
checks that the path still names the file it locked, and starts over if not.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from srdata.errors import UserError

LOCK_NAME = ".srkit.lock"
# File systems that cannot lock (some network mounts): the run goes ahead unlocked.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


@contextmanager
def hold_folder(folder: str | os.PathLike, label: str, command: str) -> Iterator[Path]:
    """Hold `folder`'s lock for this run, creating the folder (and its parents) if needed.

    `label` names the folder as the user gave it (`--out ds`, `run_dir runs/x`), `command` the
    run (`srdata build`); both appear in the message a second run gets. Folders this call
    created are removed again on exit if they are still empty (a run refused before writing
    anything leaves nothing behind).
    """
    folder = Path(folder)
    created = _make_folder(folder, label)
    try:
        fd = _lock(folder / LOCK_NAME, label, command)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield folder
    finally:
        if fd is not None:
            try:
                os.unlink(folder / LOCK_NAME)  # while still locked: see the module docstring
            except OSError:
                pass
            os.close(fd)
        _remove_empty(created)


def _make_folder(folder: Path, label: str) -> list[Path]:
    """Create `folder` and missing parents; returns the ones created, deepest first."""
    missing = []
    probe = folder.absolute()
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{label}: exists and is not a folder; choose a folder path") from None
    except NotADirectoryError:
        raise UserError(f"{label}: a part of this path is a file, not a folder; choose a folder path") from None
    except OSError as exc:
        raise UserError(f"{label}: cannot create this folder ({exc.strerror or exc}); "
                        "choose a folder you can write to") from None
    if not folder.is_dir():
        raise UserError(f"{label}: exists and is not a folder; choose a folder path")
    return missing


def _lock(path: Path, label: str, command: str) -> int | None:
    """Lock `path` (created if needed) without waiting; the open descriptor holds the lock."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:  # the folder was removed under us: make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        except OSError as exc:
            raise UserError(f"{label}: cannot create the lock file {path.name} ({exc.strerror or exc}); "
                            "choose a folder you can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_holder(fd)
            os.close(fd)
            raise UserError(_in_use_message(label, info)) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno in _NO_LOCKING:
                return None
            raise
        try:
            locked, named = os.fstat(fd), os.stat(path)
            same = (locked.st_dev, locked.st_ino) == (named.st_dev, named.st_ino)
        except FileNotFoundError:
            same = False
        if not same:  # its holder removed it as we locked it: lock the new file instead
            os.close(fd)
            continue
        _write_holder(fd, command)
        return fd


def _write_holder(fd: int, command: str) -> None:
    """Record who holds the lock (for the message a second run gets). Best effort: the lock itself
    is the flock, so a full disk here changes nothing."""
    record = json.dumps({"pid": os.getpid(), "command": command,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
    except OSError:
        pass


def _read_holder(fd: int) -> dict | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _in_use_message(label: str, info: dict | None) -> str:
    if info and info.get("pid"):
        who = f"{info.get('command', 'another srkit run')} (pid {info['pid']}, started {info.get('started', '?')})"
    else:
        who = "another srkit run (pid not recorded yet)"
    return (f"{label} is in use by {who}: wait for it to finish or stop it, or write to another folder; "
            "two runs writing one folder would mix their files")


def _remove_empty(created: list[Path]) -> None:
    for folder in created:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return

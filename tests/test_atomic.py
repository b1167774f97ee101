"""srdata.atomic: a file appears whole under its name or not at all; fsync only when asked."""

from __future__ import annotations

import os

import pytest

from srdata import atomic
from srdata.atomic import atomic_open, is_temp_name, write_bytes


def _fsync_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


@pytest.mark.parametrize("fsync, expected_calls", [(True, 1), (False, 0)])
def test_write_replaces_whole_file_and_fsyncs_only_when_asked(tmp_path, monkeypatch, fsync, expected_calls):
    calls = _fsync_calls(monkeypatch)
    path = tmp_path / "sub" / "f.bin"
    write_bytes(path, b"old")
    calls.clear()
    with atomic_open(path, "wb", fsync=fsync) as handle:
        handle.write(b"new")
        assert path.read_bytes() == b"old"  # not visible before the rename
    assert path.read_bytes() == b"new"
    assert len(calls) == expected_calls
    assert os.listdir(path.parent) == ["f.bin"]


@pytest.mark.parametrize("fsync", [True, False])
def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path, fsync):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w", fsync=fsync) as handle:
            handle.write("half")
            temps = [name for name in os.listdir(tmp_path) if is_temp_name(name)]
            assert len(temps) == 1
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]

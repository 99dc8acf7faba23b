"""One recorder per root: a clear refusal naming the holder, never stuck after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recorder import DirectoryLock, RecordingLocked
from recorder.lock import lock_holder
from recorder.session import RecordingSession

HOLD = """
import pathlib, sys, time
from recorder import DirectoryLock
DirectoryLock(pathlib.Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_lock_is_refused_naming_the_pid(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path) as first:
        assert first.held
        with pytest.raises(RecordingLocked, match=f"process {os.getpid()}") as info:
            DirectoryLock(tmp_path).acquire()
        assert info.value.pid == os.getpid()
        assert "choose another output directory" in str(info.value)
        with pytest.raises(RuntimeError, match="already held"):
            first.acquire()
    assert not first.held
    first.release()  # idempotent
    with DirectoryLock(tmp_path):
        pass


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RecordingLocked, match=f"process {child.pid}"):
            DirectoryLock(tmp_path).acquire()
        assert lock_holder(tmp_path) == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with DirectoryLock(tmp_path) as lock:
        assert lock.held


async def test_a_session_refuses_a_locked_root_and_releases_on_exit(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path), pytest.raises(RecordingLocked):
        async with RecordingSession(tmp_path):
            pass
    async with RecordingSession(tmp_path) as session:
        assert session.session_id
        with pytest.raises(RecordingLocked):
            DirectoryLock(tmp_path).acquire()
    with DirectoryLock(tmp_path):
        pass
    with pytest.raises(RuntimeError, match="not open"):
        _ = RecordingSession(tmp_path).session_id

"""SIGKILL at seeded random moments: files stay readable, nothing accepted is lost.

A child process (kill_writer.py) records synthetic records and echoes each accepted
record's seq to a pipe; the test notes when each line arrived. After each kill the next
child recovers the journal. At the end everything echoed more than a second before its
kill must be in the datasets (the journal is flushed every 100 ms here).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq

from recorder import read_sessions
from recorder.config import StorageConfig
from recorder.journal import segments
from recorder.parts import read_part
from recorder.session import RecordingSession

HERE = Path(__file__).parent
KILLS = 8
SEED = 20251126


def _run_and_kill(root: Path, lifetime_s: float) -> tuple[str, dict[int, float], float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()])}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "kill_writer.py"), str(root)],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    arrivals: dict[int, float] = {}
    session: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            now = time.monotonic()
            head, _, _ = line.decode().partition(" ")
            if head == "session":
                session.append(line.decode().split()[1])
                started.set()
            else:
                arrivals[int(head)] = now

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert started.wait(timeout=60), "the writer did not start"
    time.sleep(lifetime_s)
    killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    reader.join(timeout=30)
    return session[0], arrivals, killed_at


def _stored(root: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for path in root.rglob("*.parquet"):
        if "_tmp" in path.parts:
            continue
        table = read_part(path, ["session_id", "seq"])
        for session, seq in zip(
            table["session_id"].to_pylist(), table["seq"].to_pylist(), strict=True
        ):
            found.setdefault(session, set()).add(seq)
    return found


async def _recover(root: Path) -> None:
    async with RecordingSession(root, storage=StorageConfig()):
        pass


def test_kill_9_loses_nothing_accepted_a_second_before(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runs = [_run_and_kill(tmp_path, rng.uniform(0.2, 1.8)) for _ in range(KILLS)]
    asyncio.run(_recover(tmp_path))  # recovers the last run's journal
    assert segments(tmp_path) == []
    for path in tmp_path.rglob("*.parquet"):
        pq.read_table(path)  # every file under a final name is readable
    stored = _stored(tmp_path)
    checked = 0
    for session, arrivals, killed_at in runs:
        due = {seq for seq, arrived in arrivals.items() if arrived < killed_at - 1.0}
        missing = due - stored.get(session, set())
        assert not missing, f"session {session} lost {len(missing)} records, e.g. {min(missing)}"
        checked += len(due)
    assert checked > 1000
    statuses = {s.session_id: s.status for s in read_sessions(tmp_path)}
    assert all(statuses[session] == "recovered" for session, _, _ in runs)

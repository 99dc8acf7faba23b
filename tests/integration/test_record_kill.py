"""``tape record`` killed with SIGKILL at seeded random moments loses nothing it accepted.

Each run records the simulator (served by this test process) with ``--accepted-log`` echoing
``<seq> <dataset> <symbol> <received_ns>`` for every accepted record to a pipe; the test
notes when each line arrived. After 20 kills, one more start recovers the last journal.
Then every Parquet file must be readable, and every record echoed more than a second before
its kill must be in its dataset, tickers and orderbooks included (a REST repair could hide a
lost trade, never a lost orderbook).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recorder.parts import read_part
from recorder.session import RecordingSession
from simulator import Exchange, ScaledClock

KILLS = 20
SEED = 4242
MARKETS = "KRW-BTC,KRW-ETH"
SESSION = re.compile(rb"\(session (\S+)\)")


@dataclass
class Run:
    session: str = ""
    arrivals: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict)
    killed_at: float = 0.0


async def _run_once(ex: Exchange, root: Path, lifetime_s: float) -> Run:
    run = Run()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tape", "record",
        "--symbols", MARKETS, "--rest-url", ex.rest_url, "--ws-url", ex.ws_url,
        "--out", str(root), "--flush-interval", "100ms", "--rotation-interval", "1s",
        "--rest-snapshot-interval", "1s", "--accepted-log", "/dev/stdout",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    first = asyncio.Event()

    async def read_accepted() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            seq, dataset, _, _ = line.decode().split()
            run.arrivals[(dataset, int(seq))] = (dataset, time.monotonic())
            first.set()

    async def read_log() -> None:
        assert child.stderr is not None
        async for line in child.stderr:
            found = SESSION.search(line)
            if found:
                run.session = found.group(1).decode()

    readers = [asyncio.create_task(read_accepted()), asyncio.create_task(read_log())]
    await asyncio.wait_for(first.wait(), timeout=60)
    await asyncio.sleep(lifetime_s)  # the seeded random moment of the kill
    run.killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    await child.wait()
    await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
    assert run.session, "the recorder did not say which session it wrote"
    return run


def _stored(root: Path) -> dict[tuple[str, str], set[int]]:
    found: dict[tuple[str, str], set[int]] = {}
    for path in root.rglob("*.parquet"):
        if any(part.startswith("_") for part in path.relative_to(root).parts):
            continue
        pq.read_table(path)  # every file under a final name is complete and readable
        dataset = path.relative_to(root).parts[0]
        keys = read_part(path, ["session_id", "seq"])
        for session, seq in zip(
            keys["session_id"].to_pylist(), keys["seq"].to_pylist(), strict=True
        ):
            found.setdefault((session, dataset), set()).add(seq)
    return found


@pytest.mark.slow
async def test_sigkill_loses_nothing_accepted_a_second_before(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "rec"
    async with Exchange(seed=11, markets=MARKETS.split(","), clock=ScaledClock(30)) as ex:
        runs = [await _run_once(ex, root, rng.uniform(0.05, 2.5)) for _ in range(KILLS)]
    async with RecordingSession(root):
        pass  # the next start recovers the last run's journal
    stored = await asyncio.to_thread(_stored, root)
    due_by_dataset: dict[str, int] = {}
    for run in runs:
        for (dataset, seq), (_, arrived) in run.arrivals.items():
            if arrived < run.killed_at - 1.0:
                assert seq in stored.get((run.session, dataset), set()), (
                    f"{dataset} seq {seq} of session {run.session} was accepted "
                    f"{run.killed_at - arrived:.2f} s before the kill and is missing"
                )
                due_by_dataset[dataset] = due_by_dataset.get(dataset, 0) + 1
    assert due_by_dataset.get("ticker", 0) > 50
    assert due_by_dataset.get("orderbook", 0) > 50
    assert due_by_dataset.get("trade", 0) > 100

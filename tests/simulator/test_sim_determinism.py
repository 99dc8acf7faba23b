"""Determinism: one seed, start time and manual clock give identical bytes in any process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from determinism_run import scenario

from simulator import model

HERE = Path(__file__).resolve().parent


def _run(seed: int, hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, str(HERE / "determinism_run.py"), str(seed)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    return out.stdout.strip()


async def test_two_runs_in_one_process_send_identical_bytes() -> None:
    model.clear_caches()
    first = await scenario(5)
    model.clear_caches()
    assert await scenario(5) == first
    assert await scenario(6) != first


async def test_another_process_with_another_hash_seed_sends_identical_bytes() -> None:
    assert _run(5, "4242") == await scenario(5)

"""Make the replay tests' helper modules importable, and give them recordings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from replay_factories import Market

from backbone.models import Record
from recorder import write_recording


@pytest.fixture
def recording(tmp_path: Path) -> tuple[Path, list[Record]]:
    """One closed session of 600 mixed records across 00:00 UTC, and the records."""
    records = Market(seed=11).records(600, step_ns=10_000_000)
    root = tmp_path / "rec"
    write_recording(root, records, session_id="20251126T235958000Z-aaaa0001")
    return root, records

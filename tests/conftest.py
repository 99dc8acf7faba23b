"""Settings every test shares."""

from __future__ import annotations

import pytest

from recorder import compaction


@pytest.fixture(autouse=True)
def _compaction_keeps_no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    # A compaction leaves a partition alone unless 1 GiB stays free beside its merged copy;
    # a test machine's temporary disk may be smaller, and tests merge a few KB.
    monkeypatch.setattr(compaction, "FREE_MARGIN_BYTES", 0)

"""``tape demo`` as a new user runs it: every step said, every file where it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from analytics import check_schema
from replay import replay_digest
from tape.cli import main
from tape.demo_cmd import demo_faults


def test_the_demo_records_replays_checks_and_reports(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "demo"
    # 14 s keeps the faults apart: the messages delay_ws holds back (from 0.6 of the run, for
    # 1 s, 1.5 s late) are all out before clock_skew begins (at 0.8 of the run), so the skew
    # is seen on messages sent on time, whatever the machine's load
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--duration", "14s"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in text
    for fault in demo_faults(2.0):
        assert f"fault {fault.kind}" in text
        assert f"the exchange's log: {fault.kind} did:" in text
    recording = out / "recording"
    digest = re.search(r"in replay order: ([0-9a-f]{64})", text)
    assert digest is not None
    assert digest.group(1) == replay_digest(recording)
    checks = json.loads((out / "checks.json").read_text("utf-8"))
    jsonschema.validate(checks, check_schema())
    assert checks["gaps"]["events"]["disconnected"] > 0
    # the backbone and the reference snapshots share Upbit's REST budget, never exceed it
    assert "more than Upbit's" not in caplog.text
    assert checks["latency"]["clock_problem"] is True
    report = (out / "report.html").read_text("utf-8")
    assert "tape demo: feed-quality report" in report
    assert f"report:    {(out / 'report.html').resolve()}" in text
    assert "Findings:" in text

    # a second run replaces the previous demo recording, and only that
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--duration", "2s"])
    assert again.exit_code == 0, again.output
    assert "replaced the previous demo recording" in again.stdout


def test_bad_demo_arguments(tmp_path: Path) -> None:
    (tmp_path / "recording").mkdir()
    (tmp_path / "recording" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--duration", "2s"])
    assert result.exit_code == 1
    assert "is not a tape recording" in result.stderr
    assert (tmp_path / "recording" / "notes.txt").exists()
    result = CliRunner().invoke(main, ["demo", "--markets", " , ", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "at least one market" in result.stderr
    result = CliRunner().invoke(main, ["demo", "--duration", "1s", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "at least 2s" in result.stderr

"""``tape replay`` as a user runs it: JSON lines in replay order, selection, digest, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "replay"))

from replay_factories import BASE_NS, Market

from backbone.models import Record, TradeData
from recorder import write_recording
from replay import json_line, replay_digest
from tape.cli import main


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    root = tmp_path_factory.mktemp("replay")
    records = Market(seed=17).records(200, step_ns=20_000_000)  # 4 s across 00:00
    write_recording(root, records, session_id="20251126T235958000Z-cli00001")
    return root, records


def test_prints_every_record_as_a_json_line(recorded: tuple[Path, list[Record]]) -> None:
    root, records = recorded
    result = CliRunner().invoke(main, ["replay", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [json_line(r) for r in records]
    first = json.loads(lines[0])
    assert first["type"] in {"ticker", "trade", "orderbook", "candle", "event"}
    trade = next(json.loads(line) for line in lines if '"type":"trade"' in line)
    assert isinstance(trade["trade_price"], str) and Decimal(trade["trade_price"]) > 0


def test_selection_flags(recorded: tuple[Path, list[Record]]) -> None:
    root, records = recorded
    start_ns = BASE_NS + 2_000_000_000  # 2025-11-27T00:00:00Z
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(root),
            "--symbols",
            "krw-btc",
            "--channels",
            "trade",
            "--from",
            "2025-11-27T00:00:00",
            "--to",
            "2025-11-27T09:00:00.300+09:00",
        ],
    )
    assert result.exit_code == 0, result.output
    want = [
        json_line(r)
        for r in records
        if type(r) is TradeData
        and r.symbol == "KRW-BTC"
        and start_ns <= r.received_ns < start_ns + 300_000_000
    ]
    assert want and result.stdout.splitlines() == want


def test_digest_only(recorded: tuple[Path, list[Record]]) -> None:
    root, _ = recorded
    result = CliRunner().invoke(main, ["replay", str(root), "--digest"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == replay_digest(root)
    trades = CliRunner().invoke(main, ["replay", str(root), "--digest", "--channels", "trade"])
    assert trades.stdout.strip() == replay_digest(root, channels="trade") != result.stdout.strip()


def test_paced_with_progress(recorded: tuple[Path, list[Record]]) -> None:
    root, records = recorded
    result = CliRunner().invoke(
        main, ["replay", str(root), "--speed", "50", "--progress", "--channels", "ticker"]
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == sum(
        1 for r in records if r.__class__.__name__ == "TickerData"
    )
    assert (
        "records" in result.stderr and "clock 2025-11-2" in result.stderr and "lag" in result.stderr
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--symbols", "KRW-NOPE"], 1, "KRW-NOPE"),
        (["--channels", "trades"], 2, "unknown channel"),
        (["--speed", "0"], 2, "speed"),
        (["--from", "yesterday"], 2, "ISO-8601"),
        (["--from", "2025-11-28", "--to", "2025-11-27"], 2, "not after start"),
    ],
)
def test_errors_say_what_to_do(
    recorded: tuple[Path, list[Record]], args: list[str], code: int, message: str
) -> None:
    root, _ = recorded
    result = CliRunner().invoke(main, ["replay", str(root), *args])
    assert result.exit_code == code
    assert message in result.output


def test_not_a_recording(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "none")])
    assert result.exit_code == 1 and "--out" in result.output


def test_a_closed_pipe_ends_quietly(recorded: tuple[Path, list[Record]]) -> None:
    root, _ = recorded
    shell = f"{sys.executable} -m tape replay {root} | head -1"
    done = subprocess.run(
        shell, shell=True, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr

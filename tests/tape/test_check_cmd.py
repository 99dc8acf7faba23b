"""``tape check`` as a user runs it: summary, JSON, thresholds, selection and errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))

from analytics_synth import MS, T0_NS, Synth, at

from analytics import check_schema
from tape.check_cmd import BREACH_EXIT_CODE, parse_symbols
from tape.cli import main

A, B = "KRW-BTC", "KRW-ETH"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    synth = Synth(tmp_path_factory.mktemp("check"))
    for i in range(1, 41):
        for symbol in (A, B):
            synth.add(
                "trade",
                received_ns=T0_NS + i * 100 * MS + 4 * MS,
                symbol=symbol,
                sequential_id=i,
                trade_timestamp=at(T0_NS + i * 100 * MS),
            )
    for j in range(5, 35):  # REST lists trade 20 of A under another id: one missing each way
        synth.add(
            "rest_trade",
            received_ns=T0_NS + 36 * 100 * MS,
            symbol=A,
            sequential_id=j if j != 20 else 1020,
            trade_timestamp=at(T0_NS + j * 100 * MS),
        )
    return synth.write()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_summary_names_what_was_found(root: Path) -> None:
    code, out, _ = run(str(root))
    assert code == 0
    assert "Consistency: does the WebSocket agree with REST" in out
    assert "1 missing from the stream, 1 missing from REST" in out
    assert "Findings: 2 problems" in out


def test_json_is_one_documented_object(root: Path) -> None:
    code, out, _ = run(str(root), "--json")
    assert code == 0
    checks = json.loads(out)
    jsonschema.validate(checks, check_schema())
    assert checks["gaps"]["trades_missing"] == 1
    assert checks["latency"]["trade"]["p99_ms"] == 4


def test_thresholds_set_the_exit_status(root: Path) -> None:
    code, _, err = run(str(root), "--json", "--fail-on", "gaps.trades_missing>0")
    assert code == BREACH_EXIT_CODE
    assert "threshold tripped: gaps.trades_missing>0 (value 1)" in err
    code, _, err = run(
        str(root), "--fail-on", "gaps.trades_missing>1", "--fail-on", "latency.trade.p99_ms>=5"
    )
    assert (code, err) == (0, "")


def test_an_unknown_metric_is_a_usage_error(root: Path) -> None:
    code, _, err = run(str(root), "--fail-on", "latency.trades.p99_ms>5")
    assert code == 2
    assert "unknown metric 'latency.trades.p99_ms'" in err
    assert "did you mean latency.trade.p99_ms" in err


def test_selection_flags(root: Path) -> None:
    code, out, _ = run(str(root), "--json", "--symbols", "krw-eth")
    assert code == 0
    checks = json.loads(out)
    assert list(checks["latency"]["trade"]["by_symbol"]) == [B]
    assert checks["gaps"]["trades_missing"] == 0
    code, out, _ = run(
        str(root), "--json", "--from", "2025-11-26T01:00:01", "--to", "2025-11-26T10:00:02+09:00"
    )
    assert code == 0
    assert json.loads(out)["latency"]["trade"]["rows"] == 2 * 10  # trades 10..19, both symbols
    code, out, _ = run(str(root), "--from", "2025-11-26T01:00:01", "--symbols", A)
    assert "(KRW-BTC; received 2025-11-26T01:00:01+00:00 .. open)" in out


def test_bad_input_is_explained(root: Path, tmp_path: Path) -> None:
    code, _, err = run(str(root), "--from", "2025-11-26T02:00", "--to", "2025-11-26T01:00")
    assert code == 2 and "swap --from and --to" in err
    code, _, err = run(str(root), "--from", "yesterday")
    assert code == 2 and "not an ISO-8601 time" in err
    code, _, err = run(str(tmp_path))
    assert code == 1 and "holds no tape recording" in err


def test_parse_symbols() -> None:
    assert parse_symbols(" krw-btc, KRW-ETH,,KRW-BTC ") == (A, B)
    assert parse_symbols(None) == ()


def test_late_and_silent_floors_are_flags(tmp_path: Path) -> None:
    synth = Synth(tmp_path)
    for i in range(1, 60):
        late_ms = 1500 if i == 59 else 4  # the last one before the pause: nothing overtakes it
        synth.add(
            "trade",
            received_ns=T0_NS + i * 100 * MS + late_ms * MS,
            symbol=A,
            sequential_id=i,
            trade_timestamp=at(T0_NS + i * 100 * MS),
        )
    synth.add("trade", received_ns=T0_NS + 10_500 * MS, symbol=A, sequential_id=105)
    root = synth.write()

    def figures(*flags: str) -> tuple[int, int]:
        code, out, _ = run(str(root), "--json", *flags)
        assert code == 0
        checks = json.loads(out)
        return checks["latency"]["trade"]["late"], checks["gaps"]["silences"]

    assert figures() == (1, 1)  # 1.5 s late; 3.1 s without a trade at the end
    assert figures("--late-after", "2s", "--silent-after", "4s") == (0, 0)
    result = CliRunner().invoke(
        main, ["report", str(root), "-o", str(tmp_path / "r.html"), "--late-after", "2s"]
    )
    assert result.exit_code == 0 and "1 problems found" in result.stdout

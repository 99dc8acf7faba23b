"""The checks object: its documented shape, and thresholds on its metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from analytics_synth import MS, T0_NS, Synth, at

from analytics import (
    BadThreshold,
    Recording,
    Threshold,
    breaches,
    check_schema,
    metric_paths,
    run_checks,
)

A = "KRW-BTC"


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    synth = Synth(tmp_path_factory.mktemp("checks"))
    for i in range(1, 50):
        synth.add(
            "trade",
            received_ns=T0_NS + i * 100 * MS + 7 * MS,
            symbol=A,
            sequential_id=i,
            trade_timestamp=at(T0_NS + i * 100 * MS),
        )
        synth.add("ticker", received_ns=T0_NS + i * 100 * MS, symbol=A)
    for j in range(10, 30):
        if j != 15:
            synth.add(
                "rest_trade",
                received_ns=T0_NS + 30 * 100 * MS,
                symbol=A,
                sequential_id=j + (100 if j == 20 else 0),
                trade_timestamp=at(T0_NS + j * 100 * MS),
            )
    synth.add("events", received_ns=T0_NS, kind="gap_detected", channel="trade", symbols=(A,))
    with Recording(synth.write()) as recording:
        return run_checks(recording, limit=1)


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else key)
    elif not isinstance(node, (list, str)):
        yield prefix, node


def test_the_result_matches_its_schema(checks: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(check_schema())
    jsonschema.validate(checks, check_schema(), format_checker=jsonschema.FormatChecker())
    assert list(checks) == ["schema_version", "consistency", "latency", "gaps", "integrity"]


def test_every_numeric_leaf_is_a_documented_metric(checks: dict[str, Any]) -> None:
    documented = set(metric_paths())
    for path, value in leaves(checks):
        if path == "schema_version":
            continue
        generic = ".".join("<symbol>" if part == A else part for part in path.split("."))
        assert generic in documented, path
        assert value is None or isinstance(value, (int, float, bool))


def test_planted_missing_trades_reach_the_gaps(checks: dict[str, Any]) -> None:
    # REST lists 20 under another id (so 120 is missing and 20 unlisted) and leaves out 15
    assert checks["gaps"]["trades_missing"] == 1
    assert checks["consistency"]["trade"]["missing_from_rest"] == 2
    assert checks["gaps"]["events"]["gap_detected"] == 1
    assert len(checks["gaps"]["ledger"]) == 1  # limit=1


@pytest.mark.parametrize(
    ("text", "tripped"),
    [
        ("gaps.trades_missing>0", True),
        ("gaps.trades_missing >= 2", False),
        ("gaps.trades_missing==1", True),
        ("latency.trade.p99_ms<=7", True),
        ("latency.trade.p99_ms<7", False),
        ("latency.trade.by_symbol.KRW-BTC.p50_ms>5", True),
        ("latency.trade.by_symbol.KRW-ETH.p50_ms>5", False),  # not recorded: not measured
        ("latency.candle.p99_ms>0", False),  # no candle: null
        ("latency.clock_problem==false", True),
        ("latency.clock_problem==true", False),
    ],
)
def test_thresholds(checks: dict[str, Any], text: str, tripped: bool) -> None:
    threshold = Threshold.parse(text)
    assert threshold.trips(checks) is tripped
    assert bool(breaches(checks, [threshold])) is tripped


def test_a_breach_carries_the_value(checks: dict[str, Any]) -> None:
    (breach,) = breaches(checks, [Threshold.parse("latency.trade.max_ms>1")])
    assert breach.actual == 7.0
    assert breach.threshold.text == "latency.trade.max_ms>1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gaps.trade_missing>0", "did you mean gaps.trades_missing"),
        ("latency.trade>1", "unknown metric 'latency.trade'"),
        ("gaps.ledger>1", "unknown metric"),
        ("gaps.trades_missing", "not a threshold"),
        ("gaps.trades_missing=>1", "not a threshold"),
        ("gaps.trades_missing>lots", "not a number"),
    ],
)
def test_bad_thresholds_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadThreshold, match=message):
        Threshold.parse(text)


def test_limit_must_not_be_negative(tmp_path: Path) -> None:
    Synth(tmp_path).write()
    with Recording(tmp_path) as recording, pytest.raises(ValueError, match="limit"):
        run_checks(recording, limit=-1)

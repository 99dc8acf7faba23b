"""The HTML report: self-contained, with every chart and the summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from analytics_synth import MS, T0_NS, S, Synth, at

from analytics import Recording, run_checks
from analytics.report import bucket_ns_for, render_report
from analytics.svg import Series, Span, bar_chart, line_chart

A = "KRW-BTC"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    synth = Synth(tmp_path_factory.mktemp("report"))
    for i in range(1, 200):
        if 80 <= i < 120:
            continue  # a 4 s silence
        synth.add(
            "trade",
            received_ns=T0_NS + i * 100 * MS + (3000 if i == 150 else 5) * MS,
            symbol=A,
            sequential_id=i,
            trade_timestamp=at(T0_NS + i * 100 * MS),
        )
        synth.add(
            "ticker", received_ns=T0_NS + i * 100 * MS - (50 * MS if i == 20 else 0), symbol=A
        )
    synth.add("rest_ticker", received_ns=T0_NS + 50 * 100 * MS, symbol=A)
    synth.add("events", received_ns=T0_NS + 8 * S, kind="disconnected", channel="trade")
    synth.add("events", received_ns=T0_NS + 12 * S, kind="gap_repaired", start_ns=T0_NS + 8 * S)
    with Recording(synth.write()) as recording:
        return render_report(recording, title="a <test> report")


def test_the_page_is_self_contained(page: str) -> None:
    assert "Content-Security-Policy" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<title>a &lt;test&gt; report</title>" in page


def test_every_chart_is_there(page: str) -> None:
    names = re.findall(r'data-chart="([^"]+)"', page)
    assert names == [
        "latency-ticker",
        "latency-trade",
        "message-rate",
        "latency-over-time",
        "consistency",
    ]
    assert f'data-charts="{len(names)}"' in page
    assert page.count('class="mark span"') >= 2  # the silence and the disconnect, twice
    assert "≤0" in page  # the ticker that arrived before its exchange time


def test_the_checks_and_summary_are_embedded(page: str) -> None:
    embedded = re.search(r'<script type="application/json" id="checks">(.*?)</script>', page, re.S)
    assert embedded is not None
    checks = json.loads(embedded.group(1))
    assert checks["gaps"]["silences"] == 2  # trade and ticker fell silent together
    assert "problems found" in page
    assert "Integrity: records that cannot be right" in page


def test_an_empty_recording_still_renders(tmp_path: Path) -> None:
    Synth(tmp_path).write()
    with Recording(tmp_path) as recording:
        checks = run_checks(recording)
        page = render_report(recording, checks)
    assert "No problem found." in page
    assert page.count("no data") == 4


def test_buckets_are_round() -> None:
    assert bucket_ns_for(10 * S) == S
    assert bucket_ns_for(20 * 60 * S) == 10 * S
    assert bucket_ns_for(7 * 86_400 * S) == 7200 * S
    assert bucket_ns_for(1000 * 86_400 * S) == -(-1000 * 86_400 * S // 120)


def test_charts_draw_what_they_are_given() -> None:
    assert "no data" in bar_chart("b", "nothing", [("a", 0)])
    chart = line_chart(
        "l",
        "one line, one dot",
        [Series("s", "#000", [(0, 1), (1, 2), (2, None), (3, 4)])],
        x_range=(0, 3),
        x_format=str,
        spans=[Span(1, 1, "#f00", "event: x")],
    )
    assert chart.count("<polyline") == 1
    assert chart.count("<circle") == 1
    flat = line_chart(
        "f", "flat", [Series("s", "#000", [(0, 0), (1, 0)])], x_range=(0, 0), x_format=str
    )
    assert "<polyline" in flat

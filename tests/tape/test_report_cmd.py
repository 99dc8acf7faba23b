"""``tape report`` writes one HTML file that headless Chromium opens cleanly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))

from analytics_synth import MS, T0_NS, S, Synth, at

from tape.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _screenshot_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "screenshot_report", ROOT / "scripts" / "screenshot_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


shot = _screenshot_module()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-cmd")
    synth = Synth(folder / "rec")
    for i in range(1, 120):
        for symbol in ("KRW-BTC", "KRW-ETH"):
            synth.add(
                "trade",
                received_ns=T0_NS + i * 100 * MS + 6 * MS,
                symbol=symbol,
                sequential_id=i,
                trade_timestamp=at(T0_NS + i * 100 * MS),
            )
    synth.add("events", received_ns=T0_NS + 5 * S, kind="disconnected")
    synth.write()
    output = folder / "out" / "report.html"
    result = CliRunner().invoke(main, ["report", str(folder / "rec"), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"wrote {output}" in result.stdout
    assert "1 problems found" in result.stdout
    return output


def test_the_report_is_one_file(report: Path) -> None:
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]
    assert "1 disconnected events in the ledger" in report.read_text("utf-8")


def test_report_errors_are_explained(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "holds no tape recording" in result.stderr


@pytest.mark.skipif(shot.find_chromium() is None, reason="chromium is not installed")
def test_chromium_opens_it_and_draws_every_chart(report: Path, tmp_path: Path) -> None:
    browser = shot.find_chromium()
    seen = shot.check_page(browser, report)
    assert seen.console == []
    assert seen.charts == 4  # one latency histogram (trades only), rate, latency, consistency
    assert seen.charts_drawn == seen.charts
    png = tmp_path / "report.png"
    assert shot.main([str(report), str(png), "--height", "1200"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

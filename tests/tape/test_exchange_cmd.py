"""``tape exchange``: first line is the JSON of URLs; it serves, and ends by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from click.testing import CliRunner

from tape.cli import main


def test_tape_exchange_serves_and_ends_by_itself() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tape",
            "exchange",
            "--duration",
            "2s",
            "--markets",
            "KRW-BTC,KRW-ETH",
            "--manual-clock",
            "--start",
            "2026-09-21T14:13:20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        assert urls["rest_url"].endswith("/v1") and urls["ws_url"].endswith("/websocket/v1")
        assert urls["admin_url"].endswith("/_sim")
        with urllib.request.urlopen(urls["rest_url"] + "/market/all") as resp:
            assert [m["market"] for m in json.load(resp)] == ["KRW-BTC", "KRW-ETH"]
        request = urllib.request.Request(
            urls["admin_url"] + "/clock", data=b'{"advance_ms": 5000}', method="POST"
        )
        with urllib.request.urlopen(request) as resp:
            assert json.load(resp)["now_ms"] == 1_790_000_005_000
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_tape_exchange_rejects_bad_flags() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["exchange", "--duration", "soon"])
    assert result.exit_code == 2 and "not a duration" in result.output
    result = runner.invoke(main, ["exchange", "--markets", "btc", "--duration", "1s"])
    assert result.exit_code == 2 and "QUOTE-BASE" in result.output
    result = runner.invoke(main, ["exchange", "--manual-clock", "--duration", "1s"])
    assert result.exit_code == 2 and "--start" in result.output


def test_tape_exchange_in_process_firehose() -> None:
    result = CliRunner().invoke(
        main,
        [
            "exchange",
            "--duration",
            "0.2s",
            "--markets",
            "KRW-BTC",
            "--speed",
            "10",
            "--firehose",
            "mixed",
            "--firehose-frames",
            "10",
            "--no-rate-limits",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["ws_url"].startswith("ws://127.0.0.1:")

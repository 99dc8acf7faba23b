"""``tape record`` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from recorder import DirectoryLock, read_sessions
from tape.cli import main


@pytest.mark.slow
def test_a_new_user_records_the_simulator_for_20s(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tape", "record", "--sim", "--duration", "20s"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "data"
    assert f"are in {out}" in done.stderr
    assert f"tape ls {out}" in done.stderr
    glob = out / "trade" / "**" / "*.parquet"
    ((trades, symbols),) = duckdb.sql(
        f"select count(*), count(distinct symbol) from read_parquet('{glob}', "
        "hive_partitioning=true)"
    ).fetchall()
    assert trades > 0 and symbols > 1
    listing = CliRunner().invoke(main, ["ls", str(out)])
    assert listing.exit_code == 0 and "orderbook" in listing.output


def test_a_config_file_mirrors_the_flags_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "record.toml"
    config.write_text(
        'symbols = ["KRW-BTC", "KRW-ETH"]\n'
        'channels = "trade,orderbook"\n'
        'flush-interval = "100ms"\n'
        'rotation_interval = "2s"\n'
        'compression = "gzip"\n'
        'duration = "3s"\n'
        'rest-snapshot-interval = "0s"\n'
    )
    out = tmp_path / "rec"
    result = CliRunner().invoke(
        main,
        ["record", "--sim", "--config", str(config), "--compression", "snappy", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    (session,) = read_sessions(out)
    assert session.symbols == ("KRW-BTC", "KRW-ETH")
    assert session.channels == ("trade", "orderbook")
    storage = session.settings["storage"]
    assert storage["flush_interval_ms"] == 100
    assert storage["rotation_interval_s"] == 2.0
    assert storage["compression"] == "snappy"
    assert session.settings["rest_snapshot_interval_s"] == 0
    assert session.status == "closed"
    assert not (out / "rest_ticker").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channels", "trades"], "unknown channels"),
        (["--symbols", "KRW-BTC", "--quote", "KRW"], "not both"),
        (["--flush-interval", "soon"], "not a duration"),
        (["--compression", "zip"], "zip"),
    ],
)
def test_bad_flags_are_refused_clearly(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["record", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_an_unknown_config_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('flush = "1s"\n')
    result = CliRunner().invoke(main, ["record", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key 'flush'" in result.output and "flush-interval" in result.output


def test_a_second_recorder_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path):
        result = CliRunner().invoke(
            main, ["record", "--sim", "--symbols", "KRW-BTC", "--out", str(tmp_path)]
        )
    assert result.exit_code == 1
    assert f"already being recorded by process {os.getpid()}" in result.output


def test_an_unwritable_directory_is_a_clear_error_and_a_non_zero_exit(tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        result = CliRunner().invoke(
            main, ["record", "--sim", "--symbols", "KRW-BTC", "--out", str(mount / "rec")]
        )
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert result.exit_code == 1
    assert "not writable" in result.output


def test_the_accepted_log_echoes_every_accepted_record(tmp_path: Path) -> None:
    log = tmp_path / "accepted.txt"
    out = tmp_path / "rec"
    result = CliRunner().invoke(
        main,
        ["record", "--sim", "--symbols", "KRW-BTC", "--duration", "2s", "--out", str(out),
         "--accepted-log", str(log)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [int(seq) for seq, *_ in lines] == list(range(len(lines)))
    (session,) = read_sessions(out)
    assert sum(session.rows.values()) == len(lines)
    assert json.loads((out / "tape.json").read_text())["format"] == "tape-recording"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_flush_and_close_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "rec"
    child = subprocess.Popen(
        [sys.executable, "-m", "tape", "record", "--sim", "--symbols", "KRW-BTC,KRW-ETH",
         "--out", str(out), "--flush-interval", "10s", "--accepted-log", "/dev/stdout"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    accepted = [child.stdout.readline() for _ in range(20)]  # well within one flush interval
    child.send_signal(sig)
    assert child.stderr is not None
    rest = child.stdout.read()  # the buffered reader, not communicate(): it holds read-ahead
    log = child.stderr.read()
    assert child.wait(timeout=120) == 0, log
    lines = [line.split() for line in accepted + rest.splitlines() if line.strip()]
    (session,) = read_sessions(out)
    assert session.status == "closed"
    assert sum(session.rows.values()) == len(lines)  # nothing accepted was left unwritten
    assert f"are in {out}" in log


def test_recordings_open_without_any_project_code(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    result = CliRunner().invoke(
        main, ["record", "--sim", "--symbols", "KRW-BTC", "--duration", "2s", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    script = (
        "import sys, duckdb, polars, pyarrow.dataset as ds\n"
        f"root = {str(out)!r}\n"
        "n = duckdb.sql(f\"select count(*) from read_parquet('{root}/orderbook/**/*.parquet', "
        'hive_partitioning=true)").fetchall()[0][0]\n'
        "m = polars.scan_parquet(f'{root}/orderbook/**/*.parquet', hive_partitioning=True)"
        ".collect().height\n"
        "k = ds.dataset(f'{root}/trade', partitioning='hive').to_table().num_rows\n"
        "ours = [m for m in sys.modules if m.split('.')[0] in "
        "('recorder', 'backbone', 'tape', 'replay', 'analytics', 'simulator')]\n"
        "print(n, m, k, ours)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True
    )
    n, m, k, ours = done.stdout.split(maxsplit=3)
    assert int(n) == int(m) > 0 and int(k) > 0
    assert ours.strip() == "[]"

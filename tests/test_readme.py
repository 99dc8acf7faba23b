"""The README's examples run as written, in order, in one fresh directory.

Every fenced ``python`` block runs as a script and every ``$`` line of a ``console`` block as a
command, so the documentation cannot drift from the code. Each block's output is checked for
what the README says it shows.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(python|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# What each block must print, in README order: a pattern per block (None: exit status only).
EXPECTED_OUTPUT: list[str | None] = [
    r"KRW-BTC \d+(\.\d+)? -?\d+(\.\d+)?% (websocket|rest)\nKRW-ETH best bid \d+(\.\d+)? best ask "
    r"\d+(\.\d+)?\n(KRW-(BTC|ETH) (BID|ASK) \d+(\.\d+)? \d+(\.\d+)?\n){5}",
    r"trade\s+\S+\s+\d+",  # tape ls lists the trade dataset with its rows
    r"'TradeData': \d+",
    r"KRW-BTC\s+│\s+\d+",
    r"\d+ fills, cash -?\d+(\.\d+)?, position \d+(\.\d+)?\ndigest [0-9a-f]{64}\n",
    r"\"schema_version\"",
]


def readme_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(text)]


def run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, f"{shlex.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_block(kind: str, body: str, cwd: Path) -> str:
    if kind == "python":
        return run([sys.executable, "-c", body], cwd)
    output = []
    for line in body.splitlines():
        if not line.startswith("$ "):
            continue
        args = shlex.split(line[2:])
        assert args[0] == "tape", f"console examples run tape commands, not {args[0]!r}"
        output.append(run([sys.executable, "-m", "tape", *args[1:]], cwd))
    return "".join(output)


@pytest.mark.slow
def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks()
    assert len(blocks) == len(EXPECTED_OUTPUT), "a README example was added or removed"
    for (kind, body), expected in zip(blocks, EXPECTED_OUTPUT, strict=True):
        output = run_block(kind, body, tmp_path)
        if expected is not None:
            assert re.search(expected, output), f"unexpected output of\n{body}\n---\n{output}"


def test_readme_set_up_is_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^    \$ (.+)$", text, re.MULTILINE)
    assert commands[:2] == [
        "pip install -e . && tape demo",
        "pip install -e '.[test]' && pytest --cov",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "README.md" in ci

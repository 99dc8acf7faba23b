"""Take a screenshot of a tape HTML report with headless Chromium (Debian's ``chromium``).

Usage::

    python scripts/screenshot_report.py report.html report.png [--width 1320] [--height 2400]

Prints what the browser reported: the number of charts it drew (the page marks
``data-charts-drawn`` on its body) and any console message, and exits non-zero when the page
logged to the console or drew fewer charts than it holds. Install Chromium first
(``apt-get install -y chromium``). The browser runs with no network access to anything but
the file, in a throw-away profile.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
)


@dataclass(frozen=True)
class PageCheck:
    """What headless Chromium saw when it opened the report."""

    charts: int
    charts_drawn: int
    console: list[str]


def find_chromium() -> str | None:
    """Return the Chromium executable, or None when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(browser: str, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="tape-chromium-") as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


def check_page(browser: str, page: Path) -> PageCheck:
    """Open ``page`` and return its chart counts and console messages."""
    done = _run(browser, "--dump-dom", page.resolve().as_uri())
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    body = re.search(r"<body([^>]*)>", done.stdout)
    attributes = body.group(1) if body else ""

    def number(name: str) -> int:
        match = re.search(rf'{name}="(\d+)"', attributes)
        return int(match.group(1)) if match else -1

    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return PageCheck(number("data-charts"), number("data-charts-drawn"), console)


def screenshot(browser: str, page: Path, png: Path, width: int, height: int) -> None:
    """Write a ``width`` x ``height`` screenshot of ``page`` to ``png``."""
    done = _run(
        browser,
        f"--screenshot={png.resolve()}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        page.resolve().as_uri(),
    )
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot: {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1320)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    browser = find_chromium()
    if browser is None:
        print("chromium is not installed: apt-get install -y chromium", file=sys.stderr)
        return 2
    seen = check_page(browser, args.report)
    screenshot(browser, args.report, args.png, args.width, args.height)
    print(f"{args.png}: {seen.charts_drawn} of {seen.charts} charts drawn")
    for line in seen.console:
        print(f"console: {line}", file=sys.stderr)
    return 0 if not seen.console and seen.charts_drawn == seen.charts > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

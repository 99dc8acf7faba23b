"""The import rules of the architecture, enforced (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command as c; c()",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_project_never_reads_shared_docs() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("backbone", "recorder", "replay", "analytics", "simulator", "tape", "tests")
        for path in (ROOT / package).rglob("*.py")
        if "../shared" in path.read_text(encoding="utf-8") and path.name != "test_architecture.py"
    ]
    assert offenders == []

"""Named SQL: the ``.sql`` file beside a module, split into named statements.

A file holds statements introduced by a ``-- name: <identifier>`` line; the comment lines right
after it are the statement's documentation, the rest up to the next ``-- name:`` line is one
``SELECT``. Analytics installs every statement as a DuckDB view of that name, so statements
build on each other by name and callers get lazy relations (nothing is copied).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = ["NamedQuery", "load_queries"]

_NAME: Final = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """One named statement: its view name, its documentation and its SQL text."""

    name: str
    doc: str
    sql: str


def load_queries(package: str, filename: str) -> tuple[NamedQuery, ...]:
    """Return the named statements of ``filename`` in ``package``, in file order.

    Raises:
        ValueError: the file has text before its first ``-- name:`` line, a statement without
            SQL, or two statements with one name (a packaging or editing mistake).
    """
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    queries: list[NamedQuery] = []
    name: str | None = None
    doc: list[str] = []
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(body).strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"{filename}: statement {name!r} has no SQL")
        queries.append(NamedQuery(name, " ".join(doc).strip(), sql))

    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            flush()
            name, doc, body = match.group(1), [], []
        elif name is None:
            if line.strip() and not line.strip().startswith("--"):
                raise ValueError(f"{filename}: SQL before the first '-- name:' line")
        elif not body and line.strip().startswith("--"):
            doc.append(line.strip()[2:].strip())
        else:
            body.append(line)
    flush()
    names = [q.name for q in queries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{filename}: statements named more than once: {duplicated}")
    return tuple(queries)

"""A recording opened for analysis: DuckDB views over its Parquet files, and the measures.

Every dataset of the on-disk contract becomes a view of the same name (``ticker``, ``trade``,
``rest_ticker``, ``events``, ...) reading the files in place, limited to the
:class:`Selection`; every named statement of the measure files (``consistency.sql``,
``latency.sql``, ``gaps.sql``, ``integrity.sql``) becomes a view built on them. Nothing is
copied: each relation is computed when it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import duckdb

from analytics.errors import NotARecording, RecordingChanged, UnreadableRecording
from analytics.queries import NamedQuery, load_queries
from recorder.layout import MANIFEST_FILE, parse_part_name
from recorder.schema import (
    DATASETS,
    DATE_ONLY_DATASETS,
    SCHEMA_VERSION_KEY,
    UnknownSchemaVersion,
    schema_for,
    schema_version_of,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = ["MEASURE_FILES", "MeasureConfig", "Recording", "Selection", "read_consistently"]

MEASURE_FILES: Final = (
    "consistency.sql",
    "gaps.sql",
    "latency.sql",
    "integrity.sql",
    "report.sql",
)
"""The named-SQL files installed as views, in order (a file may use views of earlier ones)."""

_MEASURES: Final = tuple(
    query for filename in MEASURE_FILES for query in load_queries("analytics", filename)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which rows to analyse: some symbols, and a window of local receive time.

    ``symbols`` empty means every symbol. ``start`` is inclusive, ``end`` exclusive; both are
    aware datetimes compared with each row's ``received_ns`` (the clock the recording is
    partitioned by). Events are kept when they name a selected symbol or no symbol at all.
    """

    symbols: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"Selection.{name} must be an aware datetime (e.g. UTC)")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(
                f"the selection ends ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()}): swap --from and --to"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasureConfig:
    """The tunable parts of the measures (each is a DuckDB variable the SQL reads).

    A symbol is silent when no record of a dataset arrived for longer than
    ``max(silence_floor_ms, silence_factor * q)``, ``q`` being the ``silence_quantile`` of that
    symbol's inter-arrival times in that dataset (its usual rhythm). A WebSocket record is late
    when its latency exceeds ``max(late_floor_ms, late_factor * p50)`` of its channel; late (or
    negative) records less than ``max(that threshold, silence_floor_ms)`` apart form one
    excursion. Candle
    quote volumes are compared within ``quote_volume_tolerance`` (relative): the exchange rounds
    them, every other compared value must be equal.
    """

    silence_quantile: float = 0.9
    silence_factor: float = 5.0
    silence_floor_ms: float = 2000.0
    late_factor: float = 10.0
    late_floor_ms: float = 1000.0
    quote_volume_tolerance: float = 1e-9

    def __post_init__(self) -> None:
        if not 0.0 < self.silence_quantile <= 1.0:
            raise ValueError("silence_quantile must be in (0, 1]")
        for item in fields(self):
            if item.name != "silence_quantile" and getattr(self, item.name) < 0:
                raise ValueError(f"{item.name} must not be negative")


def _ns(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _literal(text: str) -> str:
    # SQL string literal: views cannot take prepared parameters, so values are quoted here.
    return "'" + text.replace("'", "''") + "'"


def _has_files(root: Path, dataset: str) -> bool:
    folder = root / dataset
    return folder.is_dir() and any(folder.rglob("*.parquet"))


class Recording:
    """One recording root opened read-only in an in-memory DuckDB.

    Use it as a context manager (or call :meth:`close`); read measures with
    :meth:`relation` (a lazy DuckDB relation) or :meth:`frame` (a polars DataFrame).

    Raises:
        NotARecording: ``root`` is not a folder holding a tape recording.
        UnreadableRecording: a file carries no tape schema version or one this tape cannot
            read.
    """

    def __init__(
        self,
        root: Path,
        selection: Selection | None = None,
        config: MeasureConfig | None = None,
    ) -> None:
        self.root = Path(root)
        self.selection = selection or Selection()
        self.config = config or MeasureConfig()
        if not self.root.is_dir():
            raise NotARecording(
                f"{self.root} is not a folder: pass the folder given to `tape record --out`"
            )
        self.datasets_present: tuple[str, ...] = tuple(
            name for name in DATASETS if _has_files(self.root, name)
        )
        if not self.datasets_present and not (self.root / MANIFEST_FILE).is_file():
            raise NotARecording(
                f"{self.root} holds no tape recording (no {MANIFEST_FILE} and no dataset "
                "folder with Parquet files): pass the folder given to `tape record --out`"
            )
        self.measures: tuple[NamedQuery, ...] = _MEASURES
        self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(":memory:")
        try:
            self._install()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the DuckDB connection; closing twice is harmless."""
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views, for ad-hoc SQL.

        Raises:
            RuntimeError: the recording was closed.
        """
        if self._con is None:
            raise RuntimeError("the recording is closed: open it again to query it")
        return self._con

    def relation(self, name: str) -> duckdb.DuckDBPyRelation:
        """Return the view ``name`` (a dataset or a measure) as a lazy relation.

        Raises:
            KeyError: no dataset or measure has that name.
        """
        if name not in DATASETS and name not in {q.name for q in self.measures}:
            raise KeyError(f"no dataset or measure named {name!r}")
        return self.connection.table(name)

    def frame(self, name: str) -> pl.DataFrame:
        """Return the view ``name`` computed into a polars DataFrame.

        Raises:
            KeyError: no dataset or measure has that name.
        """
        # DuckDB imports polars here, on first use: a second saved for callers that never do
        frame: pl.DataFrame = self.relation(name).pl()
        return frame

    def rows(
        self, name: str, *, order: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the view ``name`` as a list of dicts (column name to Python value),
        ordered by the SQL expression ``order`` and cut to ``limit`` rows when given.

        Raises:
            KeyError: no dataset or measure has that name.
        """
        relation = self.relation(name)
        if order is not None:
            relation = relation.order(order)
        if limit is not None:
            relation = relation.limit(limit)
        columns = relation.columns
        return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]

    def one(self, name: str) -> dict[str, Any]:
        """Return the single row of the summary view ``name`` as a dict.

        Raises:
            KeyError: no measure has that name.
            ValueError: the view does not hold exactly one row.
        """
        found = self.rows(name)
        if len(found) != 1:
            raise ValueError(f"{name} holds {len(found)} rows, not one")
        return found[0]

    @contextmanager
    def kept(self, *names: str) -> Iterator[None]:
        """Inside the block, compute each measure of ``names`` once (in the order given) and
        keep its rows: reading it, or any view built on it, reuses them. Afterwards every
        read computes it from the files again.

        Use it around a batch of reads that share intermediate measures (``run_checks`` does);
        the kept rows are held in memory, so keep only measures far smaller than the datasets.
        (Each is a temporary table of the measure's name, which DuckDB resolves before the
        view of that name.)

        Raises:
            KeyError: a name is not a measure.
            RuntimeError: a measure is already kept.
        """
        known = {q.name for q in self.measures}
        for name in names:
            if name not in known:
                raise KeyError(f"no measure named {name!r}")
        con = self.connection
        kept: list[str] = []
        try:
            for name in names:
                if con.execute(
                    "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                    [name],
                ).fetchone() != (0,):
                    raise RuntimeError(f"{name} is already kept")
                con.execute(f"CREATE TEMPORARY TABLE {name} AS SELECT * FROM main.{name}")
                kept.append(name)
            yield
        finally:
            if self._con is not None:
                for name in reversed(kept):
                    self._con.execute(f"DROP TABLE temp.{name}")

    def set_bucket_ns(self, bucket_ns: int) -> None:
        """Set the time bucket (ns of receive time) of the report's series (default 1 s).

        Raises:
            ValueError: ``bucket_ns`` is not positive.
        """
        if bucket_ns <= 0:
            raise ValueError("bucket_ns must be positive")
        self.connection.execute(f"SET VARIABLE bucket_ns = {int(bucket_ns)}::BIGINT")

    def _install(self) -> None:
        con = self.connection
        con.execute("SET TimeZone = 'UTC'")
        for item in fields(self.config):
            value = float(getattr(self.config, item.name))
            con.execute(f"SET VARIABLE {item.name} = {value!r}::DOUBLE")
        self.set_bucket_ns(1_000_000_000)
        # DuckDB binds a view when it is created, and a view reading Parquet files lists and
        # opens them: the measures are created over empty stand-ins of the datasets (bound in
        # no time), then the datasets replaced by the files, which each query binds once.
        for dataset in DATASETS:
            con.register(f"_empty_{dataset}", schema_for(dataset).empty_table())
            con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM _empty_{dataset}")
        for query in self.measures:
            con.execute(f"CREATE VIEW {query.name} AS {query.sql}")
        for dataset in self.datasets_present:
            self._install_dataset(dataset)

    def _install_dataset(self, dataset: str) -> None:
        files = self._selected_files(dataset)
        if not files:
            return  # nothing selected: the empty stand-in stays
        listed = "[" + ", ".join(_literal(name) for name in files) + "]"
        self._check_versions(listed, files)
        where = " AND ".join(self._conditions(dataset)) or "true"
        self.connection.execute(
            f"CREATE OR REPLACE VIEW {dataset} AS SELECT * EXCLUDE (date) FROM "
            f"read_parquet({listed}, hive_partitioning = true) WHERE {where}"
        )

    def _selected_files(self, dataset: str) -> list[str]:
        """The dataset's Parquet files that may hold selected rows: a part whose name puts
        all its rows outside the selected receive times, or whose folder is another symbol's,
        is neither opened nor version-checked (each query lists and opens every file it
        reads, so months of parts cost seconds a query even when a window is selected)."""
        selection = self.selection
        start_ns = None if selection.start is None else _ns(selection.start)
        end_ns = None if selection.end is None else _ns(selection.end)
        by_symbol = bool(selection.symbols) and dataset not in DATE_ONLY_DATASETS
        folders = {f"symbol={symbol}" for symbol in selection.symbols}
        selected = []
        for path in (self.root / dataset).rglob("*.parquet"):
            part = parse_part_name(path.name)
            if part is not None and (
                (start_ns is not None and part.last_ns < start_ns)
                or (end_ns is not None and part.first_ns >= end_ns)
            ):
                continue
            folder = path.parent.name
            if by_symbol and folder.startswith("symbol=") and folder not in folders:
                continue
            selected.append(str(path))
        return sorted(selected)

    def _conditions(self, dataset: str) -> Iterable[str]:
        selection = self.selection
        if selection.symbols:
            listed = ", ".join(_literal(symbol) for symbol in selection.symbols)
            if dataset == "events":
                yield f"(len(symbols) = 0 OR list_has_any(symbols, [{listed}]))"
            elif dataset not in DATE_ONLY_DATASETS:
                yield f"symbol IN ({listed})"
        if selection.start is not None:
            day = selection.start.astimezone(UTC).date().isoformat()
            yield f"date >= DATE {_literal(day)}"
            yield f"received_ns >= {_ns(selection.start)}"
        if selection.end is not None:
            day = selection.end.astimezone(UTC).date().isoformat()
            yield f"date <= DATE {_literal(day)}"
            yield f"received_ns < {_ns(selection.end)}"

    def _check_versions(self, listed: str, files: list[str]) -> None:
        tagged = self.connection.execute(
            f"SELECT file_name, value FROM parquet_kv_metadata({listed}) WHERE key = ?",
            [SCHEMA_VERSION_KEY],
        ).fetchall()
        versions = {name: bytes(value) for name, value in tagged}
        for name in files:
            metadata = {SCHEMA_VERSION_KEY: versions[name]} if name in versions else None
            try:
                schema_version_of(metadata)
            except UnknownSchemaVersion as exc:
                raise UnreadableRecording(f"{name}: {exc}") from exc


_T = TypeVar("_T")
_READ_ATTEMPTS: Final = 3
_VANISHED: Final = ("No files found that match the pattern", "No such file or directory")


def read_consistently(work: Callable[[], _T]) -> _T:
    """Return ``work()``, a function that opens a :class:`Recording` and reads it, run
    again when a file it had listed vanished before DuckDB read it (a compaction, such as
    the one a running recorder does after midnight UTC, merged it into a new part).

    Raises:
        RecordingChanged: files vanished in each of three runs.
    """
    for _ in range(_READ_ATTEMPTS):
        try:
            return work()
        except duckdb.IOException as exc:
            message = str(exc)
            if ".parquet" not in message or not any(text in message for text in _VANISHED):
                raise  # not a part file of the recording that vanished
            last = exc
    raise RecordingChanged(
        f"files of the recording vanished while they were read, {_READ_ATTEMPTS} times "
        f"({str(last).splitlines()[0]}): a compaction is replacing them; run again once it "
        "is done"
    ) from last

"""Times as the checks print them: ISO-8601 in UTC, ending in ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["iso", "iso_ns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ns(ns: int | None) -> str | None:
    """Return ``ns`` (nanoseconds since the epoch) as ISO-8601 UTC to the microsecond."""
    if ns is None:
        return None
    return iso(_EPOCH + timedelta(microseconds=ns // 1000))


def iso(moment: datetime | None) -> str | None:
    """Return an aware datetime as ISO-8601 UTC (``...Z``), to the microsecond."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

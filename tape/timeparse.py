"""Parsing of the command line's durations and times.

Durations are written ``30s``, ``5m``, ``2h``, ``1d`` or ``250ms`` everywhere on the command
line; times are ISO-8601 and read as UTC when they carry no zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str) -> float:
    """Return the duration written in ``text`` in seconds.

    Raises:
        ValueError: ``text`` is not a number followed by one of ms, s, m, h, d.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit, e.g. 30s, 5m, 2h, 250ms"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_time(text: str) -> datetime:
    """Return the aware UTC datetime written in ``text`` (ISO-8601, UTC when no zone).

    Raises:
        ValueError: ``text`` is not an ISO-8601 date or date-time.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 time: write e.g. 2026-11-26T09:30:00 (UTC) "
            "or 2026-11-26T18:30:00+09:00"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Duration(click.ParamType[float]):
    """A click parameter holding a duration in seconds, written like ``30s`` or ``5m``."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration_s(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Time(click.ParamType[datetime]):
    """A click parameter holding an aware UTC datetime written in ISO-8601."""

    name = "time"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()
TIME = Time()

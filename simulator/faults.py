"""Faults on demand, and the log of exactly what each one did.

A fault is applied now (exchange clock) and lasts ``seconds`` of exchange time. Which messages a
``drop_ws`` fraction drops is decided by a hash of (exchange seed, fault id, market, message), so
it is the same on every run.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator._rng import hash_ints, mix64, text_key, unit_float
from simulator.clock import Clock

CHANNELS = ("ticker", "trade", "orderbook", "candle")

# kind -> (required parameters, optional parameters)
KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "disconnect": (frozenset(), frozenset()),
    "stall": (frozenset({"seconds"}), frozenset()),
    "refuse_ws": (frozenset({"seconds"}), frozenset()),
    "drop_ws": (frozenset({"channel", "fraction", "seconds"}), frozenset()),
    "delay_ws": (frozenset({"ms", "seconds"}), frozenset({"channel"})),
    "malformed_ws": (frozenset({"count"}), frozenset()),
    "rest_error": (frozenset({"status", "seconds"}), frozenset()),
    "rest_stale": (frozenset({"seconds"}), frozenset()),
    "clock_skew": (frozenset({"ms", "seconds"}), frozenset()),
}


class FaultError(ValueError):
    """A fault request named an unknown kind or carried bad parameters; fix the request."""


@dataclass(slots=True)
class Fault:
    """One applied fault and what it has done so far (``effects``)."""

    id: int
    kind: str
    params: dict[str, Any]
    start_ms: int
    end_ms: int
    salt: int
    targets: frozenset[int] = frozenset()
    effects: dict[str, Any] = field(default_factory=dict)

    def covers(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def count(self, *path: str, by: int = 1) -> None:
        """Add ``by`` to the nested counter ``effects[path[0]][path[1]]...``."""
        node = self.effects
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = node.get(path[-1], 0) + by

    def to_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": dict(self.params),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "active": self.covers(now_ms) or (self.kind == "malformed_ws" and self.end_ms > now_ms),
            "effects": copy.deepcopy(self.effects),
        }


def _number(params: dict[str, Any], name: str, *, low: float, high: float | None = None) -> float:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise FaultError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def _integer(params: dict[str, Any], name: str, *, low: int, high: int | None = None) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise FaultError(f"{name} must be {bound}, got {value!r}")
    return value


class Faults:
    """Apply, list and clear faults; the exchange asks it what to do with each frame.

    ``apply(kind, **params)`` returns ``{"id", "kind", "start_ms", "end_ms"}``; ``list()``
    returns every fault applied since the last ``clear()`` with its effects.
    """

    def __init__(self, clock: Clock, seed: int) -> None:
        self._clock = clock
        self._seed = seed
        self._faults: list[Fault] = []
        self._next_id = 1
        self.on_disconnect: Callable[[Fault], None] = lambda fault: None
        self.on_malformed: Callable[[Fault], None] = lambda fault: None
        self.open_connections: Callable[[], frozenset[int]] = frozenset

    def apply(self, kind: str, **params: Any) -> dict[str, Any]:
        """Apply a fault now and return its id and window (exchange-clock ms).

        Raises:
            FaultError: unknown kind, missing or unexpected parameter, or a bad value.
        """
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}: use one of {', '.join(KINDS)}")
        required, optional = KINDS[kind]
        missing = required - params.keys()
        if missing:
            raise FaultError(f"fault {kind} needs {', '.join(sorted(missing))}")
        extra = params.keys() - required - optional
        if extra:
            raise FaultError(f"fault {kind} takes no {', '.join(sorted(extra))}")
        clean: dict[str, Any] = {}
        seconds = _number(params, "seconds", low=0.0) if "seconds" in params else 0.0
        if "seconds" in params:
            clean["seconds"] = params["seconds"]
        if "channel" in params:
            if params["channel"] not in CHANNELS:
                raise FaultError(
                    f"channel must be one of {', '.join(CHANNELS)}, got {params['channel']!r}"
                )
            clean["channel"] = params["channel"]
        if "fraction" in params:
            clean["fraction"] = _number(params, "fraction", low=0.0, high=1.0)
        if "ms" in params:
            clean["ms"] = _integer(
                params, "ms", low=-(10**9) if kind == "clock_skew" else 0, high=10**9
            )
        if "status" in params:
            clean["status"] = _integer(params, "status", low=400, high=599)
        if "count" in params:
            clean["count"] = _integer(params, "count", low=1, high=100_000)
        now = self._clock.now_ms()
        fault = Fault(
            id=self._next_id,
            kind=kind,
            params=clean,
            start_ms=now,
            end_ms=now + int(seconds * 1000),
            salt=hash_ints(self._seed, text_key("fault"), self._next_id),
        )
        self._next_id += 1
        if kind == "stall":
            fault.targets = self.open_connections()
            fault.effects["connections_stalled"] = len(fault.targets)
        self._faults.append(fault)
        if kind == "disconnect":
            fault.effects["connections_closed"] = 0
            self.on_disconnect(fault)
        elif kind == "malformed_ws":
            fault.effects["frames_malformed"] = 0
            fault.end_ms = now + 1 if fault.end_ms <= now else fault.end_ms
            self.on_malformed(fault)
        return {"id": fault.id, "kind": kind, "start_ms": fault.start_ms, "end_ms": fault.end_ms}

    def list(self) -> builtins.list[dict[str, Any]]:
        """Return every fault since the last clear, oldest first, with its effects."""
        now = self._clock.now_ms()
        return [f.to_json(now) for f in self._faults]

    def clear(self) -> None:
        """End every fault now and forget them all (their log included)."""
        self._faults.clear()

    # -- what the exchange asks -----------------------------------------------------------

    def _active(self, kind: str, ms: int) -> builtins.list[Fault]:
        return [f for f in self._faults if f.kind == kind and f.covers(ms)]

    def dropping(self, channel: str, code: str, message_key: int, event_ms: int) -> Fault | None:
        """Return the drop_ws fault that drops this message, if one does."""
        for fault in self._active("drop_ws", event_ms):
            if fault.params["channel"] != channel:
                continue
            draw = unit_float(mix64(fault.salt ^ hash_ints(text_key(code), message_key)))
            if draw < fault.params["fraction"]:
                return fault
        return None

    def delay(self, channel: str, event_ms: int) -> Fault | None:
        for fault in self._active("delay_ws", event_ms):
            if fault.params.get("channel", channel) == channel:
                return fault
        return None

    def skew(self, event_ms: int) -> Fault | None:
        active = self._active("clock_skew", event_ms)
        return active[-1] if active else None

    def stalling(self, connection_id: int, ms: int) -> Fault | None:
        for fault in self._active("stall", ms):
            if connection_id in fault.targets:
                return fault
        return None

    def refusing(self, ms: int) -> Fault | None:
        active = self._active("refuse_ws", ms)
        return active[-1] if active else None

    def rest_failing(self, ms: int) -> Fault | None:
        active = self._active("rest_error", ms)
        return active[-1] if active else None

    def rest_frozen(self, ms: int) -> Fault | None:
        active = self._active("rest_stale", ms)
        return active[0] if active else None

    def pending_malformed(self) -> builtins.list[Fault]:
        return [
            f
            for f in self._faults
            if f.kind == "malformed_ws" and f.effects["frames_malformed"] == 0
        ]

"""Thresholds on the checks: ``METRIC OP VALUE`` expressions such as ``gaps.trades_missing>0``.

``METRIC`` is a dot-separated path to a numeric or boolean leaf of the checks object, as
documented by ``check_schema.json`` (e.g. ``latency.trade.p99_ms``; maps keyed by symbol take
the symbol as a key: ``latency.trade.by_symbol.KRW-BTC.p99_ms``). ``OP`` is one of ``>``,
``>=``, ``<``, ``<=``, ``==``; ``VALUE`` a number, or ``true``/``false`` (1/0). A metric that
was not measured (``null``, or a symbol absent from the recording) trips nothing.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from analytics.checks import check_schema
from analytics.errors import BadThreshold

__all__ = ["Breach", "Threshold", "breaches", "metric_paths"]

_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_EXPRESSION: Final = re.compile(r"^\s*([A-Za-z0-9_.\-]+?)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")
_ANY_KEY: Final = "<symbol>"
_LEAF_TYPES: Final = frozenset({"integer", "number", "boolean"})


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Mapping[str, Any] = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(schema, target)


def _is_leaf(node: Mapping[str, Any]) -> bool:
    kinds = node.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
    return bool(kinds & _LEAF_TYPES)


def _walk(schema: Mapping[str, Any], node: Mapping[str, Any], prefix: str) -> Iterator[str]:
    node = _resolve(schema, node)
    if _is_leaf(node):
        yield prefix
        return
    for key, child in node.get("properties", {}).items():
        yield from _walk(schema, child, f"{prefix}.{key}" if prefix else key)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(schema, extra, f"{prefix}.{_ANY_KEY}")


def metric_paths() -> tuple[str, ...]:
    """Return every documented metric path; ``<symbol>`` stands for any key of a map."""
    schema = check_schema()
    return tuple(_walk(schema, schema, ""))


def _documented(path: str) -> bool:
    schema = check_schema()
    node: Mapping[str, Any] = schema
    for key in path.split("."):
        node = _resolve(schema, node)
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return _is_leaf(_resolve(schema, node))


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed ``METRIC OP VALUE`` expression."""

    metric: str
    op: str
    value: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Parse ``text``, checking that its metric is documented.

        Raises:
            BadThreshold: the expression is malformed, its value is not a number, or its
                metric is not a documented numeric path (the message suggests close ones).
        """
        match = _EXPRESSION.match(text)
        if match is None:
            raise BadThreshold(
                f"{text!r} is not a threshold: write METRIC OP VALUE with OP one of "
                "> >= < <= ==, e.g. 'gaps.trades_missing>0' or 'latency.trade.p99_ms>500'"
            )
        metric, op, raw = match.groups()
        if not _documented(metric):
            close = difflib.get_close_matches(metric, metric_paths(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise BadThreshold(
                f"unknown metric {metric!r} in {text!r}{hint} (the metrics are the numeric "
                "paths of `tape check --json`, documented in analytics/check_schema.json)"
            )
        lowered = raw.lower()
        if lowered in {"true", "false"}:
            value = 1.0 if lowered == "true" else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                raise BadThreshold(
                    f"{raw!r} in {text!r} is not a number: write e.g. 0, 500 or 0.99"
                ) from None
        return cls(metric, op, value, text.strip())

    def actual(self, checks: Mapping[str, Any]) -> float | None:
        """Return the metric's value in ``checks`` (booleans as 1/0), ``None`` if unmeasured."""
        node: Any = checks
        for key in self.metric.split("."):
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        if node is None:
            return None
        return float(node)

    def trips(self, checks: Mapping[str, Any]) -> bool:
        """Return whether the metric's value satisfies the expression (a breach)."""
        value = self.actual(checks)
        return value is not None and _OPERATORS[self.op](value, self.value)


@dataclass(frozen=True, slots=True)
class Breach:
    """A threshold that tripped, with the value that tripped it."""

    threshold: Threshold
    actual: float


def breaches(checks: Mapping[str, Any], thresholds: Iterable[Threshold]) -> list[Breach]:
    """Return the thresholds that ``checks`` trips, in the order given."""
    found: list[Breach] = []
    for threshold in thresholds:
        value = threshold.actual(checks)
        if value is not None and threshold.trips(checks):
            found.append(Breach(threshold, value))
    return found

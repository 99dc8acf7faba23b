"""Small SVG charts drawn in Python, so the report needs no script library and no network.

Every chart is an ``<svg class="chart" data-chart="NAME">`` element with a title; its marks
(bars, polylines, spans) carry ``class="mark"`` so a browser test can count what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

__all__ = ["PALETTE", "Series", "Span", "bar_chart", "line_chart"]

PALETTE: Final = ("#2f6db5", "#d9822b", "#3a9a5b", "#a04ca0", "#c23b3b", "#6b6b6b")
_W: Final = 620
_H: Final = 220
_LEFT: Final = 56
_RIGHT: Final = 12
_TOP: Final = 40
_BOTTOM: Final = 34


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name, colour and points ``(x, y)``; ``None`` breaks the line."""

    name: str
    color: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded interval ``[start, end]`` on the x axis (an instant when they are equal)."""

    start: float
    end: float
    color: str
    label: str


def _open(name: str, title: str) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" class="title">{escape(title)}</text>',
    ]


def _empty(name: str, title: str) -> str:
    parts = _open(name, title)
    parts.append(f'<text x="{_W / 2}" y="{_H / 2}" class="empty">no data</text></svg>')
    return "".join(parts)


def bar_chart(
    name: str, title: str, bars: Sequence[tuple[str, float]], *, color: str = PALETTE[0]
) -> str:
    """Return a bar chart of ``(label, value)`` pairs, labels under the bars."""
    if not bars or max(value for _, value in bars) <= 0:
        return _empty(name, title)
    top = max(value for _, value in bars)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / len(bars)
    parts = _open(name, title)
    parts.append(_axis_y(0, top, lambda v: f"{v:,.0f}"))
    for index, (label, value) in enumerate(bars):
        height = plot_h * value / top
        x = _LEFT + index * slot
        parts.append(
            f'<rect class="mark" x="{x + slot * 0.1:.1f}" y="{_TOP + plot_h - height:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{height:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {value:,.0f}</title></rect>"
        )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{_H - _BOTTOM + 14}" class="tick" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _axis_y(low: float, high: float, fmt: Callable[[float], str]) -> str:
    plot_h = _H - _TOP - _BOTTOM
    out = [
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" class="axis"/>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - _RIGHT}" y2="{_TOP + plot_h}" '
        'class="axis"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        value = low + (high - low) * fraction
        out.append(
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(fmt(value))}</text>"
        )
    return "".join(out)


def line_chart(
    name: str,
    title: str,
    series: Sequence[Series],
    *,
    x_range: tuple[float, float],
    x_format: Callable[[float], str],
    y_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    y_range: tuple[float, float] | None = None,
    spans: Sequence[Span] = (),
) -> str:
    """Return a line chart of ``series`` over ``x_range``, with shaded ``spans`` behind and a
    legend naming every series and span label."""
    values = [y for s in series for _, y in s.points if y is not None]
    if not values:
        return _empty(name, title)
    low, high = y_range or (min(0.0, min(values)), max(values))
    if high <= low:
        high = low + 1
    x0, x1 = x_range
    width = (x1 - x0) or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + plot_w * (x - x0) / width

    def py(y: float) -> float:
        return _TOP + plot_h * (1 - (y - low) / (high - low))

    parts = _open(name, title)
    for span in spans:
        left, right = px(max(span.start, x0)), px(min(span.end, x1))
        parts.append(
            f'<rect class="mark span" x="{left:.1f}" y="{_TOP}" '
            f'width="{max(right - left, 1.5):.1f}" height="{plot_h}" fill="{span.color}" '
            f'fill-opacity="0.25"><title>{escape(span.label)}</title></rect>'
        )
    parts.append(_axis_y(low, high, y_format))
    for fraction in (0.0, 0.5, 1.0):
        x = x0 + width * fraction
        anchor = ("start", "middle", "end")[int(fraction * 2)]
        parts.append(
            f'<text x="{px(x):.1f}" y="{_H - _BOTTOM + 14}" class="tick" '
            f'text-anchor="{anchor}">{escape(x_format(x))}</text>'
        )
    for line in series:
        runs: list[list[str]] = [[]]
        for x, y in line.points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append(f"{px(x):.1f},{py(y):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(
                    f'<circle class="mark" cx="{cx}" cy="{cy}" r="2" fill="{line.color}"/>'
                )
            elif run:
                parts.append(
                    f'<polyline class="mark" fill="none" stroke="{line.color}" '
                    f'stroke-width="1.5" points="{" ".join(run)}"/>'
                )
    legend = [(s.name, s.color) for s in series]
    legend += list(dict.fromkeys((span.label.split(":")[0], span.color) for span in spans))
    x = float(_LEFT)
    for label, color in legend:
        parts.append(f'<rect x="{x:.0f}" y="22" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14:.0f}" y="31" class="legend">{escape(label)}</text>')
        x += 22 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)

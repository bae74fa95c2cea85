"""Series of measurements and the geometry of small SVG bar charts for the HTML report.

A series is one measurement name (trailing cycle numbers dropped: `boot_1`, `boot_2`
are one series) and unit, seen at least twice in a run: across a template's instances
(throughput per device) or within one test (boot time per reboot cycle). The geometry is
computed here and drawn by the template, so the page needs no script and no library: a
chart is a few dozen rectangles, which a hand-written layout gives exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

WIDTH = 640
HEIGHT = 150
LABEL_ROOM = 18  # under the bars, for the scale line
_CYCLE = re.compile(r"[_-]?\d+$")


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float


@dataclass
class Chart:
    name: str
    unit: str
    bars: list[Bar] = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    width: int = WIDTH
    height: int = HEIGHT


def series_key(name: str) -> str:
    """The series a measurement belongs to: its name without a trailing cycle number."""
    return _CYCLE.sub("", name) or name


def charts(points: list[dict[str, Any]]) -> list[Chart]:
    """One chart per series of two or more points; `points` hold test, name, value, unit."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for point in points:
        grouped.setdefault((series_key(point["name"]), point["unit"]), []).append(point)
    return [
        _chart(name, unit, series) for (name, unit), series in grouped.items() if len(series) > 1
    ]


def _chart(name: str, unit: str, series: list[dict[str, Any]]) -> Chart:
    values = [float(p["value"]) for p in series]
    top = max(max(values), 0.0) or 1.0
    room = HEIGHT - LABEL_ROOM
    step = WIDTH / len(series)
    width = max(step * 0.7, 1.0)
    chart = Chart(name, unit, low=min(values), high=max(values), mean=sum(values) / len(values))
    for index, (point, value) in enumerate(zip(series, values, strict=True)):
        height = max(value, 0.0) / top * (room - 4)
        chart.bars.append(
            Bar(
                x=round(index * step + (step - width) / 2, 1),
                y=round(room - height, 1),
                width=round(width, 1),
                height=round(height, 1),
                label=f"{point['test']} {point['name']}",
                value=value,
            )
        )
    return chart

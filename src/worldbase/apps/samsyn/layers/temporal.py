"""Temporal GeoTIFF layers: the valid time steps, `?time=` checks and URL templates.

A layer's `temporal` (`start`, `end`, `resolution`: hourly|daily|weekly|monthly|yearly)
defines steps `start + k * resolution` up to `end`. Months and years step by calendar
(the start's day of month, clamped to the month's length). A `time` selects the step that
contains it: `2023-06-15` (or `2023-06`) on a monthly layer is June's step, from the first
step's start to the end of the last step's span; earlier or later times are refused. A
layer without a resolution accepts any time within its range. Without `?time=`, a layer's
last step is used (what a time slider shows first). The COG of a step is the layer's
`cogUrlTemplate` with `{year} {month} {day} {YYYY} {MM} {DD} {YYYYMM} {YYYYMMDD} {time}`
filled in.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from worldbase.core.errors import BadInput

FIXED_STEPS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
}
MONTHS = {"monthly": 1, "yearly": 12}
_PLACEHOLDER = re.compile(r"\{(year|month|day|YYYY|MM|DD|YYYYMM|YYYYMMDD|time)\}")
_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


class InvalidTime(BadInput):
    """`?time=` outside the layer's range, between its steps, or not a date (400)."""

    status_code = 400


def _parse(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    partial = _PARTIAL.match(text)
    try:
        if partial:
            return datetime(int(partial[1]), int(partial[2] or 1), 1)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidTime(
            f"Invalid {name} {text[:40]!r}: an ISO date such as 2023-06-01 or 2023-06-01T00:00:00Z",
            detail=[{"loc": ["query", name], "msg": "not an ISO date", "type": "value_error"}],
        ) from None
    if parsed.tzinfo is not None:
        parsed = (parsed - parsed.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return parsed


def _add_months(start: datetime, months: int) -> datetime:
    total = start.month - 1 + months
    year, month = start.year + total // 12, total % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    resolution: str | None

    @classmethod
    def of(cls, config: dict[str, Any]) -> Timeline | None:
        temporal = config.get("temporal") or {}
        if not temporal.get("enabled") or not temporal.get("start") or not temporal.get("end"):
            return None
        return cls(
            _parse(temporal["start"], "start"),
            _parse(temporal["end"], "end"),
            temporal.get("resolution"),
        )

    def step(self, index: int) -> datetime:
        if self.resolution in MONTHS:
            return _add_months(self.start, index * MONTHS[self.resolution])
        return self.start + index * FIXED_STEPS[self.resolution or "daily"]

    def _index_at_or_before(self, moment: datetime) -> int:
        if self.resolution in MONTHS:
            months = (moment.year - self.start.year) * 12 + moment.month - self.start.month
            index = months // MONTHS[self.resolution]
            while index > 0 and self.step(index) > moment:
                index -= 1
            return index
        return int((moment - self.start) // FIXED_STEPS[self.resolution or "daily"])

    def count(self) -> int:
        if self.resolution is None:
            return 1
        return self._index_at_or_before(self.end) + 1

    def last(self) -> datetime:
        return self.end if self.resolution is None else self.step(self.count() - 1)

    def resolve(self, value: str | None) -> datetime:
        """The step containing `value` (the last step when None); `InvalidTime` outside."""
        if value is None or value == "":
            return self.last()
        moment = _parse(value, "time")
        if self.resolution is None:
            inside = self.start <= moment <= self.end
        else:
            # Up to the end of the last step's span (a monthly layer's last month, all of it).
            inside = self.start <= moment < self.step(self.count())
        if not inside:
            raise InvalidTime(
                f"time {value} is outside the layer's range "
                f"{self.start.isoformat()} to {self.end.isoformat()}",
                detail=[{"loc": ["query", "time"], "msg": "outside range", "type": "value_error"}],
            )
        if self.resolution is None:
            return moment
        return self.step(self._index_at_or_before(moment))

    def page(self, *, offset: int, limit: int) -> list[datetime]:
        total = self.count()
        if self.resolution is None:
            return [self.start][offset : offset + limit]
        return [self.step(i) for i in range(offset, min(total, offset + limit))]


def fill_template(template: str, moment: datetime) -> str:
    """The template with the date placeholders of `moment` filled in."""
    values = {
        "year": f"{moment.year:04d}",
        "YYYY": f"{moment.year:04d}",
        "month": f"{moment.month:02d}",
        "MM": f"{moment.month:02d}",
        "day": f"{moment.day:02d}",
        "DD": f"{moment.day:02d}",
        "YYYYMM": f"{moment.year:04d}{moment.month:02d}",
        "YYYYMMDD": f"{moment.year:04d}{moment.month:02d}{moment.day:02d}",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return _PLACEHOLDER.sub(lambda m: values[m[1]], template)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

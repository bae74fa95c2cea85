"""Support response targets counted in business hours.

The support terms promise an initial response within 12 business hours,
business hours being Monday to Friday 08:00-18:00 local time, public holidays
excluded. Counting happens in the support team's wall-clock time (zoneinfo),
but elapsed time is measured between real instants, so a DST change at night
never adds or steals an hour and one inside a window is handled exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.errors import Location, UserError
from harness.model.yamlsource import load_yaml, validate

RESPONSE_TARGET = timedelta(hours=12)
DAY_START = time(8, 0)
DAY_END = time(18, 0)


@dataclass(frozen=True)
class SupportCalendar:
    timezone: str = "UTC"
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` of business time has passed since `start` (aware)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        zone = self.zone
        remaining = amount
        cursor = start.astimezone(UTC)
        day = cursor.astimezone(zone).date()
        # A target is always within a year; the bound only stops a holiday list covering every day.
        for _ in range(3660):
            if self.is_business_day(day):
                opens = datetime.combine(day, DAY_START, zone).astimezone(UTC)
                closes = datetime.combine(day, DAY_END, zone).astimezone(UTC)
                begin = max(cursor, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise UserError(
            "the support calendar has no business days within ten years (check the holiday list)"
        )

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end): e.g. what is left until a response target."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        total = timedelta()
        if end <= start:
            return total
        zone = self.zone
        day = start.astimezone(zone).date()
        last = end.astimezone(zone).date()
        while day <= last:
            if self.is_business_day(day):
                opens = datetime.combine(day, DAY_START, zone).astimezone(UTC)
                closes = datetime.combine(day, DAY_END, zone).astimezone(UTC)
                begin, finish = max(start, opens), min(end, closes)
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total

    def response_target(self, opened_at: datetime) -> datetime:
        return self.add_business_time(opened_at, RESPONSE_TARGET)


class _CalendarFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Berlin")
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def load_calendar(path: Path) -> SupportCalendar:
    """Read `timezone:` and `holidays:` (ISO dates) from a YAML file; errors name file and line."""
    try:
        doc = load_yaml(path)
    except ValueError as exc:  # PyYAML builds dates itself and raises on e.g. 2026-02-30
        raise UserError(
            f"invalid date in the holiday list ({exc})", Location(path, field="holidays")
        ) from None
    parsed = validate(doc, _CalendarFile)
    return SupportCalendar(timezone=parsed.timezone, holidays=frozenset(parsed.holidays))


def calendar_from_options(timezone: str | None, holidays_file: Path | None) -> SupportCalendar:
    if holidays_file is not None:
        calendar = load_calendar(holidays_file)
        return (
            SupportCalendar(timezone or calendar.timezone, calendar.holidays)
            if timezone
            else calendar
        )
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(
                f"unknown time zone {timezone!r}", Location(field="--timezone")
            ) from None
        return SupportCalendar(timezone=timezone)
    return SupportCalendar()

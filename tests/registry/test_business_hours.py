"""The 12-business-hour initial response target: weekends, holidays, evenings, DST."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from harness.registry.business_hours import SupportCalendar, load_calendar
from harness.registry.store import LOCAL_ADMIN, Settings, Store

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)


CASES = [
    # (name, calendar, opened, expected target), all wall-clock in the calendar's zone
    (
        "monday morning: same day plus 2h next day",
        "Europe/Berlin",
        (2026, 3, 2, 9, 0),
        (2026, 3, 3, 11, 0),
    ),
    ("opened at 08:00 sharp", "Europe/Berlin", (2026, 3, 2, 8, 0), (2026, 3, 3, 10, 0)),
    (
        "opened in the evening starts next morning",
        "Europe/Berlin",
        (2026, 3, 2, 20, 30),
        (2026, 3, 4, 10, 0),
    ),
    ("opened before opening time", "Europe/Berlin", (2026, 3, 3, 6, 15), (2026, 3, 4, 10, 0)),
    (
        "friday afternoon runs over the weekend",
        "Europe/Berlin",
        (2026, 3, 6, 16, 0),
        (2026, 3, 9, 18, 0),
    ),
    ("friday 17:00 lands on monday", "Europe/Berlin", (2026, 3, 6, 17, 0), (2026, 3, 10, 9, 0)),
    ("opened on saturday", "Europe/Berlin", (2026, 3, 7, 11, 0), (2026, 3, 10, 10, 0)),
    ("opened on sunday night", "Europe/Berlin", (2026, 3, 8, 23, 59), (2026, 3, 10, 10, 0)),
    (
        "opened at 18:00 exactly counts from next day",
        "Europe/Berlin",
        (2026, 3, 2, 18, 0),
        (2026, 3, 4, 10, 0),
    ),
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April are holidays in the calendar below
    ("easter holidays are skipped", "Europe/Berlin", (2026, 4, 2, 14, 0), (2026, 4, 7, 16, 0)),
    # DST starts in Europe on Sunday 29 March 2026: business days still have 10 hours each
    ("across the spring DST change", "Europe/Berlin", (2026, 3, 27, 12, 0), (2026, 3, 30, 14, 0)),
    # DST ends in Europe on Sunday 25 October 2026
    ("across the autumn DST change", "Europe/Berlin", (2026, 10, 23, 12, 0), (2026, 10, 26, 14, 0)),
    # US DST starts 8 March 2026; holiday list has none in March
    (
        "US zone across its own DST change",
        "America/New_York",
        (2026, 3, 6, 9, 0),
        (2026, 3, 9, 11, 0),
    ),
    (
        "christmas eve and day are skipped",
        "Europe/Berlin",
        (2026, 12, 23, 17, 0),
        (2026, 12, 29, 9, 0),
    ),
]

HOLIDAYS = frozenset(
    {date(2026, 4, 3), date(2026, 4, 6), date(2026, 12, 24), date(2026, 12, 25), date(2027, 1, 1)}
)


@pytest.mark.parametrize(("name", "zone", "opened", "expected"), CASES, ids=[c[0] for c in CASES])
def test_response_target(
    name: str, zone: str, opened: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    calendar = SupportCalendar(timezone=zone, holidays=HOLIDAYS)
    tz = ZoneInfo(zone)
    target = calendar.response_target(at(tz, *opened))
    assert target.astimezone(tz) == at(tz, *expected)


def test_business_time_between_opening_and_target_is_exactly_twelve_hours_across_dst() -> None:
    """Summing the business windows a target spans gives 12 real hours, DST or not."""
    calendar = SupportCalendar(timezone="Europe/Berlin", holidays=HOLIDAYS)
    opened = at(BERLIN, 2026, 3, 27, 12, 0)
    target = calendar.response_target(opened)
    spent = timedelta()
    day = opened.date()
    while day <= target.date():
        if calendar.is_business_day(day):
            start = max(opened, datetime.combine(day, datetime.min.time().replace(hour=8), BERLIN))
            end = min(target, datetime.combine(day, datetime.min.time().replace(hour=18), BERLIN))
            spent += max(end - start, timedelta())
        day += timedelta(days=1)
    assert spent == timedelta(hours=12)


def test_calendar_file_is_loaded_and_bad_dates_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "cal.yaml"
    good.write_text("timezone: Europe/Berlin\nholidays:\n  - 2026-12-24\n  - 2026-12-25\n")
    calendar = load_calendar(good)
    assert calendar.timezone == "Europe/Berlin"
    assert date(2026, 12, 25) in calendar.holidays
    bad = tmp_path / "bad.yaml"
    bad.write_text("timezone: Europe/Berlin\nholidays:\n  - 2026-12-24\n  - christmas\n")
    with pytest.raises(UserError) as err:
        load_calendar(bad)
    assert "bad.yaml:4" in str(err.value) and "holidays[1]" in str(err.value)
    zone = tmp_path / "zone.yaml"
    zone.write_text("timezone: Mars/Olympus\n")
    with pytest.raises(UserError, match="unknown time zone 'Mars/Olympus'"):
        load_calendar(zone)


def test_opened_case_records_its_response_target(db_url: str, clock) -> None:
    calendar = SupportCalendar(
        timezone="America/New_York", holidays=frozenset({date(2026, 11, 26)})
    )
    store = Store(db_url, Settings(calendar=calendar), clock=clock)
    try:
        # Wednesday before Thanksgiving, 4 pm: 2h Wed, Thursday is a holiday, 10h Friday
        case = store.open_case(
            {"case_id": "CASE-7", "customer_ref": "ACME-1", "severity": "high", "subsystem": "usb",
             "vendor": "Acme Boards", "model": "AB-100", "revision": "A1",
             "opened_at": at(NEW_YORK, 2026, 11, 25, 16, 0)},
            LOCAL_ADMIN,
        )  # fmt: skip
        target = datetime.fromisoformat(case["response_target_at"]).astimezone(NEW_YORK)
        assert target == at(NEW_YORK, 2026, 11, 27, 18, 0)
        assert store.get_case("CASE-7")["response_target_at"] == case["response_target_at"]
    finally:
        store.close()


def _business_time_between(calendar: SupportCalendar, start: datetime, end: datetime) -> timedelta:
    """Independent reference: walk the real timeline in 15-minute steps, counting business ones."""
    zone = ZoneInfo(calendar.timezone)
    step = timedelta(minutes=15)
    total = timedelta()
    cursor = start
    while cursor < end:
        local = cursor.astimezone(zone)
        if calendar.is_business_day(local.date()) and 8 <= local.hour < 18:
            total += min(step, end - cursor)
        cursor += step
    return total


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]
    ),
    opened=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 20)),
    quarter_hours=st.integers(min_value=0, max_value=3),
)
def test_target_is_in_business_hours_and_exactly_twelve_business_hours_later(
    zone: str, opened: datetime, quarter_hours: int
) -> None:
    calendar = SupportCalendar(timezone=zone, holidays=HOLIDAYS)
    start = opened.replace(
        minute=15 * quarter_hours, second=0, microsecond=0, tzinfo=ZoneInfo(zone)
    )
    target = calendar.response_target(start)
    local = target.astimezone(ZoneInfo(zone))
    assert calendar.is_business_day(local.date())
    assert (8, 0) < (local.hour, local.minute) <= (18, 0)
    assert _business_time_between(calendar, start.astimezone(ZoneInfo("UTC")), target) == timedelta(
        hours=12
    )

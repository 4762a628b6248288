"""Time expressions in searches: ``filters={"during": "last Tuesday"}``.

An agent asked "what did I decide last Tuesday?" needs the items of that day, not the
ones most like the words "last Tuesday". An expression (``yesterday``, ``last Tuesday``,
``3 weeks ago``, ``May 2023``, ``2023-05-08``, ``last year``; English, parsed by
dateparser) is resolved to the whole day, week (Monday to Sunday), month or year it
names, then applied as ``created_after`` / ``created_before``.

Relative expressions are resolved against the searched items' own time, not the wall
clock: by default the anchor is the newest item the search could return (for a live
agent, about now; for a conversation imported from last year, its last turn, so that
"last Tuesday" means what it meant to the people in it). ``time_anchor`` sets it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ctxbase.errors import InvalidInputError

#: What dateparser calls a period, as the span it names.
_SPANS = {"day", "week", "month", "year"}


def resolve(expression: str, anchor: datetime) -> tuple[datetime, datetime]:
    """The [start, end) of the day, week, month or year ``expression`` names, relative
    expressions counted back from ``anchor``."""
    from dateparser.date import DateDataParser  # imported when first needed: ~60 ms

    parser = DateDataParser(
        languages=["en"],
        settings={
            "RETURN_TIME_AS_PERIOD": True,
            "RELATIVE_BASE": anchor.astimezone(UTC).replace(tzinfo=None),
            "PREFER_DATES_FROM": "past",
        },
    )
    found = parser.get_date_data(expression)
    if found.date_obj is None:
        raise InvalidInputError(
            f"filters.during: cannot read {expression!r} as a time",
            hint="e.g. `yesterday`, `last Tuesday`, `3 weeks ago`, `May 2023`, `2023-05-08`",
        )
    when = found.date_obj.replace(tzinfo=None)
    period = found.period if found.period in _SPANS else "day"
    day = datetime(when.year, when.month, when.day, tzinfo=UTC)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        following = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        return start, following
    start = day.replace(month=1, day=1)
    return start, start.replace(year=start.year + 1)

"""Recurring bookings: a subset of RFC 5545 RRULE, expanded in the platform's
local time so that "every Tuesday 09:00–11:00" stays 09:00 across DST.

Supported: FREQ=DAILY|WEEKLY, INTERVAL, COUNT or UNTIL (one of them), and
BYDAY with WEEKLY. At most a year from the first occurrence. python-dateutil
does the expansion; this module only checks the rule is one we support."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_SPAN = timedelta(days=366)
MAX_OCCURRENCES = 366
FREQUENCIES = {"DAILY": rrule.DAILY, "WEEKLY": rrule.WEEKLY}
WEEKDAYS = {
    "MO": rrule.MO, "TU": rrule.TU, "WE": rrule.WE, "TH": rrule.TH,
    "FR": rrule.FR, "SA": rrule.SA, "SU": rrule.SU,
}  # fmt: skip


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # aware, UTC
    end: datetime


def _invalid(message: str) -> ValidationError:
    return ValidationError({"rule": [message]}, code="invalid_rule")


def _parse(rule: str) -> dict[str, str]:
    text = rule.strip()
    text = text.removeprefix("RRULE:")
    parts = {}
    for part in filter(None, text.split(";")):
        name, sep, value = part.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise _invalid(_("“%(part)s” is not NAME=VALUE.") % {"part": part})
        if name in parts:
            raise _invalid(_("%(name)s appears twice.") % {"name": name})
        parts[name] = value.strip().upper()
    unknown = sorted(set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY"})
    if unknown:
        raise _invalid(
            _("Unsupported rule parts: %(parts)s (use FREQ, INTERVAL, COUNT, UNTIL, BYDAY).")
            % {"parts": ", ".join(unknown)}
        )
    return parts


def _whole(value: str, name: str, highest: int) -> int:
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= highest):
        raise _invalid(
            _("%(name)s must be a whole number from 1 to %(n)d.") % {"name": name, "n": highest}
        )
    return int(value)


def _until(value: str) -> date:
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        raise _invalid(_("UNTIL must be a date such as 20270630.")) from None


def expand(*, rule: str, start: datetime, end: datetime, tz: ZoneInfo) -> list[Occurrence]:
    """The occurrences of [start, end) repeated by `rule`, the first included,
    each at the same local wall-clock time as the first."""
    parts = _parse(rule)
    if parts.get("FREQ") not in FREQUENCIES:
        raise _invalid(_("FREQ must be DAILY or WEEKLY."))
    if ("COUNT" in parts) == ("UNTIL" in parts):
        raise _invalid(_("Give COUNT or UNTIL (one of them)."))
    local_start = start.astimezone(tz).replace(tzinfo=None)
    local_duration = end.astimezone(tz).replace(tzinfo=None) - local_start
    options = {"dtstart": local_start, "interval": 1}
    if "INTERVAL" in parts:
        options["interval"] = _whole(parts["INTERVAL"], "INTERVAL", 52)
    if "COUNT" in parts:
        options["count"] = _whole(parts["COUNT"], "COUNT", MAX_OCCURRENCES)
    else:
        # UNTIL is a local day, included whole.
        options["until"] = datetime.combine(_until(parts["UNTIL"]), datetime.max.time())
    if "BYDAY" in parts:
        if parts["FREQ"] != "WEEKLY":
            raise _invalid(_("BYDAY goes with FREQ=WEEKLY."))
        days = parts["BYDAY"].split(",")
        if not days or any(day not in WEEKDAYS for day in days):
            raise _invalid(_("BYDAY lists days among MO, TU, WE, TH, FR, SA, SU."))
        options["byweekday"] = [WEEKDAYS[day] for day in days]
        # dateutil would leave the first booking out, and the series would silently
        # miss the very slot it was asked for (RFC 5545 counts DTSTART first).
        first_day = list(WEEKDAYS)[local_start.weekday()]
        if first_day not in days:
            raise _invalid(
                _("The first booking falls on %(day)s, a day BYDAY leaves out: start the "
                  "series on one of its days.") % {"day": first_day}
            )  # fmt: skip
    if "until" in options and options["until"] < local_start:
        raise _invalid(_("UNTIL is before the first booking."))

    occurrences = []
    for local in rrule.rrule(FREQUENCIES[parts["FREQ"]], **options):
        if local - local_start > MAX_SPAN or len(occurrences) == MAX_OCCURRENCES:
            raise _invalid(_("A series spans at most a year."))
        occurrences.append(
            Occurrence(
                start=_aware(local, tz),
                end=_aware(local + local_duration, tz),
            )
        )
    return occurrences


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    # A wall time skipped by the spring change (02:30) has no instant: zoneinfo
    # reads it with the old offset; the booking rules then find it off-hours.
    return local.replace(tzinfo=tz).astimezone(ZoneInfo("UTC"))

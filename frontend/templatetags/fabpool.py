"""Dates and times in the platform's time zone, in the reader's language.

Django's own `date` filter converts to the *current* time zone first; these take
the platform (or its time zone name) instead, since a machine's hours are local
to where it stands, whoever looks."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import template
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

register = template.Library()


def _zone(where) -> ZoneInfo:
    if isinstance(where, ZoneInfo):
        return where
    name = getattr(where, "timezone", where) or "UTC"
    return ZoneInfo(str(name))


def _local(value: datetime, where) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(_zone(where))


def _day_and_time(local: datetime) -> str:
    # The day's format is the translator's; the time stays 24-hour `H:i` in both languages,
    # outside the msgid, since French typography puts no colon in a translated sentence.
    day = date_format(local, _("D j M Y"))  # outside the f-string, where xgettext finds it
    return f"{day}, {date_format(local, 'H:i')}"


@register.filter
def local_datetime(value, where):
    """`Tue 2 Mar 2027, 09:00` in the platform's zone (`mar 2 mars 2027, 09:00` in French)."""
    local = _local(value, where)
    return _day_and_time(local) if local else ""


@register.filter
def local_date(value, where):
    local = _local(value, where)
    return date_format(local, _("l j F Y")) if local else ""


@register.filter
def local_time(value, where):
    local = _local(value, where)
    return date_format(local, "H:i") if local else ""


@register.filter
def local_span(booking_or_slot, where):
    """`Tue 2 Mar 2027, 09:00–11:00`, or both full ends when it spans days."""
    start, end = _ends(booking_or_slot)
    start, end = _local(start, where), _local(end, where)
    if not (start and end):
        return ""
    if start.date() == end.date():
        return f"{_day_and_time(start)}–{date_format(end, 'H:i')}"
    return f"{_day_and_time(start)} → {_day_and_time(end)}"


def _ends(value):
    if isinstance(value, dict):
        return value.get("start"), value.get("end")
    if isinstance(value, tuple | list):
        return value[0], value[1]
    return value.start, value.end


@register.filter
def minutes_as_duration(minutes):
    """90 → `1 h 30`; 45 → `45 min`."""
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        return ""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return _("%(m)d min") % {"m": rest}
    if not rest:
        return _("%(h)d h") % {"h": hours}
    return _("%(h)d h %(m)02d") % {"h": hours, "m": rest}


@register.filter
def quantity(value) -> str:
    """A quantity without its trailing zeros, the reader's way: 250, 2.5 (2,5 in French)."""
    if value is None or value == "":
        return ""
    value = Decimal(value)
    shown = value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
    return number_format(shown)


@register.filter
def spec_name(key: str) -> str:
    """`payload_kg` → `Payload (kg)`: the specs are free-form names from the platform."""
    words = str(key).split("_")
    units = {"kg", "mm", "rpm", "w", "kw", "um", "µm", "l", "c"}
    if len(words) > 1 and words[-1].lower() in units:
        return f"{' '.join(words[:-1]).capitalize()} ({words[-1]})"
    return " ".join(words).capitalize()


@register.filter
def spec_value(value) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        return (" × " if numbers else ", ").join(str(v) for v in value)  # dimensions, or a list
    return str(value)


@register.simple_tag(takes_context=True)
def querystring_with(context, **changes):
    """The current query string with some parameters changed (None drops one)."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def wall(value, where):
    """The wall-clock time in the platform's zone, naive, for form fields (Django's
    `date` and `time` filters leave naive values as they are)."""
    local = _local(value, where)
    return local.replace(tzinfo=None) if local else ""

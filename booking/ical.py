"""A minimal iCalendar (RFC 5545) writer for the subscription feeds.

The `icalendar` library builds and serializes a 1,000-event feed in about 0.4 s
on our machines, four times the feed's budget; feeds only ever write a handful
of property kinds (UTC date-times, dates, integers and text), so they are
written here directly. Three independent parsers read the result in
tests/booking/test_feeds.py (icalendar, vobject with validation, Mozilla's ical.js).

Rules kept here: every line ends with CRLF and is at most 75 octets (longer ones
are folded on UTF-8 character boundaries, continuation lines starting with a
space); text values escape backslash, semicolon, comma and line breaks, and
lose the control characters RFC 5545 does not allow in TEXT."""

import re
from datetime import UTC, date, datetime, timedelta

CRLF = "\r\n"
MAX_OCTETS = 75

# TEXT allows horizontal tabs but no other control character (C0, DEL, C1).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ZERO = timedelta(0)


def text(value: str) -> str:
    """A TEXT value, escaped. (str.replace behind `in` tests: several times faster
    than str.translate on the mostly plain text of a feed.)"""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.isprintable():  # line breaks, tabs and control characters
        value = _CONTROL.sub("", value)
        if "\n" in value:
            value = value.replace("\\", "\\\\").replace("\n", "\\n")
        elif "\\" in value:
            value = value.replace("\\", "\\\\")
    elif "\\" in value:
        value = value.replace("\\", "\\\\")
    if ";" in value:
        value = value.replace(";", "\\;")
    if "," in value:
        value = value.replace(",", "\\,")
    return value


def utc(moment: datetime) -> str:
    """A DATE-TIME in UTC ("20270302T080000Z"); seconds are the finest unit."""
    if moment.utcoffset() != _ZERO:
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )


def day(value: date) -> str:
    """A DATE ("20270302")."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def duration(value: timedelta) -> str:
    """A DURATION in whole seconds, e.g. PT1H, P1D, PT15M."""
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    out = f"P{days}D" if days else "P"
    if hours or minutes or seconds:
        out += "T" + "".join(
            f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n
        )
    return out if out != "P" else "PT0S"


def line(content: str) -> str:
    """One content line, folded to 75 octets, with its CRLF."""
    if content.isascii():
        if len(content) <= MAX_OCTETS:
            return content + CRLF
        pieces = [content[:MAX_OCTETS]]
        pieces += [content[i : i + MAX_OCTETS - 1] for i in range(MAX_OCTETS, len(content), 74)]
        return "\r\n ".join(pieces) + CRLF
    data = content.encode()
    if len(data) <= MAX_OCTETS:
        return content + CRLF
    pieces, start, limit = [], 0, MAX_OCTETS
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a UTF-8 sequence
            end -= 1
        pieces.append(data[start:end].decode())
        start, limit = end, MAX_OCTETS - 1  # the leading space counts
    return "\r\n ".join(pieces) + CRLF

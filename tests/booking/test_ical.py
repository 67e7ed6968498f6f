"""booking/ical.py, the feeds' iCalendar writer: whatever the text, lines end with
CRLF, fit in 75 octets, never split a UTF-8 character, and unfold and unescape
back to the text (without the control characters TEXT cannot hold)."""

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import given
from hypothesis import strategies as st

from booking import ical

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def unfold(folded: str) -> str:
    assert folded.endswith("\r\n")
    return folded[:-2].replace("\r\n ", "")


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


@given(st.text(max_size=400))
def test_any_text_folds_into_short_crlf_lines_and_reads_back(value):
    folded = ical.line("DESCRIPTION:" + ical.text(value))

    raw = folded.encode()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b""
    for piece in lines[:-1]:
        assert len(piece) <= 75
        piece.decode()  # whole characters only
        assert b"\r" not in piece and b"\n" not in piece
    expected = CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    assert unescape(unfold(folded).removeprefix("DESCRIPTION:")) == expected


@given(st.text(max_size=200))
def test_icalendar_reads_the_same_text(value):
    document = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:x\r\nDTSTAMP:20270101T000000Z\r\n"
        + ical.line("SUMMARY:" + ical.text(value))
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    event = icalendar.Calendar.from_ical(document).walk("VEVENT")[0]

    expected = CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    assert str(event["SUMMARY"]) == expected


def test_date_times_are_written_in_utc_whatever_their_zone():
    paris = datetime(2027, 3, 28, 3, 30, 15, 999999, tzinfo=ZoneInfo("Europe/Paris"))

    assert ical.utc(paris) == "20270328T013015Z"
    assert ical.utc(datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20270102T030405Z"
    assert ical.day(date(2027, 3, 1)) == "20270301"


def test_durations():
    assert ical.duration(timedelta(hours=1)) == "PT1H"
    assert ical.duration(timedelta(minutes=15)) == "PT15M"
    assert ical.duration(timedelta(days=1, seconds=30)) == "P1DT30S"
    assert ical.duration(timedelta(0)) == "PT0S"

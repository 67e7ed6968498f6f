"""Reading calendar feeds the way calendar apps do, with three independent parsers:
`icalendar` (Python), `vobject` with validation (Python), and Mozilla's ical.js
(Thunderbird's parser, run with node). Each gives the events it understood as
{uid: (start, end)}, date-times as aware UTC instants, all-day events as dates."""

import json
import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import icalendar
import pytest
import vobject

READER = Path(__file__).with_name("ical_reader.mjs")
ROOT = Path(__file__).resolve().parents[2]


def _instant_or_day(value):
    if isinstance(value, datetime):
        # Floating (naive) times would be read in the reader's own zone: refused.
        assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0, value
        return value.astimezone(UTC)
    assert isinstance(value, date), value
    return value


def read_with_icalendar(body: bytes) -> dict:
    calendar = icalendar.Calendar.from_ical(body)
    events = {}
    for event in calendar.walk("VEVENT"):
        uid = str(event["UID"])
        assert uid not in events, f"duplicate UID {uid}"
        events[uid] = (
            _instant_or_day(event.decoded("DTSTART")),
            _instant_or_day(event.decoded("DTEND")),
        )
    return events


def read_with_vobject(body: bytes) -> dict:
    calendar = vobject.readOne(body.decode(), validate=True)
    events = {}
    for event in calendar.contents.get("vevent", []):
        uid = event.uid.value
        assert uid not in events, f"duplicate UID {uid}"
        events[uid] = (_instant_or_day(event.dtstart.value), _instant_or_day(event.dtend.value))
    return events


def node_or_skip() -> str:
    node = shutil.which("node")
    installed = (ROOT / "node_modules" / "ical.js" / "package.json").exists()
    if node and installed:
        return node
    reason = (
        "node is not installed" if not node else "ical.js is not installed (run `npm ci`)"
    ) + ": Mozilla's ical.js, the third parser, could not read the feed"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true requires it)")
    pytest.skip(reason)


def read_with_icaljs_raw(body: bytes) -> dict:
    """Everything ical.js understood (see ical_reader.mjs). Run in a time zone far
    from UTC, so that a time read as floating would land on a wrong instant."""
    completed = subprocess.run(
        [node_or_skip(), str(READER)],
        input=body,
        capture_output=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TZ": "Pacific/Auckland"},
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return json.loads(completed.stdout)


def _icaljs_moment(moment: dict):
    if moment.get("date"):
        return date.fromisoformat(moment["date"])
    assert moment["zone"] == "UTC", moment  # never floating
    return datetime.fromisoformat(moment["instant"].replace("Z", "+00:00")).astimezone(UTC)


def read_with_icaljs(body: bytes) -> dict:
    events = {}
    for event in read_with_icaljs_raw(body)["events"]:
        assert event["uid"] not in events, f"duplicate UID {event['uid']}"
        events[event["uid"]] = (_icaljs_moment(event["start"]), _icaljs_moment(event["end"]))
    return events


PARSERS = {
    "icalendar": read_with_icalendar,
    "vobject": read_with_vobject,
    "ical.js": read_with_icaljs,
}


def read_three_ways(body: bytes) -> dict:
    """The events the three parsers read, after checking that they agree."""
    readings = {name: parse(body) for name, parse in PARSERS.items()}
    first = readings["icalendar"]
    for name, reading in readings.items():
        assert reading == first, f"{name} reads the feed differently from icalendar"
    return first


def assert_wire_format(body: bytes) -> None:
    """Every line ends with CRLF and is at most 75 octets; no bare CR or LF."""
    assert body.endswith(b"\r\n")
    lines = body.split(b"\r\n")[:-1]
    for number, raw in enumerate(lines, 1):
        assert b"\n" not in raw and b"\r" not in raw, f"line {number}: bare CR or LF"
        assert len(raw) <= 75, f"line {number} has {len(raw)} octets: {raw!r}"
        raw.decode()  # folding never splits a UTF-8 character

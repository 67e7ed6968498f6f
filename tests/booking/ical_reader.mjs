// Reads an iCalendar document from stdin with Mozilla's ical.js (Thunderbird's
// parser) and prints what it understood as JSON, for tests/booking/test_feeds.py.
// Date-times are printed as UTC instants together with the zone ical.js saw, so a
// floating time (a TZID without its VTIMEZONE) shows up instead of passing unseen.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const text = readFileSync(0, "utf8");
const calendar = new ICAL.Component(ICAL.parse(text));

function moment(time) {
  if (time.isDate) return { date: time.toString(), zone: null };
  return { instant: time.toJSDate().toISOString(), zone: time.zone ? time.zone.tzid : null };
}

const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
  const event = new ICAL.Event(vevent);
  return {
    uid: event.uid,
    start: moment(event.startDate),
    end: moment(event.endDate),
    status: vevent.getFirstPropertyValue("status"),
    sequence: event.sequence,
    summary: event.summary,
    description: event.description,
    dtstamp: vevent.getFirstPropertyValue("dtstamp").toJSDate().toISOString(),
  };
});

const value = (name) => calendar.getFirstPropertyValue(name);
process.stdout.write(
  JSON.stringify({
    method: value("method"),
    uid: value("uid"),
    name: value("name"),
    calname: value("x-wr-calname"),
    refresh: value("refresh-interval") ? value("refresh-interval").toString() : null,
    ttl: value("x-published-ttl") ? value("x-published-ttl").toString() : null,
    events,
  }),
);

// A machine's week (FullCalendar, served from node_modules): free time, busy time and
// the organization's bookings; dragging across free time fills the booking form.
//
// FullCalendar runs in the platform's named time zone without a time-zone plugin, so
// its Date objects are "UTC-coerced": their UTC fields are the platform's wall clock.
// The events endpoint answers in wall-clock times for the same reason.
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }
  function wallDate(d) { return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  function wallTime(d) { return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()); }

  function fill(id, value) {
    var input = document.getElementById(id);
    if (input) { input.value = value; input.removeAttribute("aria-invalid"); }
  }

  function fillForm(start, end) {
    fill("id_start_date", wallDate(start));
    fill("id_start_time", wallTime(start));
    fill("id_end_date", wallDate(end));
    fill("id_end_time", wallTime(end));
    var button = document.getElementById("book-button");
    if (button) {
      button.scrollIntoView({ block: "nearest", behavior: "smooth" });
      button.focus({ preventScroll: true });
    }
  }

  function start() {
    var element = document.getElementById("calendar");
    var config = document.getElementById("calendar-config");
    if (!element || !config || !window.FullCalendar) { return; }
    config = JSON.parse(config.textContent);
    var phone = window.matchMedia("(max-width: 640px)").matches;
    var calendar = new FullCalendar.Calendar(element, {
      timeZone: config.timeZone,
      locale: config.locale,
      firstDay: 1,
      initialView: phone ? "timeGridThreeDay" : "timeGridWeek",
      initialDate: config.initialDate || undefined,
      views: { timeGridThreeDay: { type: "timeGrid", duration: { days: 3 } } },
      headerToolbar: phone
        ? { left: "prev,next", center: "title", right: "today" }
        : { left: "prev,next today", center: "title", right: "timeGridWeek,timeGridDay" },
      allDaySlot: false,
      nowIndicator: true,
      height: "auto",
      expandRows: true,
      slotMinTime: config.slotMin,
      slotMaxTime: config.slotMax,
      slotDuration: "00:30:00",
      slotLabelFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
      eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
      snapDuration: config.snap,
      businessHours: config.businessHours,
      selectable: true,
      selectMirror: true,
      unselectAuto: false,
      longPressDelay: 300,
      // Drag across free time only; the form still accepts any time (and says why not).
      selectOverlap: function (event) { return event.display === "background"; },
      select: function (info) { fillForm(info.start, info.end); },
      events: { url: config.eventsUrl },
      eventDidMount: function (info) {
        if (info.event.display !== "background") { info.el.setAttribute("title", info.event.title); }
      }
    });
    calendar.render();
    element.setAttribute("data-ready", "true");
    // htmx answers a booking with HX-Trigger: booking-changed.
    document.body.addEventListener("booking-changed", function () {
      calendar.unselect();
      calendar.refetchEvents();
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();

"""SME pages: catalogue, a machine's week, booking, "find me a machine", my
bookings. Thin: they read through the `visible_to` querysets and
booking/selectors.py, write through booking/services.py, and put the services'
domain errors next to the fields they are about."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from billing.pricing import prices_for
from booking import selectors, services
from booking.errors import BookingConflict, BookingRejected, SeriesNotBookable
from booking.models import Booking, BookingSeries
from booking.rules import BOOKING_ROLES, BOOKING_STAFF_ROLES, cancellation_deadline
from core.errors import DomainError
from core.models import Organization
from equipment.models import (
    Machine,
    OpeningHours,
    Platform,
    Qualification,
    UserQualification,
)
from frontend.forms import BookingForm, CatalogueFilter, FindForm, MoveForm, PeriodForm
from frontend.outcomes import put_back, reported

# The calendar loads at most this much at once (the API's availability window).
MAX_CALENDAR_DAYS = 62


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _machines(user):
    return Machine.objects.visible_to(user).select_related("platform", "machine_type")


def _bookings(user):
    return Booking.objects.visible_to(user).select_related(
        "machine__platform", "machine__machine_type", "organization", "booked_by"
    )


def booking_organizations(user, machine: Machine) -> list[Organization]:
    """Whom `user` may book `machine` for: their organizations where they book
    (admins, members), and, for the platform's managers and operators, every
    organization that books there. The services check it again."""
    mine = Q(memberships__user=user, memberships__role__in=BOOKING_ROLES)
    if (
        user.is_superuser
        or machine.platform.staff.filter(user=user, role__in=BOOKING_STAFF_ROLES).exists()
    ):
        mine |= Q(platform_memberships__platform=machine.platform_id)
    return list(Organization.objects.filter(mine).distinct().order_by("legal_name"))


# --- Platforms and catalogue --------------------------------------------------------------


@login_required
def platforms(request):
    found = (
        Platform.objects.visible_to(request.user)
        .annotate(machine_count=Count("machines", filter=Q(machines__is_active=True)))
        .prefetch_related("labels", Prefetch("opening_hours", OpeningHours.objects.all()))
    )
    return render(request, "frontend/platforms.html", {"platforms": found})


@login_required
def catalogue(request):
    form = CatalogueFilter(request.GET or None, user=request.user)
    machines = _machines(request.user).filter(is_active=True).prefetch_related("platform__labels")
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            machines = machines.filter(
                Q(name__icontains=data["q"])
                | Q(description__icontains=data["q"])
                | Q(machine_type__name__icontains=data["q"])
            )
        if data["type"]:
            machines = machines.filter(machine_type=data["type"])
        if data["label"]:
            machines = machines.filter(platform__labels=data["label"])
        if data["platform"]:
            machines = machines.filter(platform=data["platform"])
    machines = machines.order_by("machine_type__category", "machine_type__name", "name", "pk")
    return render(
        request,
        "frontend/catalogue.html",
        {"form": form, "machines": machines, "filtered": bool(request.GET)},
    )


def _parse_moment(value: str, tz) -> datetime | None:
    """An ISO date-time; without an offset, in `tz` (what FullCalendar sends)."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


@login_required
def machine(request, pk):
    machine = get_object_or_404(_machines(request.user), pk=pk)
    platform = machine.platform
    organizations = booking_organizations(request.user, machine)
    initial = {}
    start = _parse_moment(request.GET.get("start", ""), platform.tzinfo)
    end = _parse_moment(request.GET.get("end", ""), platform.tzinfo)
    if start and end:
        initial = PeriodForm.initial_for(start, end, platform.tzinfo)
    form = BookingForm(initial=initial, tz=platform.tzinfo, organizations=organizations)
    return render(
        request,
        "frontend/machine.html",
        {**_machine_context(request, machine, initial_date=start), "form": form},
    )


def _machine_context(request, machine: Machine, initial_date: datetime | None = None) -> dict:
    qualifications = list(
        Qualification.objects.filter(platform=machine.platform_id).filter(
            Q(machine=machine) | Q(machine_type=machine.machine_type_id)
        )
    )
    # As booking/rules.py reads it: valid on the platform's local day, its expiry
    # day included; the platform's managers and operators need none.
    today = timezone.localdate(timezone=machine.platform.tzinfo)
    held = set(
        UserQualification.objects.filter(
            user=request.user, qualification__in=qualifications, granted_on__lte=today
        )
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        .values_list("qualification_id", flat=True)
    )
    booking_staff = Platform.objects.staffed_by(request.user, BOOKING_STAFF_ROLES).filter(
        pk=machine.platform_id
    )
    hours = list(OpeningHours.objects.filter(platform=machine.platform_id))
    step = machine.granularity_minutes
    calendar_config = {
        "eventsUrl": reverse("machine-events", args=[machine.pk]),
        "timeZone": machine.platform.timezone,
        "locale": get_language(),
        "businessHours": [
            {
                "daysOfWeek": [(h.weekday + 1) % 7],  # FullCalendar: 0 is Sunday
                "startTime": h.opens_at.strftime("%H:%M"),
                "endTime": h.closes_at.strftime("%H:%M"),
            }
            for h in hours
        ],
        "slotMin": min((h.opens_at for h in hours), default=time(7)).strftime("%H:00"),
        "slotMax": _round_up_hour(max((h.closes_at for h in hours), default=time(20))),
        "snap": f"{step // 60:02d}:{step % 60:02d}:00",
        "initialDate": (
            initial_date.astimezone(machine.platform.tzinfo).date().isoformat()
            if initial_date
            else None
        ),
    }
    return {
        "machine": machine,
        "platform": machine.platform,
        "prices": prices_for(request.user, machine, today),
        "qualifications": qualifications,
        "qualified": not machine.qualification_required or bool(held) or booking_staff.exists(),
        "held_qualifications": held,
        "opening_hours": hours,
        "calendar_config": calendar_config,
    }


def _round_up_hour(moment: time) -> str:
    hour = moment.hour + (1 if moment.minute or moment.second else 0)
    return f"{min(hour, 24):02d}:00"


@login_required
@require_GET
def machine_events(request, pk):
    """The machine's week for FullCalendar: free time (background), busy time
    (anonymous), and the bookings the user may see, titled. Times are local
    wall-clock times of the platform (FullCalendar runs in its named zone)."""
    machine = get_object_or_404(_machines(request.user), pk=pk)
    tz = machine.platform.tzinfo
    start = _parse_moment(request.GET.get("start", ""), tz)
    end = _parse_moment(request.GET.get("end", ""), tz)
    if not (start and end) or end <= start or end - start > timedelta(days=MAX_CALENDAR_DAYS):
        return HttpResponseBadRequest(
            _("Give start and end, at most %(n)d days apart.") % {"n": MAX_CALENDAR_DAYS}
        )
    found = selectors.machine_availability(machine=machine, start=start, end=end)

    def wall(moment: datetime) -> str:
        return moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="minutes")

    # Time already gone is not shown free: nobody can book it.
    now = timezone.now()
    events = [
        {
            "start": wall(max(s, now)),
            "end": wall(e),
            "display": "background",
            "classNames": ["free"],
        }
        for s, e in found.free
        if e > now
    ]
    visible = list(
        Booking.objects.visible_to(request.user)
        .active()
        .filter(machine=machine, start__lt=end, blocked_until__gt=start)
        .select_related("organization")
    )
    known = {(b.start, b.blocked_until) for b in visible}
    for block in found.busy:
        if block["kind"] == "booking" and (block["start"], block["end"]) in known:
            continue  # shown below, with its title
        maintenance = block["kind"] == "maintenance"
        events.append(
            {
                "start": wall(block["start"]),
                "end": wall(block["end"]),
                "title": _("Maintenance") if maintenance else _("Booked"),
                "classNames": ["maintenance" if maintenance else "busy"],
            }
        )
    for booking in visible:
        pending = booking.status == Booking.Status.PENDING
        events.append(
            {
                "start": wall(booking.start),
                "end": wall(booking.end),
                "title": (booking.title or booking.organization.legal_name)
                + (" · " + _("pending") if pending else ""),  # xgettext skips f-strings
                "url": reverse("booking", args=[booking.pk]),
                "classNames": ["mine", "pending" if pending else "confirmed"],
            }
        )
    return JsonResponse(events, safe=False)


@login_required
@require_POST
def book(request, pk):
    """Book from the machine page's form (or a suggestion's one-click form)."""
    machine = get_object_or_404(_machines(request.user), pk=pk)
    organizations = booking_organizations(request.user, machine)
    form = BookingForm(request.POST, tz=machine.platform.tzinfo, organizations=organizations)
    panel = {"machine": machine, "form": form}
    if form.is_valid():
        data = form.cleaned_data
        by_id = {o.pk: o for o in organizations}
        fields = {
            "machine": machine,
            "organization": by_id[data["organization"]],
            "by": request.user,
            "start": data["start"],
            "end": data["end"],
            "title": data["title"],
            "note": data["note"],
        }
        try:
            if form.rule:
                series, report = services.create_series(
                    **fields, rule=form.rule, skip_conflicts=data["skip_conflicts"]
                )
                panel.update(series=series, report=report)
            else:
                panel["booking"] = services.create_booking(**fields)
        except BookingRejected as refusal:
            form.add_problems(refusal.problems)
        except BookingConflict as conflict:
            panel.update(conflicts=conflict.conflicts, suggestions=conflict.suggestions)
        except SeriesNotBookable as refusal:
            panel.update(report=refusal.details["occurrences"], series_refused=refusal.message)
        except ValidationError as invalid:
            put_back(form, invalid, rename={"rule": "repeat"})
        except DomainError as error:
            form.add_error(None, error.message)
    if panel.get("suggestions"):
        _load_suggested_machines(request.user, panel["suggestions"])
    done = "booking" in panel or "series" in panel
    if _is_htmx(request):
        response = render(request, "frontend/machines/_booking_panel.html", panel)
        if done:
            response["HX-Trigger"] = "booking-changed"
        return response
    if "booking" in panel:
        messages.success(request, _("Booked."))
        return redirect("booking", pk=panel["booking"].pk)
    context = {**_machine_context(request, machine), **panel}
    return render(request, "frontend/machine.html", context, status=200 if done else 400)


def _load_suggested_machines(user, suggestions: dict) -> None:
    """Suggested other machines, with the URL their one-click form posts to."""
    for other in suggestions.get("other_machines", []):
        other["book_url"] = reverse("book", args=[other["machine"]])


# --- "Find me a machine" ----------------------------------------------------------------------


@login_required
def find(request):
    today = timezone.localdate()
    form = FindForm(request.GET or None, user=request.user, initial=FindForm.defaults(today))
    results = None
    if form.is_valid():
        data = form.cleaned_data
        machines = list(
            _machines(request.user)
            .filter(machine_type=data["machine_type"], is_active=True)
            .order_by("platform__name", "name", "pk")
        )
        if data["platform"]:
            machines = [m for m in machines if m.platform_id == data["platform"].pk]
        results = []
        if machines:
            tz = (data["platform"] or machines[0].platform).tzinfo
            start = datetime.combine(data["first_day"], time(0)).replace(tzinfo=tz)
            end = datetime.combine(data["last_day"] + timedelta(days=1), time(0)).replace(tzinfo=tz)
            slots = selectors.search_slots(
                machines=machines,
                duration=timedelta(minutes=data["duration"]),
                start=start,
                end=end,
                limit=3,
            )
            results = [
                {"machine": m, "slots": [{"start": s, "end": e} for s, e in slots[m.pk]]}
                for m in machines
            ]
            # Machines with a slot first, the earliest first; the others keep their order.
            results.sort(
                key=lambda r: (not r["slots"], r["slots"][0]["start"] if r["slots"] else 0)
            )
    organizations = _my_booking_organizations(request.user)
    return render(
        request,
        "frontend/find.html",
        {"form": form, "results": results, "organization": _only(organizations)},
    )


def _my_booking_organizations(user) -> list[Organization]:
    return list(
        Organization.objects.filter(
            memberships__user=user, memberships__role__in=BOOKING_ROLES
        ).order_by("legal_name")
    )


def _only(items: list):
    return items[0] if len(items) == 1 else None


# --- My bookings --------------------------------------------------------------------------


@login_required
def my_bookings(request):
    now = timezone.now()
    which = "past" if request.GET.get("show") == "past" else "upcoming"
    mine = _bookings(request.user).filter(booked_by=request.user)
    current = Q(end__gt=now, status__in=Booking.ACTIVE_STATUSES)
    if which == "upcoming":
        bookings = mine.filter(current).order_by("start", "pk")
    else:
        bookings = mine.exclude(current).order_by("-start", "-pk")
    page = Paginator(bookings, 25).get_page(request.GET.get("page"))
    for booking in page:
        booking.actions = actions(booking, now)
    return render(request, "frontend/my_bookings.html", {"page": page, "which": which})


def actions(booking: Booking, now: datetime) -> dict:
    """Which buttons to offer. Hints only, to avoid offering what would fail:
    the services decide, and their refusals are shown if it comes to that."""
    started = booking.start <= now or booking.checked_in_at is not None
    deadline = cancellation_deadline(booking)
    confirmed = booking.status == Booking.Status.CONFIRMED
    return {
        "change": booking.is_active and not started,
        "late": now > deadline,
        "check_in": confirmed
        and booking.checked_in_at is None
        and services.check_in_open(booking, now),
        "check_out": confirmed and booking.checked_in_at is not None,
    }


def _booking_or_404(request, pk) -> Booking:
    return get_object_or_404(_bookings(request.user), pk=pk)


@login_required
def booking(request, pk):
    """The booking, and its move form; a clash offers the next free slots of the
    same length on the same machine, one click to move there (in place with htmx)."""
    booking = _booking_or_404(request, pk)
    platform = booking.machine.platform
    form = MoveForm(
        request.POST or None,
        tz=platform.tzinfo,
        initial=PeriodForm.initial_for(booking.start, booking.end, platform.tzinfo),
    )
    conflicts = suggestions = None
    if request.method == "POST" and form.is_valid():
        try:
            services.move_booking(
                booking=booking,
                by=request.user,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
            )
        except BookingRejected as refusal:
            form.add_problems(refusal.problems)
        except BookingConflict as conflict:
            conflicts = conflict.conflicts
            # A move stays on its machine: only that machine's free slots are offered.
            suggestions = (conflict.suggestions or {}).get("same_machine") or []
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Booking moved."))
            target = reverse("booking", args=[booking.pk])
            if _is_htmx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = target
                return response
            return redirect(target)
    booking.actions = actions(booking, timezone.now())
    status = 400 if request.method == "POST" else 200
    context = {
        "booking": booking,
        "form": form,
        "conflicts": conflicts,
        "suggestions": suggestions,
        "platform": platform,
    }
    if _is_htmx(request) and request.method == "POST":
        # htmx swaps 4xx answers only when told to; the panel is a normal answer.
        return render(request, "frontend/bookings/_move_panel.html", context)
    return render(request, "frontend/booking.html", context, status=status)


@login_required
def cancel(request, pk):
    """GET: say what cancelling means now (late or not); POST: cancel."""
    booking = _booking_or_404(request, pk)
    if request.method == "POST":
        with reported(request, done=lambda: _("Booking cancelled.")) as outcome:
            services.cancel_booking(
                booking=booking, by=request.user, reason=request.POST.get("reason", "")[:500]
            )
        return redirect("my-bookings" if outcome.ok else reverse("booking", args=[booking.pk]))
    booking.actions = actions(booking, timezone.now())
    return render(request, "frontend/cancel.html", {"booking": booking})


def _lifecycle(service, done_message):
    @login_required
    @require_POST
    def view(request, pk):
        booking = _booking_or_404(request, pk)
        with reported(request, done=done_message):
            service(booking=booking, by=request.user)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("booking", args=[booking.pk])
        return redirect(target)

    return view


check_in = _lifecycle(services.check_in, lambda: _("Checked in. Have a good session."))
check_out = _lifecycle(services.check_out, lambda: _("Checked out. Thank you."))


@login_required
def series(request, pk):
    series = get_object_or_404(
        BookingSeries.objects.visible_to(request.user).select_related("machine__platform"), pk=pk
    )
    if request.method == "POST":
        cancelled = []
        with reported(
            request, done=lambda: _("%(n)d upcoming bookings cancelled.") % {"n": len(cancelled)}
        ):
            cancelled = services.cancel_series(series=series, by=request.user)
        return redirect("series", pk=series.pk)
    occurrences = series.bookings.order_by("start", "pk")
    return render(
        request,
        "frontend/series.html",
        {"series": series, "occurrences": occurrences, "platform": series.machine.platform},
    )

"""Platform staff desk, per platform: today's board, machines and their booking
policy, opening hours and closures, qualifications granted. A platform where the
user holds none of the page's roles answers 404; equipment/services.py and
booking/services.py check the role again on every write."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from billing import services as billing_services
from billing.models import Consumable, ConsumableUse
from booking import services as booking_services
from booking.models import Booking
from core.models import User
from equipment import permissions as perms
from equipment import services as equipment_services
from equipment.models import (
    Closure,
    Machine,
    OpeningHours,
    Platform,
    PlatformStaff,
    Qualification,
    UserQualification,
)
from frontend.forms import (
    MACHINE_POLICY_FIELDS,
    ClosureForm,
    ConsumableUseForm,
    ExpiryForm,
    GrantForm,
    MachinePolicyForm,
    OpeningHoursForm,
)
from frontend.outcomes import onto, reported
from frontend.templatetags.fabpool import quantity

# Who works the desk pages of a platform.
BOARD_ROLES = {perms.MANAGER, perms.OPERATOR}


def _platform(request, pk: int, roles: set[str]) -> Platform:
    return get_object_or_404(Platform.objects.staffed_by(request.user, roles=roles), pk=pk)


def _desk_context(request, platform: Platform, roles: set[str]) -> dict:
    """The platform switcher: the other platforms where the user holds the page's roles."""
    role = (
        perms.MANAGER
        if request.user.is_superuser
        else PlatformStaff.objects.filter(user=request.user, platform=platform)
        .values_list("role", flat=True)
        .first()
    )
    return {
        "platform": platform,
        "desk_role": role,
        "platforms": Platform.objects.staffed_by(request.user, roles=roles).order_by("name"),
    }


def _first_platform(request, roles: set[str], name: str):
    platform = Platform.objects.staffed_by(request.user, roles=roles).order_by("name").first()
    if platform is None:
        raise Http404
    return redirect(name, pk=platform.pk)


# --- Today's board ----------------------------------------------------------------------


@login_required
def today_index(request):
    return _first_platform(request, BOARD_ROLES, "desk-today")


def board_row(booking: Booking, now: datetime) -> dict:
    """Which buttons to offer on the board, and whether the person is late.
    Hints only: booking/services.py and billing/services.py decide, and their
    refusals are shown."""
    confirmed = booking.status == Booking.Status.CONFIRMED
    waiting = confirmed and booking.checked_in_at is None
    return {
        "late": waiting and booking.start <= now,
        "check_in": waiting and booking_services.check_in_open(booking, now),
        "check_out": confirmed and booking.checked_in_at is not None,
        "no_show": waiting and booking_services.no_show_due(booking, now),
        "consumables": billing_services.takes_consumables(booking),
    }


def _board_url(platform: Platform, booking_pk: int, record: bool = False) -> str:
    """Back to the board, at the booking's row; `record`: with its consumables open."""
    query = f"?record={booking_pk}" if record else ""
    return f"{reverse('desk-today', args=[platform.pk])}{query}#booking-{booking_pk}"


@login_required
def today(request, pk):
    return _board(request, _platform(request, pk, BOARD_ROLES))


def _board(request, platform: Platform, refused: tuple[Booking, ConsumableUseForm] | None = None):
    """Today's board. `refused`: a booking and its consumables form that was
    refused, shown again on its row with its errors and what was typed (400)."""
    refused_pk, refused_form = refused or (None, None)
    tz = platform.tzinfo
    now = timezone.now()
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0)).replace(tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0)).replace(tzinfo=tz)
    bookings = list(
        Booking.objects.filter(
            machine__platform=platform,
            start__lt=end,
            end__gt=start,
            status__in=[
                Booking.Status.PENDING,
                Booking.Status.CONFIRMED,
                Booking.Status.COMPLETED,
                Booking.Status.NO_SHOW,
            ],
        )
        .select_related("machine__platform", "organization", "booked_by")
        .order_by("start", "machine__name", "pk")
    )
    for booking in bookings:
        booking.board = board_row(booking, now)
        booking.uses = []
        booking.use_form = refused_form if booking.pk == refused_pk else None
    # Consumables: two queries for the whole board, and none when nobody checked in.
    checked_in = {b.pk: b for b in bookings if b.checked_in_at}
    consumables = []
    if refused_form is not None:  # the refused form has just read them
        consumables = list(refused_form.on_sale.values())
    elif any(b.board["consumables"] for b in bookings):
        consumables = list(Consumable.objects.filter(platform=platform, is_active=True))
    if checked_in:
        for use in ConsumableUse.objects.filter(booking__in=list(checked_in)).select_related(
            "consumable"
        ):
            booking = checked_in[use.booking_id]
            use.text = _use_text(use)  # as the messages say it
            use.remove_label = _("Remove %(what)s, recorded for %(who)s") % {
                "what": use.text,
                "who": booking.booked_by.get_full_name() or booking.booked_by.email,
            }
            booking.uses.append(use)
    if refused and refused_pk not in {b.pk for b in bookings}:  # not today's: said above
        messages.error(request, " ".join(e for el in refused_form.errors.values() for e in el))
    counts = {
        "due": sum(1 for b in bookings if b.status == Booking.Status.CONFIRMED),
        "late": sum(1 for b in bookings if b.board["late"]),
        "in": sum(1 for b in bookings if b.board["check_out"]),
    }
    record = request.GET.get("record", "")
    return render(
        request,
        "frontend/desk/today.html",
        {
            **_desk_context(request, platform, BOARD_ROLES),
            "bookings": bookings,
            "day": start,
            "counts": counts,
            "consumables": consumables,
            "record": int(record) if record.isdigit() else None,
            "desk_page": "desk-today",  # also when a refused form is shown at its own URL
            "board_url": reverse("desk-today", args=[platform.pk]),
        },
        status=400 if refused else 200,
    )


def _board_booking(request, pk, booking_pk) -> tuple[Platform, Booking]:
    platform = _platform(request, pk, BOARD_ROLES)
    booking = get_object_or_404(
        Booking.objects.select_related("machine__platform", "booked_by"),
        pk=booking_pk,
        machine__platform=platform,
    )
    return platform, booking


def _board_action(service, done_message, then_record: bool = False):
    @login_required
    @require_POST
    def view(request, pk, booking_pk):
        platform, booking = _board_booking(request, pk, booking_pk)
        who = booking.booked_by.get_full_name() or "—"
        with reported(request, done=lambda: done_message() % {"who": who}) as outcome:
            service(booking=booking, by=request.user)
        return redirect(_board_url(platform, booking.pk, record=then_record and outcome.ok))

    return view


board_check_in = _board_action(booking_services.check_in, lambda: _("%(who)s checked in."))
# Checked out: the row opens its consumables, for what was used to be recorded now.
board_check_out = _board_action(
    booking_services.check_out, lambda: _("%(who)s checked out."), then_record=True
)
board_no_show = _board_action(
    booking_services.mark_no_show, lambda: _("%(who)s marked as a no-show.")
)


@login_required
@require_POST
def board_record_consumable(request, pk, booking_pk):
    """Consumables used during a booking, from its check-in on (at check-out or
    after), through billing/services.py as the API's /consumable-uses/ does."""
    platform, booking = _board_booking(request, pk, booking_pk)
    on_sale = Consumable.objects.filter(platform=platform, is_active=True)
    form = ConsumableUseForm(request.POST, consumables=on_sale, prefix=f"use-{booking.pk}")
    if form.is_valid():
        data = form.cleaned_data
        with onto(form) as outcome:
            use = billing_services.record_consumable_use(
                booking=booking,
                consumable=data["consumable"],
                quantity=data["quantity"],
                by=request.user,
            )
        if outcome.ok:
            messages.success(
                request,
                _("Recorded for %(who)s: %(what)s.")
                % {"who": booking.booked_by.get_full_name() or "—", "what": _use_text(use)},
            )
            return redirect(_board_url(platform, booking.pk))
    return _board(request, platform, refused=(booking.pk, form))


@login_required
@require_POST
def board_remove_consumable(request, pk, use_pk):
    """A mistaken entry goes (while it is on no issued invoice: the service says)."""
    platform = _platform(request, pk, BOARD_ROLES)
    use = get_object_or_404(
        ConsumableUse.objects.select_related("consumable", "booking__machine__platform"),
        pk=use_pk,
        booking__machine__platform=platform,
    )
    with reported(request, done=lambda: _("Removed: %(what)s.") % {"what": _use_text(use)}):
        billing_services.delete_consumable_use(use=use, by=request.user)
    return redirect(_board_url(platform, use.booking_id))


def _use_text(use: ConsumableUse) -> str:
    return _("%(name)s, %(quantity)s %(unit)s") % {
        "name": use.consumable.name,
        "quantity": quantity(use.quantity),
        "unit": use.consumable.unit,
    }


# --- Machines -----------------------------------------------------------------------------


@login_required
def machines_index(request):
    return _first_platform(request, perms.CAN_EDIT_MACHINES, "desk-machines")


@login_required
def machines(request, pk):
    platform = _platform(request, pk, perms.CAN_EDIT_MACHINES)
    now = timezone.now()
    found = (
        Machine.objects.filter(platform=platform)
        .select_related("machine_type")
        .annotate(
            upcoming=Count(
                "bookings",
                filter=Q(bookings__end__gt=now, bookings__status__in=Booking.ACTIVE_STATUSES),
            )
        )
        .order_by("-is_active", "name", "pk")
    )
    return render(
        request,
        "frontend/desk/machines.html",
        {**_desk_context(request, platform, perms.CAN_EDIT_MACHINES), "machines": found},
    )


def _staff_machine(request, pk, machine_pk) -> tuple[Platform, Machine]:
    platform = _platform(request, pk, perms.CAN_EDIT_MACHINES)
    machine = get_object_or_404(
        Machine.objects.select_related("machine_type", "platform"), pk=machine_pk, platform=platform
    )
    return platform, machine


@login_required
def machine_edit(request, pk, machine_pk):
    platform, machine = _staff_machine(request, pk, machine_pk)
    form = MachinePolicyForm(request.POST or None, instance=machine)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = {
                f: form.cleaned_data[f] for f in ["name", "description", *MACHINE_POLICY_FIELDS]
            }
            with onto(form) as outcome:
                equipment_services.update_machine(machine=machine, by=request.user, data=data)
            if outcome.ok:
                messages.success(request, _("Booking policy saved."))
                return redirect("desk-machines", pk=platform.pk)
        # A refused save leaves the instance changed in memory: show the stored name.
        machine.refresh_from_db(fields=["name"])
    return render(
        request,
        "frontend/desk/machine_edit.html",
        {
            **_desk_context(request, platform, perms.CAN_EDIT_MACHINES),
            "machine": machine,
            "form": form,
        },
        status=status,
    )


@login_required
@require_POST
def machine_retire(request, pk, machine_pk):
    """Retire (not bookable any more, bookings kept) or bring back a machine."""
    platform, machine = _staff_machine(request, pk, machine_pk)
    active = request.POST.get("active") == "1"
    done = _("%(name)s can be booked again.") if active else _("%(name)s is retired.")
    with reported(request, done=lambda: done % {"name": machine.name}):
        equipment_services.update_machine(
            machine=machine, by=request.user, data={"is_active": active}
        )
    return redirect("desk-machines", pk=platform.pk)


# --- Opening hours and closures --------------------------------------------------------------


@login_required
def hours_index(request):
    return _first_platform(request, perms.CAN_EDIT_HOURS_AND_CLOSURES, "desk-hours")


@login_required
def hours(request, pk):
    platform = _platform(request, pk, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    which = request.POST.get("form")
    hours_form = OpeningHoursForm(request.POST if which == "hours" else None, prefix="hours")
    closure_form = ClosureForm(request.POST if which == "closure" else None, prefix="closure")
    status = 200
    if request.method == "POST":
        status = 400
        form = hours_form if which == "hours" else closure_form
        if which in ("hours", "closure") and form.is_valid():
            create = (
                equipment_services.create_opening_hours
                if which == "hours"
                else equipment_services.create_closure
            )
            with onto(form) as outcome:
                create(platform=platform, by=request.user, **form.cleaned_data)
            if outcome.ok:
                messages.success(
                    request, _("Opening hours added.") if which == "hours" else _("Closure added.")
                )
                return redirect("desk-hours", pk=platform.pk)
    today = timezone.now().astimezone(platform.tzinfo).date()
    return render(
        request,
        "frontend/desk/hours.html",
        {
            **_desk_context(request, platform, perms.CAN_EDIT_HOURS_AND_CLOSURES),
            "opening_hours": OpeningHours.objects.filter(platform=platform).order_by(
                "weekday", "opens_at", "pk"
            ),
            "closures": Closure.objects.filter(platform=platform, end_date__gte=today).order_by(
                "start_date", "pk"
            ),
            "hours_form": hours_form,
            "closure_form": closure_form,
        },
        status=status,
    )


@login_required
@require_POST
def hours_delete(request, pk, hours_pk):
    platform = _platform(request, pk, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    span = get_object_or_404(OpeningHours, pk=hours_pk, platform=platform)
    with reported(request, done=lambda: _("Opening hours removed.")):
        equipment_services.delete_opening_hours(hours=span, by=request.user)
    return redirect("desk-hours", pk=platform.pk)


@login_required
@require_POST
def closure_delete(request, pk, closure_pk):
    platform = _platform(request, pk, perms.CAN_EDIT_HOURS_AND_CLOSURES)
    closure = get_object_or_404(Closure, pk=closure_pk, platform=platform)
    with reported(request, done=lambda: _("Closure removed.")):
        equipment_services.delete_closure(closure=closure, by=request.user)
    return redirect("desk-hours", pk=platform.pk)


# --- Qualifications granted ----------------------------------------------------------------


@login_required
def qualifications_index(request):
    return _first_platform(request, perms.CAN_GRANT_QUALIFICATIONS, "desk-qualifications")


@login_required
def qualifications(request, pk):
    platform = _platform(request, pk, perms.CAN_GRANT_QUALIFICATIONS)
    offered = Qualification.objects.filter(platform=platform).order_by("name", "pk")
    today = timezone.now().astimezone(platform.tzinfo).date()
    form = GrantForm(request.POST or None, qualifications=offered, initial={"granted_on": today})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            person = User.objects.filter(email__iexact=data["email"]).first()
            if person is None:
                form.add_error("email", _("Nobody has signed up with this address."))
            else:
                with onto(form, rename={"user": "email", "__all__": "email"}) as outcome:
                    equipment_services.grant_qualification(
                        qualification=data["qualification"],
                        user=person,
                        by=request.user,
                        granted_on=data["granted_on"],
                        expires_on=data["expires_on"],
                    )
                if outcome.ok:
                    messages.success(request, _("Qualification granted."))
                    return redirect("desk-qualifications", pk=platform.pk)
    grants = (
        UserQualification.objects.filter(qualification__platform=platform)
        .select_related("qualification", "user", "granted_by")
        .order_by("qualification__name", "user__email", "pk")
    )
    return render(
        request,
        "frontend/desk/qualifications.html",
        {
            **_desk_context(request, platform, perms.CAN_GRANT_QUALIFICATIONS),
            "grants": grants,
            "form": form,
            "today": today,
            "soon": today + timedelta(days=30),
            "has_qualifications": offered.exists(),
        },
        status=status,
    )


def _grant(request, pk, grant_pk) -> tuple[Platform, UserQualification]:
    platform = _platform(request, pk, perms.CAN_GRANT_QUALIFICATIONS)
    grant = get_object_or_404(
        UserQualification.objects.select_related("qualification__platform"),
        pk=grant_pk,
        qualification__platform=platform,
    )
    return platform, grant


@login_required
@require_POST
def grant_expiry(request, pk, grant_pk):
    platform, grant = _grant(request, pk, grant_pk)
    form = ExpiryForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Type a date, or leave it empty for no expiry."))
        return redirect("desk-qualifications", pk=platform.pk)
    with reported(request, done=lambda: _("Expiry saved.")):
        equipment_services.update_granted_qualification(
            grant=grant, by=request.user, data={"expires_on": form.cleaned_data["expires_on"]}
        )
    return redirect("desk-qualifications", pk=platform.pk)


@login_required
@require_POST
def grant_revoke(request, pk, grant_pk):
    platform, grant = _grant(request, pk, grant_pk)
    with reported(request, done=lambda: _("Qualification revoked.")):
        equipment_services.revoke_qualification(grant=grant, by=request.user)
    return redirect("desk-qualifications", pk=platform.pk)

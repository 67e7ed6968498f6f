"""Platform staff desk: the approval queue and maintenance windows. Reads are
limited to the platforms the user staffs; booking/services.py and
equipment/services.py check the role again on every write."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from booking import services as booking_services
from booking.models import Booking
from equipment import permissions as perms
from equipment import services as equipment_services
from equipment.models import Machine, MaintenanceWindow, Platform
from frontend.forms import MaintenanceForm, RejectForm
from frontend.outcomes import onto, reported


def _pending(user):
    return (
        Booking.objects.filter(
            status=Booking.Status.PENDING,
            machine__platform__in=Platform.objects.staffed_by(user, roles=[perms.MANAGER]),
        )
        .select_related("machine__platform", "organization", "booked_by")
        .order_by("start", "pk")
    )


def _require_desk(user, roles) -> None:
    """A desk page the user's role lacks answers 404, as the other desk pages do."""
    if not Platform.objects.staffed_by(user, roles=roles).exists():
        raise Http404


@login_required
def approvals(request):
    _require_desk(request.user, [perms.MANAGER])
    return render(
        request,
        "frontend/desk/approvals.html",
        {"bookings": _pending(request.user), "reject_form": RejectForm()},
    )


def _decide(request, pk, decide):
    booking = get_object_or_404(Booking.objects.visible_to(request.user), pk=pk)
    with reported(request) as outcome:
        decide(booking)
    return outcome.ok


@login_required
@require_POST
def approve(request, pk):
    if _decide(
        request,
        pk,
        lambda b: booking_services.approve_booking(
            booking=b, by=request.user, note=request.POST.get("note", "")[:500]
        ),
    ):
        messages.success(request, _("Booking approved."))
    return redirect("desk-approvals")


@login_required
@require_POST
def reject(request, pk):
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the booking is rejected."))
        return redirect("desk-approvals")
    if _decide(
        request,
        pk,
        lambda b: booking_services.reject_booking(
            booking=b, by=request.user, reason=form.cleaned_data["reason"]
        ),
    ):
        messages.success(request, _("Booking rejected."))
    return redirect("desk-approvals")


def _maintainable(user):
    return (
        Machine.objects.filter(
            platform__in=Platform.objects.staffed_by(user, roles=perms.CAN_EDIT_MAINTENANCE)
        )
        .select_related("platform")
        .order_by("platform__name", "name")
    )


@login_required
def maintenance(request):
    _require_desk(request.user, perms.CAN_EDIT_MAINTENANCE)
    machines = _maintainable(request.user)
    # The time zone is the chosen machine's platform's (MaintenanceForm.clean).
    form = MaintenanceForm(
        request.POST or None, machines=machines, tz=timezone.get_default_timezone()
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            with onto(form, rename={"start": "start_time", "end": "end_time"}) as outcome:
                equipment_services.create_maintenance_window(
                    machine=data["machine"],
                    by=request.user,
                    start=data["start"],
                    end=data["end"],
                    reason=data["reason"],
                )
            if outcome.ok:
                messages.success(request, _("Maintenance window added."))
                return redirect("desk-maintenance")
    windows = (
        MaintenanceWindow.objects.filter(machine__in=machines, end__gt=timezone.now())
        .select_related("machine__platform")
        .order_by("start", "pk")
    )
    return render(
        request,
        "frontend/desk/maintenance.html",
        {"form": form, "windows": windows, "has_machines": machines.exists()},
        status=status,
    )

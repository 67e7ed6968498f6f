from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from booking.models import Booking
from core import services as core_services
from core.errors import DomainError
from equipment.models import Platform


def home(request):
    platforms, upcoming = [], []
    if request.user.is_authenticated:
        platforms = (
            Platform.objects.visible_to(request.user)
            .annotate(machine_count=Count("machines", filter=Q(machines__is_active=True)))
            .prefetch_related("labels")
        )
        upcoming = (
            Booking.objects.visible_to(request.user)
            .filter(
                booked_by=request.user,
                end__gt=timezone.now(),
                status__in=Booking.ACTIVE_STATUSES,
            )
            .select_related("machine__platform")
            .order_by("start", "pk")[:3]
        )
    return render(request, "frontend/home.html", {"platforms": platforms, "upcoming": upcoming})


@login_required
def accept_invitation(request):
    token = request.POST.get("token") or request.GET.get("token", "")
    error = None
    if request.method == "POST":
        try:
            membership = core_services.accept_invitation(secret=token, user=request.user)
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, _("You joined %(org)s.") % {"org": membership.organization})
            return redirect("home")
    return render(request, "frontend/accept_invitation.html", {"token": token, "error": error})

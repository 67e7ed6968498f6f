"""My calendar feeds: create one (for my bookings, an organization of mine, or a
machine or platform I can see), copy its secret link (shown once, on the page
that follows its creation, since only its hash is stored), rename, revoke.
Writes go through booking/feeds.py, the API's services."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from booking import feeds
from booking.models import FeedToken
from core.models import Organization
from equipment.models import Machine, Platform
from frontend.outcomes import onto, reported

Kind = FeedToken.Kind


def _choices(user) -> list:
    """What a feed may be about, as `kind` or `kind:id`, grouped for a <select>."""
    groups = [(Kind.USER.value, _("The bookings I make"))]
    for label, kind, found in [
        (_("An organization's bookings"), Kind.ORGANIZATION, Organization.objects.visible_to(user)),
        (
            _("A machine's calendar"),
            Kind.MACHINE,
            Machine.objects.visible_to(user).filter(is_active=True).select_related("platform"),
        ),
        (_("A platform's calendar"), Kind.PLATFORM, Platform.objects.visible_to(user)),
    ]:
        options = []
        for target in found.order_by(*(["platform__name"] if kind == Kind.MACHINE else []), "pk"):
            name = str(target)
            if kind == Kind.MACHINE:
                name = f"{target.name} · {target.platform.name}"
            options.append((f"{kind.value}:{target.pk}", name))
        if options:
            groups.append((label, sorted(options, key=lambda o: o[1].lower())))
    return groups


class FeedForm(forms.Form):
    about = forms.ChoiceField(label=gettext_lazy("What the calendar shows"))
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("How the calendar appears in your app, e.g. “Lab bookings”."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["about"].choices = _choices(user)

    def clean_about(self):
        kind, _sep, target = self.cleaned_data["about"].partition(":")
        return kind, int(target) if target else None


class RenameForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)


def _mine(user):
    return FeedToken.objects.filter(owner=user).select_related(
        "organization", "machine", "platform"
    )


# The new feed's links wait in the session for the page that follows the POST, which
# shows them and forgets them: a reload neither shows them again nor makes a second feed.
JUST_CREATED = "frontend.new_feed"


@login_required
def calendar_feeds(request):
    form = FeedForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        kind, target = form.cleaned_data["about"]
        with onto(form, refusal_field="about") as outcome:
            created, secret = feeds.create_feed_token(
                by=request.user, kind=kind, name=form.cleaned_data["name"], target_id=target
            )
        if outcome.ok:
            request.session[JUST_CREATED] = {
                "id": created.pk,
                "name": created.name,
                "links": feeds.feed_links(secret),
            }
            return redirect("calendar-feeds")
    tokens = _mine(request.user)
    return render(
        request,
        "frontend/calendar_feeds.html",
        {
            "form": form,
            "created": request.session.pop(JUST_CREATED, None),
            "active": [t for t in tokens if t.revoked_at is None],
            "revoked": [t for t in tokens if t.revoked_at is not None][:10],
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def rename_feed(request, pk):
    token = get_object_or_404(_mine(request.user), pk=pk)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the calendar a name (100 characters at most)."))
        return redirect("calendar-feeds")
    with reported(request, done=lambda: _("Calendar renamed.")):
        feeds.rename_feed_token(token=token, by=request.user, name=form.cleaned_data["name"])
    return redirect("calendar-feeds")


@login_required
@require_POST
def revoke_feed(request, pk):
    token = get_object_or_404(_mine(request.user), pk=pk)
    done = _("“%(name)s” revoked: its link shows nothing any more.")
    with reported(request, done=lambda: done % {"name": token.name}):
        feeds.revoke_feed_token(token=token, by=request.user)
    return redirect("calendar-feeds")

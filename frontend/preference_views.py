"""My email preferences: a toggle per kind of booking email
(EmailPreferences.KINDS); the emails the platform decides are shown, locked on.
Written through booking/preferences.py, as the API does."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from booking import notifications, preferences
from booking.models import EmailPreferences

# What each email is, in words; the mandatory ones, and why they cannot be turned off.
EXPLAINED = {
    "booking_confirmed": gettext_lazy("A booking is made and confirmed."),
    "booking_pending": gettext_lazy("A booking awaits the platform's approval."),
    "booking_approved": gettext_lazy("The platform approved a booking."),
    "booking_rejected": gettext_lazy("The platform rejected a booking, and why."),
    "booking_moved": gettext_lazy("A booking moved to another time."),
    "booking_cancelled": gettext_lazy("A booking was cancelled in time."),
    "booking_reminder": gettext_lazy("A reminder before a booking starts."),
}
ALWAYS = {
    notifications.APPROVAL_REQUEST: (
        gettext_lazy("Approval requests"),
        gettext_lazy("To platform managers: a booking waits for their decision."),
    ),
    notifications.NO_SHOW: (
        gettext_lazy("No-shows"),
        gettext_lazy("Nobody checked in: it may be charged."),
    ),
    notifications.LATE_CANCELLATION: (
        gettext_lazy("Late cancellations"),
        gettext_lazy("Cancelled after the platform's deadline: it may be charged."),
    ),
}


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = EmailPreferences
        fields = list(EmailPreferences.KINDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.label = field.label[:1].upper() + field.label[1:]
            field.help_text = EXPLAINED[name]


@login_required
def email_preferences(request):
    current = preferences.email_preferences_of(request.user)
    form = PreferencesForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        preferences.update_email_preferences(
            user=request.user, data={k: form.cleaned_data[k] for k in EmailPreferences.KINDS}
        )
        messages.success(request, _("Email preferences saved."))
        return redirect("email-preferences")
    return render(
        request,
        "frontend/email_preferences.html",
        # Every kind notifications.py always sends: one added there shows here (KeyError
        # until it has its words in ALWAYS).
        {"form": form, "always": [ALWAYS[kind] for kind in notifications.ALWAYS_SENT]},
        status=400 if request.method == "POST" else 200,
    )

"""Forms of the pages. They only turn what people type into typed values (local
times into aware instants in the platform's zone); every booking rule stays in
booking/rules.py and booking/services.py, whose errors are put back on the
field they are about (PROBLEM_FIELDS)."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from core.api.fields import BoundedDateField
from core.models import Membership
from equipment.models import Label, Machine, MachineType, OpeningHours, Platform
from frontend.templatetags.fabpool import minutes_as_duration

# Which field of the booking form a broken booking rule is about (booking/rules.py
# codes); the others are shown above the form.
PROBLEM_FIELDS = {
    "end_before_start": "end_time",
    "too_short": "end_time",
    "too_long": "end_time",
    "misaligned": "start_time",
    "too_late_to_book": "start_time",
    "beyond_horizon": "start_date",
    "outside_opening_hours": "start_time",
    "platform_closed": "start_date",
    "not_a_platform_member": "organization",
    "not_allowed_to_book": "organization",
    "quota_exceeded": "organization",
}


def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `tz`, as an aware instant."""
    return datetime.combine(day, wall).replace(tzinfo=tz)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DayField(forms.DateField):
    """A day between 1970 and 2999, as the API takes them (core/api/fields.py): the
    calendar's first and last days are no instant in every time zone."""

    default_error_messages = {"out_of_range": _("Give a date between 1970 and 2999.")}

    def __init__(self, **kwargs):
        super().__init__(widget=DateInput(), **kwargs)

    def to_python(self, value):
        day = super().to_python(value)
        if day is not None and not BoundedDateField.holds(day):
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range")
        return day


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class PeriodForm(forms.Form):
    """A period in a platform's local time: start date and time, end date and time."""

    start_date = DayField(label=_("Start date"))
    start_time = forms.TimeField(label=_("Start time"), widget=TimeInput(attrs={"step": 60}))
    end_date = DayField(
        label=_("End date"),
        required=False,
        help_text=_("Leave empty for the same day."),
    )
    end_time = forms.TimeField(label=_("End time"), widget=TimeInput(attrs={"step": 60}))

    def __init__(self, *args, tz: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz = tz

    def clean(self):
        data = super().clean()
        if data.get("start_date") and data.get("start_time") and data.get("end_time"):
            data["start"] = local_instant(data["start_date"], data["start_time"], self.tz)
            data["end"] = local_instant(
                data.get("end_date") or data["start_date"], data["end_time"], self.tz
            )
        return data

    @classmethod
    def initial_for(cls, start: datetime, end: datetime, tz: ZoneInfo) -> dict:
        start, end = start.astimezone(tz), end.astimezone(tz)
        return {
            "start_date": start.date(),
            "start_time": start.time(),
            "end_date": end.date(),
            "end_time": end.time(),
        }


class BookingForm(PeriodForm):
    REPEAT_CHOICES = [
        ("", _("Does not repeat")),
        ("DAILY", _("Every day")),
        ("WEEKLY", _("Every week")),
    ]

    organization = forms.TypedChoiceField(label=_("For"), coerce=int)
    title = forms.CharField(label=_("Title or project"), max_length=200, required=False, strip=True)
    note = forms.CharField(
        label=_("Note for the platform"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    repeat = forms.ChoiceField(label=_("Repeat"), choices=REPEAT_CHOICES, required=False)
    count = forms.IntegerField(
        label=_("Occurrences"), min_value=2, max_value=52, required=False, initial=4
    )
    skip_conflicts = forms.BooleanField(
        label=_("Book the occurrences that can be, skip the others"), required=False
    )

    field_order = [
        "organization",
        "start_date",
        "start_time",
        "end_date",
        "end_time",
        "title",
        "note",
        "repeat",
        "count",
        "skip_conflicts",
    ]

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].choices = [(o.pk, o.legal_name) for o in organizations]
        if len(organizations) == 1:
            self.fields["organization"].initial = organizations[0].pk
            self.fields["organization"].widget = forms.HiddenInput()

    def clean(self):
        data = super().clean()
        if data.get("repeat") and not data.get("count"):
            self.add_error("count", _("How many times?"))
        return data

    @property
    def rule(self) -> str:
        data = self.cleaned_data
        return f"FREQ={data['repeat']};COUNT={data['count']}" if data.get("repeat") else ""

    def add_problems(self, problems: list[dict]) -> None:
        """Put each broken booking rule next to the field it is about."""
        for problem in problems:
            field = PROBLEM_FIELDS.get(problem["code"])
            if field == "organization" and isinstance(
                self.fields["organization"].widget, forms.HiddenInput
            ):
                field = None  # nothing to choose: say it above the form
            self.add_error(field, problem["message"])


class MoveForm(PeriodForm):
    def add_problems(self, problems: list[dict]) -> None:
        for problem in problems:
            field = PROBLEM_FIELDS.get(problem["code"])
            self.add_error(field if field in self.fields else None, problem["message"])


class CatalogueFilter(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    type = forms.ModelChoiceField(
        label=_("Type"), queryset=MachineType.objects.all(), required=False, empty_label=_("All")
    )
    label = forms.ModelChoiceField(
        label=_("Label"), queryset=Label.objects.all(), required=False, empty_label=_("All")
    )
    platform = forms.ModelChoiceField(
        label=_("Platform"), queryset=Platform.objects.none(), required=False, empty_label=_("All")
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["platform"].queryset = Platform.objects.visible_to(user)


DURATIONS = [30, 60, 90, 120, 180, 240, 360, 480, 600]


class FindForm(forms.Form):
    """ "Find me a machine": a type, a duration, and a window of days."""

    MAX_DAYS = 31

    machine_type = forms.ModelChoiceField(
        label=_("What"), queryset=MachineType.objects.all(), empty_label=None
    )
    duration = forms.TypedChoiceField(label=_("For how long"), coerce=int, choices=[], initial=120)
    platform = forms.ModelChoiceField(
        label=_("Where"), queryset=Platform.objects.none(), required=False, empty_label=_("Any")
    )
    first_day = DayField(label=_("From"))
    last_day = DayField(label=_("Until"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["platform"].queryset = Platform.objects.visible_to(user)
        self.fields["duration"].choices = [(m, minutes_as_duration(m)) for m in DURATIONS]

    def clean(self):
        data = super().clean()
        first, last = data.get("first_day"), data.get("last_day")
        if first and last:
            if last < first:
                self.add_error("last_day", _("The last day cannot be before the first day."))
            elif (last - first).days >= self.MAX_DAYS:
                self.add_error(
                    "last_day", _("Search at most %(n)d days at once.") % {"n": self.MAX_DAYS}
                )
        return data

    @staticmethod
    def defaults(today: date) -> dict:
        return {"first_day": today + timedelta(days=1), "last_day": today + timedelta(days=7)}


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    role = forms.ChoiceField(
        label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.MEMBER
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason, told to the organization"), max_length=500)


class MaintenanceForm(PeriodForm):
    machine = forms.ModelChoiceField(label=_("Machine"), queryset=None, empty_label=None)
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    field_order = ["machine", "start_date", "start_time", "end_date", "end_time", "reason"]

    def __init__(self, *args, machines, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["machine"].queryset = machines

    def clean(self):
        # The machine's platform decides the time zone of the typed times.
        machine = self.cleaned_data.get("machine")
        if machine is not None:
            self.tz = machine.platform.tzinfo
        return super().clean()


# --- The platform desk -------------------------------------------------------------------


MACHINE_POLICY_FIELDS = [
    "min_duration_minutes",
    "max_duration_minutes",
    "granularity_minutes",
    "buffer_after_minutes",
    "min_notice_minutes",
    "booking_horizon_days",
    "qualification_required",
    "approval_required",
]


class MachinePolicyForm(forms.ModelForm):
    """The booking policy of a machine. Only parses: equipment/services.py
    validates the whole row (model rules) and writes."""

    class Meta:
        model = Machine
        fields = ["name", "description", *MACHINE_POLICY_FIELDS]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def _post_clean(self):
        pass  # the service runs full_clean; errors come back on the fields


class OpeningHoursForm(forms.Form):
    weekday = forms.TypedChoiceField(
        label=_("Day"), coerce=int, choices=OpeningHours.Weekday.choices
    )
    opens_at = forms.TimeField(label=_("Opens at"), widget=TimeInput(attrs={"step": 60}))
    closes_at = forms.TimeField(label=_("Closes at"), widget=TimeInput(attrs={"step": 60}))


class ClosureForm(forms.Form):
    start_date = DayField(label=_("First day"))
    end_date = DayField(
        label=_("Last day"),
        required=False,
        help_text=_("Leave empty for a single day."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def clean(self):
        data = super().clean()
        if data.get("start_date") and not data.get("end_date"):
            data["end_date"] = data["start_date"]
        return data


class GrantForm(forms.Form):
    qualification = forms.ModelChoiceField(label=_("Qualification"), queryset=None)
    email = forms.EmailField(
        label=_("Person's email address"),
        max_length=254,
        help_text=_("Someone from an organization that books on this platform."),
    )
    granted_on = forms.DateField(label=_("Granted on"), widget=DateInput())
    expires_on = forms.DateField(label=_("Expires on"), widget=DateInput(), required=False)

    def __init__(self, *args, qualifications, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["qualification"].queryset = qualifications

    def clean(self):
        data = super().clean()
        granted, expires = data.get("granted_on"), data.get("expires_on")
        if granted and expires and expires < granted:
            self.add_error("expires_on", _("It cannot expire before it is granted."))
        return data


class ExpiryForm(forms.Form):
    expires_on = forms.DateField(label=_("Expires on"), widget=DateInput(), required=False)


class ConsumableUseForm(forms.Form):
    """Material used during a booking, one of the platform's consumables on sale
    (`consumables`: read once for the whole board, not once per row). Only
    parses: billing/services.py's record_consumable_use validates (a positive
    quantity, a checked-in booking) and its errors come back on the fields."""

    consumable = forms.TypedChoiceField(label=_("Consumable"), coerce=int)
    quantity = forms.DecimalField(label=_("Quantity"), max_digits=12, decimal_places=4)

    def __init__(self, *args, consumables, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_sale = {c.pk: c for c in consumables}
        self.fields["consumable"].choices = [(c.pk, str(c)) for c in consumables]

    def clean_consumable(self):
        return self.on_sale[self.cleaned_data["consumable"]]

import contextlib
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

NAIVE = _("Give the time zone offset, e.g. 2027-03-01T08:00:00+01:00 or …Z.")
OUT_OF_RANGE = _("Give a date between 1970 and 2999.")


def is_naive_text(value) -> bool:
    """A date-time written without its offset ("2027-03-01T08:00"); malformed
    text is not: whoever parses it says why."""
    if not isinstance(value, str):
        return False
    with contextlib.suppress(ValueError):
        parsed = parse_datetime(value.strip())
        return parsed is not None and parsed.tzinfo is None
    return False


class AwareDateTimeField(serializers.DateTimeField):
    """A date-time that says which instant it is: "2027-03-01T08:00:00+01:00"
    or "…Z". A bare "2027-03-01T08:00" would be silently read as UTC, an hour
    or two away from what a French user meant, so it is refused."""

    # Far enough for any booking; near enough that adding a buffer or moving to
    # a platform's time zone can never leave the calendar (year 9999).
    EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)

    default_error_messages = {
        "naive": NAIVE,
        "out_of_range": OUT_OF_RANGE,
        # DRF's own, for an instant its time zone cannot hold (year 1 at +01:00).
        "overflow": OUT_OF_RANGE,
    }

    def to_internal_value(self, value):
        if is_naive_text(value):
            self.fail("naive")
        try:
            moment = super().to_internal_value(value)
            in_range = self.EARLIEST <= moment < self.LATEST
        except OverflowError:
            in_range = False
        if not in_range:
            self.fail("out_of_range")
        return moment


class BoundedDateField(serializers.DateField):
    """A calendar day within AwareDateTimeField's years (1970 to 2999): a period's
    days become instants in a platform's time zone, which the first and last days
    of the calendar (year 1, year 9999) cannot all be."""

    EARLIEST, LATEST = AwareDateTimeField.EARLIEST.date(), AwareDateTimeField.LATEST.date()

    default_error_messages = {"out_of_range": OUT_OF_RANGE}

    @classmethod
    def holds(cls, day) -> bool:
        return cls.EARLIEST <= day < cls.LATEST

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not self.holds(day):
            self.fail("out_of_range")
        return day


class EmailRelatedField(serializers.SlugRelatedField):
    """A user named by email address, whatever its capitalisation."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="email", **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data.strip().lower() if isinstance(data, str) else data)


@extend_schema_field(
    {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "example": "08:30"}
)
class LocalTimeField(serializers.TimeField):
    """A wall-clock time in the platform's own time zone, "08:30" or "08:30:00";
    an offset ("08:30Z") would contradict that, so it is refused."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)

from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """A date-time that says which instant it is: "2027-03-01T08:00:00+01:00"
    or "…Z". A bare "2027-03-01T08:00" would be silently read as UTC, an hour
    or two away from what a French user meant, so it is refused."""

    default_error_messages = {
        "naive": "Give the time zone offset, e.g. 2027-03-01T08:00:00+01:00 or …Z.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = serializers.DateTimeField(default_timezone=None).to_internal_value(value)
            if parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value)


class EmailRelatedField(serializers.SlugRelatedField):
    """A user named by email address, whatever its capitalisation."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="email", **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data.strip().lower() if isinstance(data, str) else data)

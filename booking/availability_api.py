"""REST API for availability: when a machine is free, and where a booking fits.

- GET /api/v1/machines/{id}/availability/?start=…&end=…
- GET /api/v1/platforms/{id}/availability-search/?machine_type=…&duration_minutes=…
  &start=…&end=…&limit=3

Busy periods are anonymous: other SMEs' bookings are only times. Thin views over
booking.selectors, which load each window with a fixed number of queries."""

from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response

from booking import selectors
from core.api.fields import AwareDateTimeField
from core.api.filters import MAX_ID
from equipment.models import Machine, MachineType, Platform

# --- Input ----------------------------------------------------------------------------------


class WindowSerializer(serializers.Serializer):
    """A window [start, end) of at most MAX_DAYS days."""

    MAX_DAYS = 62

    start = AwareDateTimeField(help_text="Start of the window, with its offset.")
    end = AwareDateTimeField(help_text="End of the window (excluded), with its offset.")

    def validate(self, data):
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": [_("The end must be after the start.")]})
        if data["end"] - data["start"] > timedelta(days=self.MAX_DAYS):
            raise serializers.ValidationError(
                {"end": [_("The window spans at most %(n)d days.") % {"n": self.MAX_DAYS}]}
            )
        return data


class SearchSerializer(WindowSerializer):
    MAX_DAYS = 31

    machine_type = serializers.CharField(
        max_length=100, help_text="The machine type's id or slug, e.g. fdm-printer."
    )
    duration_minutes = serializers.IntegerField(
        min_value=1, max_value=14 * 24 * 60, help_text="How long the booking lasts."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=10, default=3, help_text="Slots per machine, earliest first."
    )

    def validate_machine_type(self, value: str) -> MachineType:
        value = value.strip()
        condition = Q(slug=value)
        if value.isascii() and value.isdigit() and int(value) <= MAX_ID:
            condition |= Q(pk=int(value))
        machine_type = MachineType.objects.filter(condition).first()
        if machine_type is None:
            raise serializers.ValidationError(_("No such machine type."))
        return machine_type


# --- Output ---------------------------------------------------------------------------------


class FreeIntervalSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


@extend_schema_field({"type": "string", "enum": ["booking", "maintenance"]})
class BusyKindField(serializers.CharField):
    pass


class BusyIntervalSerializer(FreeIntervalSerializer):
    kind = BusyKindField(help_text="A booking (held until its buffer's end) or maintenance.")


class MachineAvailabilitySerializer(serializers.Serializer):
    machine = serializers.IntegerField()
    timezone = serializers.CharField(help_text="The platform's time zone (opening hours).")
    free = FreeIntervalSerializer(many=True, help_text="Open and free, in UTC.")
    busy = BusyIntervalSerializer(
        many=True, help_text="Held by bookings (whose is never said) or maintenance."
    )


class MachineSlotsSerializer(serializers.Serializer):
    machine = serializers.IntegerField()
    machine_name = serializers.CharField()
    slots = FreeIntervalSerializer(many=True, help_text="Bookable slots, earliest first.")


class AvailabilitySearchSerializer(serializers.Serializer):
    results = MachineSlotsSerializer(many=True)


def _as_text(moment: datetime) -> str:
    """An aware date-time as DRF's DateTimeField writes it in the API's time zone,
    UTC (settings.TIME_ZONE): ISO 8601 ending in Z. Written out here: a search
    answers hundreds of slots, and DRF's nested serializers took ~15 ms to write
    them (bench/booking.py), a third of the request."""
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _intervals(intervals, texts: dict[datetime, str] | None = None) -> list[dict]:
    """`texts`: date-times already written, shared by a search's machines, whose
    slots mostly start and end at the same few moments of the grid."""
    texts = {} if texts is None else texts

    def text(moment: datetime) -> str:
        if moment not in texts:
            texts[moment] = _as_text(moment)
        return texts[moment]

    return [{"start": text(start), "end": text(end)} for start, end in intervals]


# --- Views ----------------------------------------------------------------------------------


class _OneObject(generics.GenericAPIView):
    """Reads about one object visible to the caller (get_queryset), by id in the
    URL: a foreign or unknown id is a 404. No list: no filters, no pages."""

    filter_backends = []
    pagination_class = None


class MachineAvailabilityView(_OneObject):
    queryset = Machine.objects.all()  # narrowed to what the caller sees
    serializer_class = MachineAvailabilitySerializer

    def get_queryset(self):
        return Machine.objects.visible_to(self.request.user).select_related("platform")

    @extend_schema(
        operation_id="machines_availability",
        parameters=[WindowSerializer],
        responses={200: MachineAvailabilitySerializer},
    )
    def get(self, request, *args, **kwargs):
        """Free and busy time of a machine over a window of at most 62 days.

        `free`: opening hours (the platform's local time) on open days, minus
        bookings with their buffers and maintenance. A booking there also needs
        room for the machine's buffer before the next busy period; the
        platform's availability search finds slots that fit every rule."""
        machine = self.get_object()
        query = WindowSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = selectors.machine_availability(
            machine=machine, start=query.validated_data["start"], end=query.validated_data["end"]
        )
        busy = [
            {"start": _as_text(b["start"]), "end": _as_text(b["end"]), "kind": b["kind"]}
            for b in found.busy
        ]
        return Response(
            {
                "machine": machine.pk,
                "timezone": machine.platform.timezone,
                "free": _intervals(found.free),
                "busy": busy,
            }
        )


class AvailabilitySearchView(_OneObject):
    queryset = Platform.objects.all()  # narrowed to what the caller sees
    serializer_class = AvailabilitySearchSerializer

    def get_queryset(self):
        return Platform.objects.visible_to(self.request.user)

    @extend_schema(
        operation_id="platforms_availability_search",
        parameters=[SearchSerializer],
        responses={200: AvailabilitySearchSerializer},
    )
    def get(self, request, *args, **kwargs):
        """The earliest slots of `duration_minutes` on each bookable machine of a
        type on this platform, within a window of at most 31 days: every rule
        about the period (grid, duration, notice, horizon, opening hours,
        closures) and clear of bookings, their buffers and maintenance.
        Machines with a slot come first, the earliest first."""
        platform = self.get_object()
        query = SearchSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        machines = selectors.searchable_machines(
            platform=platform, machine_type=data["machine_type"]
        )
        slots = selectors.search_slots(
            machines=machines,
            duration=timedelta(minutes=data["duration_minutes"]),
            start=data["start"],
            end=data["end"],
            limit=data["limit"],
            now=timezone.now(),
        )
        # Stable: machines without a slot keep their name order, last.
        machines.sort(key=lambda m: (not slots[m.pk], slots[m.pk][0][0] if slots[m.pk] else 0))
        texts: dict[datetime, str] = {}
        results = [
            {"machine": m.pk, "machine_name": m.name, "slots": _intervals(slots[m.pk], texts)}
            for m in machines
        ]
        return Response({"results": results})  # as AvailabilitySearchSerializer documents it

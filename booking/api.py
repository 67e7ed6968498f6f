"""REST API for bookings: thin views over booking.services."""

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from booking import services
from booking.models import Booking, BookingSeries, Quota
from core.api import idempotency
from core.api.fields import AwareDateTimeField
from core.api.filters import IdFilter, IdFilterSet, UTCDateTimeFilter
from core.api.serializers import FieldsBuiltOnce
from core.models import Organization
from equipment.api import VisiblePlatformField
from equipment.models import Machine, Platform


class BookingSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    booked_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "machine",
            "organization",
            "booked_by",
            "start",
            "end",
            "blocked_until",
            "status",
            "title",
            "note",
            "series",
            "sequence",
            "override_reason",
            "cancelled_at",
            "late_cancellation",
            "decided_at",
            "decision_note",
            "checked_in_at",
            "checked_out_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MoveSerializer(serializers.Serializer):
    """A period, and a manager's reason to waive the soft rules: what a move takes."""

    start = AwareDateTimeField()
    end = AwareDateTimeField()
    override_reason = serializers.CharField(
        max_length=500,
        required=False,
        default="",
        help_text="Platform managers only: waive the soft rules, for this reason.",
    )


class NewBookingSerializer(MoveSerializer):
    machine = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    organization = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="The organization the booking is for; optional when you belong to one only.",
    )
    title = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    note = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Told to the SME.")


class NoBodySerializer(serializers.Serializer):
    pass


class BookingFilter(IdFilterSet):
    machine = IdFilter()
    platform = IdFilter(field_name="machine__platform")
    organization = IdFilter()
    series = IdFilter()
    status = django_filters.MultipleChoiceFilter(choices=Booking.Status.choices)
    ends_after = UTCDateTimeFilter(field_name="end", lookup_expr="gt", label="Ends after")
    starts_before = UTCDateTimeFilter(field_name="start", lookup_expr="lt", label="Starts before")

    class Meta:
        model = Booking
        fields = ["machine", "platform", "organization", "status"]


def organization_for(user, machine: Machine, organization_id: int | None) -> Organization:
    """The organization a booking is for: one the user belongs to, or, for
    the platform's staff, any organization that books there."""
    if organization_id is None:
        mine = list(Organization.objects.visible_to(user)[:2])
        if len(mine) != 1:
            raise serializers.ValidationError(
                {"organization": ["Say which organization the booking is for."]}
            )
        return mine[0]
    candidates = Organization.objects.filter(
        pk__in=Organization.objects.visible_to(user).values("pk")
    ) | Organization.objects.filter(
        platform_memberships__platform__in=Platform.objects.staffed_by(user).filter(
            pk=machine.platform_id
        )
    )
    found = candidates.filter(pk=organization_id).first()
    if found is None:
        raise serializers.ValidationError({"organization": ["No such organization."]})
    return found


class BookingViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Bookings you may see: your organizations' ones, and every booking of the
    platforms where you work. Filter a window with `ends_after` and `starts_before`."""

    serializer_class = BookingSerializer
    filterset_class = BookingFilter
    ordering_fields = ["start", "created_at"]

    def get_queryset(self):
        return Booking.objects.visible_to(self.request.user).select_related("booked_by")

    @extend_schema(
        request=NewBookingSerializer,
        responses={201: BookingSerializer},
        parameters=[idempotency.SCHEMA_PARAMETER],
    )
    def create(self, request, *args, **kwargs):
        """Book a machine. 400 lists every broken rule in details.problems;
        409 lists the clashing intervals in details.conflicts. With an
        Idempotency-Key header, a retried request never books twice."""
        return idempotency.idempotent(request, lambda: self._create(request))

    def _create(self, request):
        serializer = NewBookingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        machine = get_object_or_404(
            Machine.objects.visible_to(request.user).select_related("platform"),
            pk=data["machine"],
        )
        booking = services.create_booking(
            machine=machine,
            organization=organization_for(request.user, machine, data.get("organization")),
            by=request.user,
            start=data["start"],
            end=data["end"],
            title=data["title"],
            note=data["note"],
            override_reason=data["override_reason"],
        )
        return Response(BookingSerializer(booking).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CancelSerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], serializer_class=CancelSerializer)
    def cancel(self, request, pk=None):
        """Cancel; after the platform's deadline it is marked late."""
        return self._act(request, CancelSerializer, services.cancel_booking)

    def _act(self, request, serializer_class, service):
        """Validate the body, call `service` on the booking, answer the booking."""
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking = service(booking=self.get_object(), by=request.user, **serializer.validated_data)
        return Response(BookingSerializer(booking).data)

    @extend_schema(request=MoveSerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], serializer_class=MoveSerializer)
    def move(self, request, pk=None):
        """Move or resize, under the same rules as a new booking (400 lists every
        broken rule, 409 the clashes). On a machine that needs approval, an SME's
        move asks for approval again."""
        return self._act(request, MoveSerializer, services.move_booking)

    @extend_schema(request=ApproveSerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], serializer_class=ApproveSerializer)
    def approve(self, request, pk=None):
        """Platform managers: confirm a pending booking."""
        return self._act(request, ApproveSerializer, services.approve_booking)

    @extend_schema(request=RejectSerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], serializer_class=RejectSerializer)
    def reject(self, request, pk=None):
        """Platform managers: refuse a pending booking, saying why; the slot is freed."""
        return self._act(request, RejectSerializer, services.reject_booking)

    @extend_schema(request=NoBodySerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], url_path="check-in", serializer_class=NoBodySerializer)
    def check_in(self, request, pk=None):
        """Record the real start: from 15 minutes before the start until the end."""
        return self._act(request, NoBodySerializer, services.check_in)

    @extend_schema(request=NoBodySerializer, responses={200: BookingSerializer})
    @action(detail=True, methods=["post"], url_path="check-out", serializer_class=NoBodySerializer)
    def check_out(self, request, pk=None):
        """Record the real end; the booking is completed and the rest of the slot freed."""
        return self._act(request, NoBodySerializer, services.check_out)


# --- Recurring series ------------------------------------------------------------------------


class SeriesSerializer(serializers.ModelSerializer):
    class Meta:
        model = BookingSeries
        fields = ["id", "machine", "organization", "rule", "title", "created_at", "cancelled_at"]
        read_only_fields = fields


class NewSeriesSerializer(NewBookingSerializer):
    rule = serializers.CharField(
        max_length=200,
        help_text="RFC 5545 RRULE subset: FREQ=DAILY|WEEKLY, INTERVAL, COUNT or UNTIL, BYDAY; "
        "e.g. FREQ=WEEKLY;BYDAY=TU,TH;COUNT=10. At most a year.",
    )
    skip_conflicts = serializers.BooleanField(
        default=False, help_text="Book the occurrences that can be, and report the others."
    )


class OccurrenceSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    booked = serializers.BooleanField()
    booking = serializers.IntegerField(required=False)
    problems = serializers.ListField(child=serializers.DictField(), required=False)
    conflicts = serializers.ListField(child=serializers.DictField(), required=False)


class NewSeriesResponseSerializer(serializers.Serializer):
    series = SeriesSerializer()
    occurrences = OccurrenceSerializer(many=True)


class BookingSeriesViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Recurring bookings. Each occurrence is an ordinary booking (filter
    /bookings/ by the booking's `series`); cancel one there, or all upcoming here."""

    serializer_class = SeriesSerializer
    filterset_fields = ["machine", "organization"]

    def get_queryset(self):
        return BookingSeries.objects.visible_to(self.request.user)

    @extend_schema(request=NewSeriesSerializer, responses={201: NewSeriesResponseSerializer})
    def create(self, request, *args, **kwargs):
        """Book a series, all or nothing: when an occurrence cannot be booked, the
        answer (400, or 409 for clashes) reports every occurrence and books none;
        with `skip_conflicts` the others are booked and the refused ones reported."""
        serializer = NewSeriesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        machine = get_object_or_404(
            Machine.objects.visible_to(request.user).select_related("platform"),
            pk=data["machine"],
        )
        series, report = services.create_series(
            machine=machine,
            organization=organization_for(request.user, machine, data.get("organization")),
            by=request.user,
            start=data["start"],
            end=data["end"],
            rule=data["rule"],
            title=data["title"],
            note=data["note"],
            skip_conflicts=data["skip_conflicts"],
            override_reason=data["override_reason"],
        )
        body = {"series": series, "occurrences": report}
        return Response(NewSeriesResponseSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CancelSerializer, responses={200: BookingSerializer(many=True)})
    @action(
        detail=True,
        methods=["post"],
        serializer_class=CancelSerializer,
        # Answers a list, but not one to filter or page: the schema must not say so.
        filter_backends=[],
        pagination_class=None,
    )
    def cancel(self, request, pk=None):
        """Cancel every upcoming occurrence."""
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cancelled = services.cancel_series(
            series=self.get_object(), by=request.user, **serializer.validated_data
        )
        return Response(BookingSerializer(cancelled, many=True).data)


# --- Quotas -------------------------------------------------------------------------------


class QuotaSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()

    class Meta:
        model = Quota
        fields = ["id", "platform", "organization", "machine_type", "period", "max_hours"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if request := self.context.get("request"):
            # Organizations that book on the caller's platforms; others "do not exist".
            self.fields["organization"].queryset = Organization.objects.filter(
                platform_memberships__platform__in=Platform.objects.staffed_by(request.user)
            ).distinct()


class QuotaViewSet(viewsets.ModelViewSet):
    """Caps on an organization's booked hours per week or month, set by platform
    managers; without an organization a quota applies to each one alone. SMEs see
    the quotas that apply to them."""

    serializer_class = QuotaSerializer
    filterset_fields = ["platform", "organization", "machine_type", "period"]

    def get_queryset(self):
        return Quota.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_quota(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_quota(
            quota=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_quota(quota=instance, by=self.request.user)

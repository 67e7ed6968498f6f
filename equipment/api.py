"""REST API for the catalogue. Reads go through `visible_to(user)`; writes call
equipment.services, which check the caller's platform role."""

import django_filters
from django.db.models import Q
from django_countries.serializer_fields import CountryField
from rest_framework import mixins, serializers, viewsets

from core.api.fields import AwareDateTimeField, EmailRelatedField, LocalTimeField
from core.api.filters import MAX_ID, IdFilter, IdFilterSet
from core.models import User
from equipment import services
from equipment.models import (
    Closure,
    Label,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformMembership,
    Qualification,
    UserQualification,
)

# --- Serializers -----------------------------------------------------------------------


class VisiblePlatformField(serializers.PrimaryKeyRelatedField):
    """A platform id the user can see; any other id "does not exist"."""

    def get_queryset(self):
        return Platform.objects.visible_to(self.context["request"].user)


class VisibleMachineField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Machine.objects.visible_to(self.context["request"].user)


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "slug", "issuer", "description", "website"]


class MachineTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = MachineType
        fields = ["id", "name", "slug", "category", "description"]


class PlatformSerializer(serializers.ModelSerializer):
    country = CountryField(country_dict=False, read_only=True)
    labels = LabelSerializer(many=True, read_only=True)
    label_ids = serializers.PrimaryKeyRelatedField(
        source="labels", queryset=Label.objects.all(), many=True, write_only=True, required=False
    )

    class Meta:
        model = Platform
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "address_line1",
            "postal_code",
            "city",
            "country",
            "timezone",
            "currency",
            "labels",
            "label_ids",
            "contact_email",
            "contact_phone",
            "website",
            "reminder_hours",
        ]
        read_only_fields = ["id", "slug", "country", "currency"]


class MachineSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()
    machine_type = serializers.PrimaryKeyRelatedField(queryset=MachineType.objects.all())
    image = serializers.ImageField(read_only=True)

    class Meta:
        model = Machine
        validators = []  # uniqueness is checked by Machine.clean(), which names the field
        fields = [
            "id",
            "platform",
            "machine_type",
            "name",
            "description",
            "specs",
            "image",
            "is_active",
            "min_duration_minutes",
            "max_duration_minutes",
            "granularity_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "booking_horizon_days",
            "qualification_required",
            "approval_required",
        ]


class OpeningHoursSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()
    opens_at = LocalTimeField()
    closes_at = LocalTimeField()

    class Meta:
        model = OpeningHours
        fields = ["id", "platform", "weekday", "opens_at", "closes_at"]


class ClosureSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()

    class Meta:
        model = Closure
        fields = ["id", "platform", "start_date", "end_date", "reason"]


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    machine = VisibleMachineField()
    start = AwareDateTimeField()
    end = AwareDateTimeField()

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "machine", "start", "end", "reason"]


class QualificationSerializer(serializers.ModelSerializer):
    platform = VisiblePlatformField()
    machine = VisibleMachineField(required=False, allow_null=True)

    class Meta:
        model = Qualification
        validators = []  # uniqueness is checked by Qualification.clean(), which names the field
        fields = ["id", "platform", "name", "description", "machine_type", "machine"]


class UserQualificationSerializer(serializers.ModelSerializer):
    qualification = serializers.PrimaryKeyRelatedField(queryset=Qualification.objects.none())
    user = EmailRelatedField(queryset=User.objects.none(), help_text="The holder's email address.")
    granted_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = UserQualification
        validators = []  # uniqueness is checked by UserQualification.clean(), which names the field
        fields = ["id", "qualification", "user", "granted_by", "granted_on", "expires_on"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["qualification"].queryset = Qualification.objects.visible_to(request.user)
            # Holders are people of the SMEs that book on the staff's platforms;
            # other addresses "do not exist", so staff cannot probe for accounts.
            self.fields["user"].queryset = User.objects.filter(
                is_active=True,
                memberships__organization__platform_memberships__platform__in=(
                    Platform.objects.staffed_by(request.user)
                ),
            ).distinct()
        if self.instance is not None:
            # A grant's holder and qualification are fixed; only its dates change.
            self.fields["qualification"].read_only = True
            self.fields["user"].read_only = True


class PlatformMembershipSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.legal_name", read_only=True)

    class Meta:
        model = PlatformMembership
        fields = ["id", "platform", "organization", "organization_name", "tier", "since"]


# --- Filters ---------------------------------------------------------------------------------


class MachineFilter(IdFilterSet):
    platform = IdFilter()
    machine_type = IdFilter()
    type = django_filters.CharFilter(field_name="machine_type__slug", label="Machine type slug")
    category = django_filters.ChoiceFilter(
        field_name="machine_type__category", choices=MachineType.Category.choices
    )
    label = django_filters.CharFilter(method="filter_label", label="Label id or slug")
    q = django_filters.CharFilter(method="filter_text", label="Text search")

    class Meta:
        model = Machine
        fields = ["platform", "machine_type", "is_active", "approval_required"]

    def filter_label(self, queryset, name, value):
        condition = Q(platform__labels__slug=value)
        if value.isascii() and value.isdigit() and int(value) <= MAX_ID:
            condition |= Q(platform__labels__id=int(value))
        return queryset.filter(condition).distinct()

    def filter_text(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(machine_type__name__icontains=value)
            | Q(platform__name__icontains=value)
        )


class PlatformFilter(IdFilterSet):
    label = django_filters.CharFilter(field_name="labels__slug", label="Label slug")

    class Meta:
        model = Platform
        fields = ["label", "city"]


# --- Views --------------------------------------------------------------------------------------


class LabelViewSet(viewsets.ReadOnlyModelViewSet):
    """Labels platforms carry (e.g. "Vitrine Industrie du Futur")."""

    queryset = Label.objects.all()
    serializer_class = LabelSerializer
    search_fields = ["name", "issuer"]


class MachineTypeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = MachineType.objects.all()
    serializer_class = MachineTypeSerializer
    filterset_fields = ["category"]
    search_fields = ["name"]


class PlatformViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Platforms you work on or your organizations may book on. Managers edit theirs."""

    serializer_class = PlatformSerializer
    filterset_class = PlatformFilter
    search_fields = ["name", "city", "description"]
    ordering_fields = ["name", "city"]

    def get_queryset(self):
        return Platform.objects.visible_to(self.request.user).prefetch_related("labels")

    def perform_update(self, serializer):
        serializer.instance = services.update_platform(
            platform=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class MachineViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Machines of your platforms. Filter by platform, type, label and text (`q`).
    Managers add and edit machines; retire one with `is_active: false`."""

    serializer_class = MachineSerializer
    filterset_class = MachineFilter
    search_fields = ["name", "description", "machine_type__name"]
    ordering_fields = ["name", "platform", "machine_type"]

    def get_queryset(self):
        return Machine.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_machine(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_machine(
            machine=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class OpeningHoursViewSet(viewsets.ModelViewSet):
    """Weekly opening spans, in the platform's local time."""

    serializer_class = OpeningHoursSerializer
    filterset_fields = ["platform", "weekday"]

    def get_queryset(self):
        return OpeningHours.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_opening_hours(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_opening_hours(
            hours=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_opening_hours(hours=instance, by=self.request.user)


class ClosureViewSet(viewsets.ModelViewSet):
    """Dated closures of a platform (whole days, inclusive)."""

    serializer_class = ClosureSerializer
    filterset_fields = {"platform": ["exact"], "start_date": ["gte", "lte"]}

    def get_queryset(self):
        return Closure.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_closure(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_closure(
            closure=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_closure(closure=instance, by=self.request.user)


class MaintenanceWindowViewSet(viewsets.ModelViewSet):
    serializer_class = MaintenanceWindowSerializer
    filterset_fields = {
        "machine": ["exact"],
        "machine__platform": ["exact"],
        "start": ["gte", "lt"],
    }

    def get_queryset(self):
        return MaintenanceWindow.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_maintenance_window(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_maintenance_window(
            window=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.delete_maintenance_window(window=instance, by=self.request.user)


class QualificationViewSet(viewsets.ModelViewSet):
    """Qualifications a platform requires, per machine or machine type."""

    serializer_class = QualificationSerializer
    filterset_fields = ["platform", "machine", "machine_type"]

    def get_queryset(self):
        return Qualification.objects.visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_qualification(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_qualification(
            qualification=serializer.instance,
            by=self.request.user,
            data=serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.delete_qualification(qualification=instance, by=self.request.user)


class UserQualificationViewSet(viewsets.ModelViewSet):
    """Qualifications held: yours, and those granted on platforms where you work.
    Managers and operators grant (POST), change expiry (PATCH) and revoke (DELETE)."""

    serializer_class = UserQualificationSerializer
    filterset_fields = ["qualification", "qualification__platform"]

    def get_queryset(self):
        return UserQualification.objects.visible_to(self.request.user).select_related(
            "user", "granted_by"
        )

    def perform_create(self, serializer):
        serializer.instance = services.grant_qualification(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_granted_qualification(
            grant=serializer.instance, by=self.request.user, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.revoke_qualification(grant=instance, by=self.request.user)


class PlatformMembershipViewSet(viewsets.ReadOnlyModelViewSet):
    """Which organizations may book where: staff see their platform's, an SME its own."""

    serializer_class = PlatformMembershipSerializer
    filterset_fields = ["platform", "organization", "tier"]

    def get_queryset(self):
        return PlatformMembership.objects.visible_to(self.request.user).select_related(
            "organization"
        )

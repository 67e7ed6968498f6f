import copy

from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from core.models import ApiToken, Invitation, Membership, Organization, User


# For a ModelSerializer whose fields depend on its class alone: build them from
# the model once, then give each instance its own copies, as DRF does with
# declared fields. Building a booking's 21 fields took 1.3 ms of every booking
# answered (a create, a move, a cancel), four times what writing the booking out
# takes. A comment, not a docstring: the OpenAPI schema would describe each
# serializer without one of its own by it.
class FieldsBuiltOnce:
    def get_fields(self):
        cls = type(self)
        if "_built_fields" not in cls.__dict__:  # this class's own, not a parent's
            cls._built_fields = super().get_fields()
        return copy.deepcopy(cls._built_fields)


class MembershipOfMeSerializer(serializers.ModelSerializer):
    organization_name = serializers.CharField(source="organization.legal_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["organization", "organization_name", "role"]


class MeSerializer(serializers.ModelSerializer):
    memberships = MembershipOfMeSerializer(many=True, read_only=True)
    platform_roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "language", "memberships", "platform_roles"]
        read_only_fields = ["id", "email"]

    def get_platform_roles(self, user) -> list[dict]:
        # Staff roles live in equipment; read through the reverse relation so that
        # core does not import equipment (arrows point from equipment to core).
        return [
            {
                "platform": staff.platform_id,
                "platform_name": staff.platform.name,
                "role": staff.role,
            }
            for staff in user.platform_roles.all()
        ]


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "hint", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "hint", "created_at", "last_used_at", "revoked_at"]


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.SerializerMethodField(help_text="The secret: shown this once only.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]

    def get_token(self, _token) -> str:
        return self.context["secret"]


class OrganizationSerializer(serializers.ModelSerializer):
    country = CountryField(country_dict=False, required=False)
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "id",
            "legal_name",
            "siret",
            "vat_number",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "billing_email",
            "my_role",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def get_my_role(self, organization) -> str | None:
        return getattr(organization, "my_role", None)


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organization", "user", "email", "full_name", "role", "created_at"]
        read_only_fields = ["id", "organization", "user", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "organization", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = ["id", "status", "created_at", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "organization" in self.fields:
            # Only organizations the user belongs to can be named; others do not exist.
            self.fields["organization"].queryset = Organization.objects.visible_to(request.user)


class AcceptInvitationSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)

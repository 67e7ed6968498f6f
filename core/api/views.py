import django_filters
from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from core import services
from core.api.filters import IdFilterSet
from core.api.serializers import (
    AcceptInvitationSerializer,
    ApiTokenSerializer,
    InvitationSerializer,
    MembershipSerializer,
    MeSerializer,
    NewApiTokenSerializer,
    OrganizationSerializer,
)
from core.models import ApiToken, Invitation, Membership, Organization, User


class MeView(generics.RetrieveUpdateAPIView):
    """The logged-in user, their organizations and their platform roles."""

    serializer_class = MeSerializer

    def get_object(self):
        return (
            User.objects.prefetch_related("memberships__organization")
            .prefetch_related("platform_roles__platform")
            .get(pk=self.request.user.pk)
        )

    def perform_update(self, serializer):
        serializer.instance = services.update_profile(
            user=serializer.instance, data=serializer.validated_data
        )


class ApiTokenFilter(IdFilterSet):
    active = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", label="Not revoked"
    )

    class Meta:
        model = ApiToken
        fields = ["active"]


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Personal API tokens. DELETE revokes: the row stays, with its revocation time."""

    serializer_class = ApiTokenSerializer
    filterset_class = ApiTokenFilter

    def get_queryset(self):
        return ApiToken.objects.filter(user_id=self.request.user.pk)

    @extend_schema(responses={201: NewApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = services.create_api_token(
            user=request.user,
            name=serializer.validated_data["name"],
            with_token=isinstance(request.auth, ApiToken),
        )
        body = NewApiTokenSerializer(token, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.rename_api_token(
            token=serializer.instance,
            by=self.request.user,
            name=serializer.validated_data.get("name", serializer.instance.name),
        )

    def perform_destroy(self, instance):
        services.revoke_api_token(token=instance, by=self.request.user)


class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """SMEs you belong to. Anyone may register one and becomes its administrator."""

    serializer_class = OrganizationSerializer
    search_fields = ["legal_name", "siret", "city"]
    ordering_fields = ["legal_name", "created_at"]

    def get_queryset(self):
        my_role = Membership.objects.filter(
            organization=OuterRef("pk"), user_id=self.request.user.pk
        ).values("role")[:1]
        return Organization.objects.visible_to(self.request.user).annotate(
            my_role=Subquery(my_role)
        )

    def perform_create(self, serializer):
        organization = services.create_organization(
            by=self.request.user, **serializer.validated_data
        )
        organization.my_role = Membership.Role.ADMIN  # as get_queryset() annotates it
        serializer.instance = organization

    def perform_update(self, serializer):
        serializer.instance = services.update_organization(
            organization=serializer.instance, by=self.request.user, data=serializer.validated_data
        )


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of your organizations. Admins change roles and remove members;
    anyone may remove their own membership (leave)."""

    serializer_class = MembershipSerializer
    filterset_fields = ["organization", "role"]
    search_fields = ["user__email", "user__full_name"]

    def get_queryset(self):
        return Membership.objects.filter(
            organization__in=Organization.objects.visible_to(self.request.user)
        ).select_related("user", "organization")

    def perform_update(self, serializer):
        serializer.instance = services.change_member_role(
            membership=serializer.instance,
            by=self.request.user,
            role=serializer.validated_data.get("role", serializer.instance.role),
        )

    def perform_destroy(self, instance):
        services.remove_member(membership=instance, by=self.request.user)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations to join an organization; its administrators see and send them.
    DELETE revokes a pending invitation."""

    serializer_class = InvitationSerializer
    filterset_fields = ["organization"]
    throttle_scope = "invitations"

    def get_throttles(self):
        # Only sending is limited: each one emails an address the caller chose.
        return [ScopedRateThrottle()] if self.action == "create" else []

    def get_queryset(self):
        return Invitation.objects.filter(
            organization__in=Organization.objects.administered_by(self.request.user)
        )

    def perform_create(self, serializer):
        serializer.instance, _secret = services.invite_member(
            by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.revoke_invitation(invitation=instance, by=self.request.user)

    @extend_schema(request=AcceptInvitationSerializer, responses={200: MembershipSerializer})
    @action(detail=False, methods=["post"], serializer_class=AcceptInvitationSerializer)
    def accept(self, request):
        """Join the organization of the invitation whose secret `token` you received."""
        serializer = AcceptInvitationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.accept_invitation(
            secret=serializer.validated_data["token"], user=request.user
        )
        return Response(MembershipSerializer(membership).data)

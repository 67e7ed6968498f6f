"""GET/PATCH /api/v1/me/email-preferences/: which booking emails the caller wants."""

from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from booking import notifications, preferences
from booking.models import EmailPreferences


class StrictBooleanField(serializers.BooleanField):
    """true or false, nothing that merely looks like one ("yes", 1, "on")."""

    default_error_messages = {"invalid": gettext_lazy("Must be true or false.")}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class EmailPreferencesSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: StrictBooleanField,
    }
    always_sent = serializers.SerializerMethodField(
        help_text="Emails the platform decides, which cannot be turned off: approval "
        "requests to platform managers, no-shows and late cancellations."
    )

    class Meta:
        model = EmailPreferences
        fields = [*EmailPreferences.KINDS, "always_sent"]
        extra_kwargs = {
            "booking_confirmed": {"help_text": "A booking is made and confirmed."},
            "booking_pending": {"help_text": "A booking awaits the platform's approval."},
            "booking_approved": {"help_text": "The platform approved a booking."},
            "booking_rejected": {"help_text": "The platform rejected a booking, and why."},
            "booking_moved": {"help_text": "A booking moved to another time."},
            "booking_cancelled": {"help_text": "A booking was cancelled in time."},
            "booking_reminder": {"help_text": "A reminder before a booking starts."},
        }

    def get_always_sent(self, obj) -> list[str]:
        return list(notifications.ALWAYS_SENT)

    def to_internal_value(self, data):
        # A misspelt kind must not pass for a change that was made.
        if isinstance(data, dict):
            errors = {}
            for key in data:
                if key in notifications.ALWAYS_SENT:
                    errors[key] = [_("This email is always sent; it cannot be turned off.")]
                elif key == "always_sent":
                    errors[key] = [_("This field is read-only.")]
                elif key not in EmailPreferences.KINDS:
                    errors[key] = [_("Unknown kind of email.")]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class EmailPreferencesView(APIView):
    """Which booking emails you receive. Every kind is on until you turn it off; the
    ones the platform decides (`always_sent`) cannot be turned off."""

    serializer_class = EmailPreferencesSerializer

    @extend_schema(responses={200: EmailPreferencesSerializer})
    def get(self, request):
        found = preferences.email_preferences_of(request.user)
        return Response(EmailPreferencesSerializer(found).data)

    @extend_schema(request=EmailPreferencesSerializer, responses={200: EmailPreferencesSerializer})
    def patch(self, request):
        """Turn kinds of email on (true) or off (false); the others stay as they are.
        400 for an unknown kind, one always sent, or a value other than true or false."""
        serializer = EmailPreferencesSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = preferences.update_email_preferences(
            user=request.user, data=serializer.validated_data
        )
        return Response(EmailPreferencesSerializer(updated).data)

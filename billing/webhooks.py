"""Stripe's webhook endpoint: no session, no CSRF, no token; Stripe's signature
(Stripe-Signature, checked against STRIPE_WEBHOOK_SECRET) is the credential."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import payments


class WebhookAnswerSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    event = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True for an event already received.")
    outcome = serializers.CharField()


class StripeWebhookView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    @extend_schema(
        operation_id="stripe_webhook",
        auth=[],
        request={"application/json": {"type": "object", "additionalProperties": True}},
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                location=OpenApiParameter.HEADER,
                required=False,
                description="t=<timestamp>,v1=<HMAC-SHA256 of the payload>",
            )
        ],
        responses={
            200: WebhookAnswerSerializer,
            400: OpenApiResponse(description="Not signed by Stripe with our secret, or garbage."),
        },
    )
    def post(self, request):
        """Events from Stripe (payment_intent.succeeded, payment_intent.payment_failed,
        charge.refunded). Each event id is stored once: a replay answers 200 with
        `duplicate: true` and changes nothing. Other event types are stored and ignored.
        409 payments_not_configured when STRIPE_WEBHOOK_SECRET is not set."""
        event, new = payments.receive_event(
            request._request.body, request.headers.get("Stripe-Signature")
        )
        body = {
            "received": True,
            "event": event.stripe_id,
            "duplicate": not new,
            "outcome": event.outcome,
        }
        return Response(body, status=status.HTTP_200_OK)

"""Calendar feeds over HTTP: their tokens in the API (/api/v1/feeds/), and the
feeds themselves (/feeds/<secret>.ics), a plain Django view whose only
credential is the secret in its URL."""

from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.utils.http import http_date, parse_etags, parse_http_date_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from booking import feeds
from booking.models import FeedToken
from core.models import ApiToken

MAX_ID = 2**63 - 1


class FeedTokenSerializer(serializers.ModelSerializer):
    target_name = serializers.SerializerMethodField(
        help_text="The organization, machine or platform the feed is about (null for 'user')."
    )

    class Meta:
        model = FeedToken
        fields = [
            "id",
            "name",
            "kind",
            "organization",
            "machine",
            "platform",
            "target_name",
            "hint",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = [f for f in fields if f != "name"]

    def get_target_name(self, token) -> str | None:
        target = token.target
        return str(target) if target is not None else None


class FeedLinksSerializer(serializers.Serializer):
    https = serializers.CharField(help_text="The feed's address, for any calendar app.")
    webcal = serializers.CharField(help_text="The same as webcal://, which opens calendar apps.")
    google = serializers.CharField(help_text="Adds the feed to Google Calendar.")


class NewFeedTokenSerializer(FeedTokenSerializer):
    links = serializers.SerializerMethodField(help_text="The secret links: shown this once only.")

    class Meta(FeedTokenSerializer.Meta):
        fields = [*FeedTokenSerializer.Meta.fields, "links"]

    @extend_schema_field(FeedLinksSerializer)
    def get_links(self, _token) -> dict:
        return feeds.feed_links(self.context["secret"])


class CreateFeedTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=FeedToken.Kind.choices)
    organization = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    machine = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )
    platform = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True
    )

    def validate(self, data):
        given = {f for f in ("organization", "machine", "platform") if data.get(f) is not None}
        if errors := FeedToken.target_errors(data["kind"], given):
            raise serializers.ValidationError({field: [error] for field, error in errors.items()})
        wanted = FeedToken.TARGETS[FeedToken.Kind(data["kind"])]
        data["target_id"] = data.get(wanted) if wanted else None
        return data


class FeedTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Your calendar feeds. Create one from a logged-in session: the answer carries
    its secret links once (https://, webcal:// and Google Calendar's "add by URL");
    only a hash of the secret is kept. PATCH renames; DELETE revokes (the feed then
    answers 404; the row stays, with its revocation time)."""

    serializer_class = FeedTokenSerializer
    filterset_fields = ["kind"]

    def get_queryset(self):
        return FeedToken.objects.filter(owner_id=self.request.user.pk).select_related(
            "organization", "machine", "platform"
        )

    @extend_schema(request=CreateFeedTokenSerializer, responses={201: NewFeedTokenSerializer})
    def create(self, request, *args, **kwargs):
        """A feed of `kind`: "user" (the bookings you make), or about the
        `organization`, `machine` or `platform` it names (one you can see; else 404)."""
        serializer = CreateFeedTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token, secret = feeds.create_feed_token(
            by=request.user,
            kind=data["kind"],
            name=data["name"],
            target_id=data["target_id"],
            with_token=isinstance(request.auth, ApiToken),
        )
        body = NewFeedTokenSerializer(token, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = feeds.rename_feed_token(
            token=serializer.instance,
            by=self.request.user,
            name=serializer.validated_data.get("name", serializer.instance.name),
        )

    def perform_destroy(self, instance):
        feeds.revoke_feed_token(token=instance, by=self.request.user)


# --- The feed ------------------------------------------------------------------------------------


def _not_found() -> HttpResponse:
    # One answer for malformed, unknown and revoked tokens, and for lost access.
    return HttpResponseNotFound(
        _("No such calendar feed.") + "\n", content_type="text/plain; charset=utf-8"
    )


def _not_modified(request, feed: feeds.Feed) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        if "*" in tags:
            return True
        # Weak comparison, as If-None-Match asks: W/"x" matches "x".
        return feed.etag in {tag.removeprefix("W/") for tag in tags}
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    return since is not None and int(feed.last_modified.timestamp()) <= since


@require_safe
def calendar_feed(request, secret: str):
    """An iCalendar feed (RFC 5545, 7986) for calendar apps to subscribe to."""
    token = feeds.active_token(secret)
    if token is None:
        return _not_found()
    try:
        start = feeds.parse_bound(request.GET.get("start"))
        end = feeds.parse_bound(request.GET.get("end"))
    except ValueError:
        return HttpResponseBadRequest(
            _("start and end: give a date (2027-03-01) or a date-time with its offset.") + "\n",
            content_type="text/plain; charset=utf-8",
        )
    feed = feeds.load_feed(token, start=start, end=end)
    if feed is None:
        return _not_found()
    if _not_modified(request, feed):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(feed.render(), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="fabpool.ics"'
    # Written in its owner's language (Feed.render), whoever fetches it.
    response["Content-Language"] = token.owner.language
    response["ETag"] = feed.etag
    response["Last-Modified"] = http_date(feed.last_modified.timestamp())
    # Clients revalidate every time (cheap with the ETag); shared caches keep nothing.
    response["Cache-Control"] = "private, no-cache"
    # The URL is a credential: keep it out of Referer headers and search engines.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response

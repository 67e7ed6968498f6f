"""The API answers every error in one shape:

    {"error": {"code": "…", "message": "…", "details": {…}}}

with, for invalid input, each field's reasons in details["fields"] keyed by the
field's dotted path."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core import urls as project_urls
from core.errors import Conflict, Gone
from core.models import Membership
from tests import factories

# --- A throwaway endpoint, mounted beside the real API, to reach every branch -------------


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1)


class ContactSerializer(serializers.Serializer):
    email = serializers.EmailField()


class OrderSerializer(serializers.Serializer):
    contact = ContactSerializer()
    items = ItemSerializer(many=True)
    tags = serializers.ListField(child=serializers.IntegerField())
    note = serializers.CharField(required=False)

    def validate(self, attrs):
        if attrs.get("note") == "refuse":
            raise serializers.ValidationError("This order cannot be placed.")
        return attrs


RAISES = {
    "django-field": lambda: DjangoValidationError({"start": ["Starts in the past."]}),
    "django-non-field": lambda: DjangoValidationError({NON_FIELD_ERRORS: ["Overlaps a booking."]}),
    "django-plain": lambda: DjangoValidationError("Overlaps a booking."),
    "http404": lambda: Http404("nope"),
    "django-permission": lambda: DjangoPermissionDenied(),
    # As SQLite words a unique violation (psycopg's carries sqlstate 23505 instead).
    "integrity": lambda: IntegrityError("UNIQUE constraint failed: core_organization.siret"),
    "not_null": lambda: IntegrityError("NOT NULL constraint failed: core_user.email"),
    "conflict": lambda: Conflict("The slot was just taken.", code="slot_taken"),
    "gone": lambda: Gone("Cancelled.", details={"cancelled_at": "2025-01-01"}),
}


class OrderView(APIView):
    permission_classes = []

    def post(self, request):
        OrderSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({"ok": True})


class RaiseView(APIView):
    permission_classes = []

    def get(self, request, kind):
        raise RAISES[kind]()


urlpatterns = [
    path("api/v1/_test/orders/", OrderView.as_view()),
    path("api/v1/_test/raise/<str:kind>/", RaiseView.as_view()),
    *project_urls.urlpatterns,
]

with_test_endpoints = pytest.mark.urls(__name__)


# --- Helpers ---------------------------------------------------------------------------------


def assert_error(response, status: int, code: str) -> dict:
    """The response is `status` in the one shape, with `code`; returns the error."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


@pytest.fixture
def user(db):
    return factories.UserFactory(email="hugo@sme.example")


@pytest.fixture
def caller(api, user):
    """An API client authenticated as `user`."""
    return api.as_user(user)


# --- 400 -------------------------------------------------------------------------------------


def test_400_lists_each_fields_reasons(caller):
    response = caller.post("/api/v1/organizations/", {"legal_name": "", "country": "XX"})

    error = assert_error(response, 400, "invalid")
    assert error["details"]["fields"] == {
        "legal_name": ["This field may not be blank."],
        "country": ['"XX" is not a valid choice.'],
    }
    assert error["message"] == "legal_name: This field may not be blank."


@with_test_endpoints
def test_400_names_nested_fields_by_dotted_path(caller):
    response = caller.post(
        "/api/v1/_test/orders/",
        {
            "contact": {"email": "not-an-email"},
            "items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 0}],
            "tags": [1, "x"],
        },
    )

    fields = assert_error(response, 400, "invalid")["details"]["fields"]
    assert set(fields) == {"contact.email", "items.1.quantity", "tags.1"}
    assert all(isinstance(r, list) and all(isinstance(m, str) for m in r) for r in fields.values())


@with_test_endpoints
def test_400_lists_every_missing_field(caller):
    fields = assert_error(caller.post("/api/v1/_test/orders/", {}), 400, "invalid")["details"][
        "fields"
    ]

    assert set(fields) == {"contact", "items", "tags"}


@with_test_endpoints
def test_400_keys_errors_about_the_whole_object_as_non_field_errors(caller):
    response = caller.post(
        "/api/v1/_test/orders/",
        {"contact": {"email": "a@b.example"}, "items": [], "tags": [], "note": "refuse"},
    )

    error = assert_error(response, 400, "invalid")
    assert error["details"]["fields"] == {"non_field_errors": ["This order cannot be placed."]}
    assert error["message"] == "This order cannot be placed."


@with_test_endpoints
def test_400_from_a_django_validation_error_keeps_its_fields(caller):
    error = assert_error(caller.get("/api/v1/_test/raise/django-field/"), 400, "invalid")

    assert error["details"]["fields"] == {"start": ["Starts in the past."]}


@with_test_endpoints
@pytest.mark.parametrize("kind", ["django-non-field", "django-plain"])
def test_400_from_a_django_error_about_the_whole_object_uses_non_field_errors(caller, kind):
    error = assert_error(caller.get(f"/api/v1/_test/raise/{kind}/"), 400, "invalid")

    assert error["details"]["fields"] == {"non_field_errors": ["Overlaps a booking."]}
    assert error["message"] == "Overlaps a booking."


def test_malformed_json_answers_400(caller):
    response = caller.patch(
        "/api/v1/me/", data='{"full_name": "Hugo",', content_type="application/json"
    )

    error = assert_error(response, 400, "parse_error")
    assert "JSON" in error["message"]


# --- 401, 403 --------------------------------------------------------------------------------


def test_401_without_credentials(api, db):
    response = api.get("/api/v1/organizations/")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_401_with_a_bad_token(api, db):
    api.credentials(HTTP_AUTHORIZATION="Bearer fbp_wrong")

    assert_error(api.get("/api/v1/organizations/"), 401, "authentication_failed")


def test_403_when_the_user_may_not_do_this(caller, user):
    organization = factories.OrganizationFactory()
    factories.MembershipFactory(user=user, organization=organization, role=Membership.Role.MEMBER)

    response = caller.patch(f"/api/v1/organizations/{organization.pk}/", {"city": "Ulm"})

    assert_error(response, 403, "permission_denied")


@with_test_endpoints
def test_403_from_djangos_permission_denied(caller):
    assert_error(caller.get("/api/v1/_test/raise/django-permission/"), 403, "permission_denied")


# --- 404 -------------------------------------------------------------------------------------


def test_404_for_an_object_that_does_not_exist(caller):
    assert_error(caller.get("/api/v1/organizations/999999/"), 404, "not_found")


def test_404_for_an_id_that_is_not_a_number(caller):
    assert_error(caller.get("/api/v1/organizations/abc/"), 404, "not_found")


def test_404_for_someone_elses_object_is_the_same_as_for_a_missing_one(caller):
    organization = factories.OrganizationFactory()

    hidden = assert_error(caller.get(f"/api/v1/organizations/{organization.pk}/"), 404, "not_found")
    missing = assert_error(caller.get("/api/v1/organizations/999999/"), 404, "not_found")
    assert hidden == missing


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v1/nothing-here/", "No such endpoint."),
        ("/api/v1/organisations/", "No such endpoint."),
        ("/api/v1/nothing/here/deep", "No such endpoint (API paths end with a slash)."),
        ("/api/v1/organizations", "No such endpoint (API paths end with a slash)."),
    ],
)
def test_404_for_an_unknown_url_under_the_api_answers_json(caller, url, message):
    error = assert_error(caller.get(url), 404, "not_found")

    assert error["message"] == message


def test_404_for_an_unknown_api_url_answers_json_even_anonymously(db):
    assert_error(APIClient().post("/api/v1/nothing-here/"), 404, "not_found")


def test_404_outside_the_api_stays_an_html_page(caller):
    response = caller.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@with_test_endpoints
def test_404_from_djangos_http404(caller):
    assert_error(caller.get("/api/v1/_test/raise/http404/"), 404, "not_found")


# --- 405, 409, 410, 415 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("delete", "/api/v1/organizations/{org}/"),
        ("put", "/api/v1/me/tokens/"),
        ("delete", "/api/v1/me/"),
        ("post", "/api/v1/memberships/"),
    ],
)
def test_405_for_a_method_the_endpoint_does_not_allow(caller, user, method, url):
    organization = factories.OrganizationFactory()
    factories.MembershipFactory(user=user, organization=organization, role=Membership.Role.ADMIN)

    response = getattr(caller, method)(url.format(org=organization.pk), {})

    error = assert_error(response, 405, "method_not_allowed")
    assert method.upper() in error["message"]
    assert "Allow" in response


@with_test_endpoints
def test_409_when_the_database_refuses_a_concurrent_duplicate(caller):
    error = assert_error(caller.get("/api/v1/_test/raise/integrity/"), 409, "conflict")

    assert "retry" in error["message"]
    assert "UNIQUE" not in error["message"]  # no database internals leak


@with_test_endpoints
def test_other_integrity_errors_stay_bugs_and_are_not_dressed_as_conflicts(caller):
    with pytest.raises(IntegrityError, match="NOT NULL"):
        caller.get("/api/v1/_test/raise/not_null/")


@with_test_endpoints
def test_domain_errors_keep_their_code_and_details(caller):
    assert_error(caller.get("/api/v1/_test/raise/conflict/"), 409, "slot_taken")
    error = assert_error(caller.get("/api/v1/_test/raise/gone/"), 410, "gone")
    assert error["details"] == {"cancelled_at": "2025-01-01"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/csv"])
def test_415_for_a_body_that_is_not_json(caller, content_type):
    response = caller.patch("/api/v1/me/", data="full_name=Hugo", content_type=content_type)

    error = assert_error(response, 415, "unsupported_media_type")
    assert content_type in error["message"]


def test_json_is_accepted_with_a_charset(caller):
    response = caller.patch(
        "/api/v1/me/",
        data='{"full_name": "Hugo Bérard"}'.encode(),
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Hugo Bérard"

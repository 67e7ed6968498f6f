"""Personal API tokens: shown once, stored hashed, revocable, private to their owner."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiToken, AuditEvent
from core.services import create_api_token
from tests import factories

TOKENS = "/api/v1/me/tokens/"


@pytest.fixture
def user(db):
    return factories.UserFactory(email="script.owner@sme.example")


@pytest.fixture
def logged_in(user):
    """A browser session (not a token), as when managing tokens from the web UI."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- Creation: the secret is shown once --------------------------------------------------


def test_creating_a_token_returns_its_secret_once(logged_in, user):
    response = logged_in.post(TOKENS, {"name": "CI pipeline"})

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "CI pipeline"
    assert body["token"].startswith("fbp_")
    assert body["hint"] == body["token"][:10]
    assert body["last_used_at"] is None
    assert body["revoked_at"] is None

    detail = logged_in.get(f"{TOKENS}{body['id']}/").json()
    listing = logged_in.get(TOKENS).json()
    assert "token" not in detail
    assert all("token" not in row for row in listing["results"])
    assert body["token"] not in str(detail) + str(listing)


def test_each_token_gets_a_different_secret(logged_in):
    first = logged_in.post(TOKENS, {"name": "one"}).json()["token"]
    second = logged_in.post(TOKENS, {"name": "two"}).json()["token"]

    assert first != second


def test_a_token_cannot_mint_new_tokens(user):
    """A leaked token must not be able to create its own successors."""
    _token, secret = create_api_token(user=user, name="CI")

    response = bearer(secret).post(TOKENS, {"name": "successor"})

    assert_error(response, 403, "permission_denied")
    assert ApiToken.objects.filter(user=user).count() == 1


def test_a_token_needs_a_name(logged_in):
    error = assert_error(logged_in.post(TOKENS, {}), 400, "invalid")

    assert "name" in error["details"]["fields"]
    assert not ApiToken.objects.exists()


def test_only_the_sha256_of_the_secret_is_stored(logged_in, user):
    secret = logged_in.post(TOKENS, {"name": "CI"}).json()["token"]

    token = ApiToken.objects.get(user=user)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = list(ApiToken.objects.values_list()) + list(AuditEvent.objects.values_list())
    assert secret not in repr(stored)


# --- Authentication ------------------------------------------------------------------------


def test_a_token_authenticates_its_owner(user):
    _token, secret = create_api_token(user=user, name="CI")

    response = bearer(secret).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["email"] == "script.owner@sme.example"


def test_the_bearer_keyword_is_case_insensitive(user):
    _token, secret = create_api_token(user=user, name="CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {secret}")

    assert client.get("/api/v1/me/").status_code == 200


def test_first_use_sets_last_used_at(user):
    token, secret = create_api_token(user=user, name="CI")
    before = timezone.now()

    bearer(secret).get("/api/v1/me/")

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert before <= token.last_used_at <= timezone.now()


def test_last_used_at_is_not_rewritten_within_a_minute(user):
    token, secret = create_api_token(user=user, name="CI")
    recently = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recently)

    bearer(secret).get("/api/v1/me/")

    token.refresh_from_db()
    assert token.last_used_at == recently


def test_last_used_at_is_refreshed_once_a_minute_has_passed(user):
    token, secret = create_api_token(user=user, name="CI")
    a_while_ago = timezone.now() - timedelta(minutes=1, seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=a_while_ago)

    bearer(secret).get("/api/v1/me/")

    token.refresh_from_db()
    assert token.last_used_at > a_while_ago + timedelta(minutes=1)


def test_a_revoked_token_answers_401_in_the_error_shape(logged_in, user):
    token, secret = create_api_token(user=user, name="CI")
    assert logged_in.delete(f"{TOKENS}{token.pk}/").status_code == 204

    response = bearer(secret).get("/api/v1/me/")

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoking_keeps_the_row_with_its_revocation_time(logged_in, user):
    token, _secret = create_api_token(user=user, name="CI")

    logged_in.delete(f"{TOKENS}{token.pk}/")

    token.refresh_from_db()
    assert token.revoked_at is not None
    listed = logged_in.get(TOKENS).json()["results"]
    assert [(row["id"], row["revoked_at"] is not None) for row in listed] == [(token.pk, True)]


def test_a_token_can_revoke_itself(user):
    _token, secret = create_api_token(user=user, name="CI")
    client = bearer(secret)
    token_id = client.get(TOKENS).json()["results"][0]["id"]

    assert client.delete(f"{TOKENS}{token_id}/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401


def test_the_token_of_a_deactivated_user_answers_401(user):
    _token, secret = create_api_token(user=user, name="CI")
    user.is_active = False
    user.save()

    assert_error(bearer(secret).get("/api/v1/me/"), 401, "authentication_failed")


# --- Management ------------------------------------------------------------------------------


def test_renaming_a_token(logged_in, user):
    token, secret = create_api_token(user=user, name="CI")

    response = logged_in.patch(f"{TOKENS}{token.pk}/", {"name": "Nightly export"})

    assert response.status_code == 200
    assert response.json()["name"] == "Nightly export"
    assert "token" not in response.json()
    token.refresh_from_db()
    assert token.name == "Nightly export"
    assert bearer(secret).get("/api/v1/me/").status_code == 200


def test_a_token_list_shows_only_my_tokens(logged_in, user):
    mine, _ = create_api_token(user=user, name="mine")
    create_api_token(user=factories.UserFactory(), name="theirs")

    listed = logged_in.get(TOKENS).json()["results"]

    assert [row["id"] for row in listed] == [mine.pk]


@pytest.mark.parametrize(
    ("method", "data"), [("get", None), ("patch", {"name": "stolen"}), ("delete", None)]
)
def test_another_users_token_is_not_found(logged_in, method, data):
    theirs, secret = create_api_token(user=factories.UserFactory(), name="theirs")

    response = getattr(logged_in, method)(f"{TOKENS}{theirs.pk}/", data)

    assert_error(response, 404, "not_found")
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked_at) == ("theirs", None)
    assert bearer(secret).get("/api/v1/me/").status_code == 200


def test_managing_tokens_requires_authentication(db):
    assert_error(APIClient().get(TOKENS), 401, "not_authenticated")
    assert_error(APIClient().post(TOKENS, {"name": "x"}), 401, "not_authenticated")


# --- Malformed credentials: always 401, never 500 -----------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer two parts",
        "Bearer fbp_not-a-real-token",
        "Bearer fbp_caf\u00e9",  # not ASCII
        "Bearer \u00ff\u00fe\u00fd",
        "Bearer " + "x" * 5000,
        "Bearer\tfbp_\x00",
    ],
)
def test_a_malformed_or_unknown_bearer_token_answers_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/me/")

    assert_error(response, 401, "authentication_failed")


@pytest.mark.parametrize("header", ["", "Basic Zm9vOmJhcg==", "Token abc", "fbp_abc", "   "])
def test_other_authorization_schemes_are_ignored_and_answer_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/me/")

    assert_error(response, 401, "not_authenticated")

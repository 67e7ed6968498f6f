"""Accounts through allauth's real pages: sign-up with mandatory email
verification, login by email, password reset and TOTP two-factor login."""

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache

from core.models import User
from tests import factories

NEW_PASSWORD = "a-brand-new-lathe-42"


@pytest.fixture(autouse=True)
def fresh_cache():
    """allauth keeps rate limits and used TOTP codes in the cache: start each test clean."""
    cache.clear()
    yield
    cache.clear()


def link_in(message, path_prefix: str) -> str:
    """The path of the first link in `message` that starts with `path_prefix`."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"\S+)", message.body)
    assert match, f"no {path_prefix} link in:\n{message.body}"
    return match.group(1)


def logged_in_user_id(client):
    return client.session.get(SESSION_KEY)


def log_in(client, email: str, password: str = factories.PASSWORD):
    return client.post("/accounts/login/", {"login": email, "password": password})


# --- Sign-up and email verification ------------------------------------------------------


def sign_up(client, email="new.person@sme.example", password=factories.PASSWORD):
    return client.post(
        "/accounts/signup/", {"email": email, "password1": password, "password2": password}
    )


def test_sign_up_sends_a_verification_email_and_does_not_log_in(client, db, mailoutbox):
    response = sign_up(client)

    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    user = User.objects.get(email="new.person@sme.example")
    assert not EmailAddress.objects.get(user=user).verified
    assert logged_in_user_id(client) is None
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.person@sme.example"]
    link_in(mailoutbox[0], "/accounts/confirm-email/")


def test_sign_up_stores_the_email_in_lower_case(client, db, mailoutbox):
    sign_up(client, email="New.Person@SME.example")

    assert User.objects.filter(email="new.person@sme.example").exists()


def test_an_unverified_account_cannot_log_in(client, db, mailoutbox):
    sign_up(client)
    client.logout()

    response = log_in(client, "new.person@sme.example")

    assert response.status_code == 302
    assert response.url == "/accounts/confirm-email/"
    assert logged_in_user_id(client) is None


def test_following_the_emailed_link_verifies_the_address_and_logs_in(client, db, mailoutbox):
    sign_up(client)
    confirm_path = link_in(mailoutbox[0], "/accounts/confirm-email/")

    assert client.get(confirm_path).status_code == 200
    response = client.post(confirm_path)

    assert response.status_code == 302
    user = User.objects.get(email="new.person@sme.example")
    assert EmailAddress.objects.get(user=user).verified
    assert logged_in_user_id(client) == str(user.pk)


def test_a_verified_account_can_log_in_from_another_browser(client, db, mailoutbox):
    sign_up(client)
    client.post(link_in(mailoutbox[0], "/accounts/confirm-email/"))
    client.logout()

    response = log_in(client, "new.person@sme.example")

    assert response.status_code == 302
    assert response.url == "/"
    assert logged_in_user_id(client) is not None


def test_sign_up_with_an_address_already_taken_creates_no_second_account(client, db, mailoutbox):
    factories.UserFactory(email="taken@sme.example")

    sign_up(client, email="Taken@SME.example")

    assert User.objects.filter(email="taken@sme.example").count() == 1
    assert logged_in_user_id(client) is None


# --- Login -------------------------------------------------------------------------------


def test_login_with_email_and_password(client, db):
    user = factories.UserFactory(email="hugo@sme.example")

    response = log_in(client, "hugo@sme.example")

    assert response.status_code == 302
    assert response.url == "/"
    assert logged_in_user_id(client) == str(user.pk)


def test_login_ignores_the_case_of_the_email(client, db):
    user = factories.UserFactory(email="hugo@sme.example")

    log_in(client, "Hugo@SME.example")

    assert logged_in_user_id(client) == str(user.pk)


def test_login_with_a_wrong_password_fails(client, db):
    factories.UserFactory(email="hugo@sme.example")

    response = log_in(client, "hugo@sme.example", "not-the-password")

    assert response.status_code == 200
    assert response.context["form"].errors
    assert logged_in_user_id(client) is None


def test_login_page_renders_inside_fabpools_layout(client, db):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert "frontend/base.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert '<a class="brand" href="/">' in html and "fabpool</a>" in html
    assert "frontend/app.css" in html
    assert 'name="login"' in html
    assert 'name="password"' in html


# --- Password reset ----------------------------------------------------------------------


def test_password_reset_emails_a_link_that_sets_a_new_password(client, db, mailoutbox):
    user = factories.UserFactory(email="hugo@sme.example")

    response = client.post("/accounts/password/reset/", {"email": "hugo@sme.example"})

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["hugo@sme.example"]
    reset_path = link_in(mailoutbox[0], "/accounts/password/reset/key/")

    # The key is swapped for a session entry and the page moves to a key-less URL.
    response = client.get(reset_path, follow=True)
    assert response.status_code == 200
    set_password_path = response.redirect_chain[-1][0]
    response = client.post(
        set_password_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    client.logout()
    assert log_in(client, "hugo@sme.example", factories.PASSWORD).status_code == 200
    assert logged_in_user_id(client) is None
    log_in(client, "hugo@sme.example", NEW_PASSWORD)
    assert logged_in_user_id(client) == str(user.pk)


def test_a_password_reset_link_works_only_once(client, db, mailoutbox):
    factories.UserFactory(email="hugo@sme.example")
    client.post("/accounts/password/reset/", {"email": "hugo@sme.example"})
    reset_path = link_in(mailoutbox[0], "/accounts/password/reset/key/")
    set_password_path = client.get(reset_path, follow=True).redirect_chain[-1][0]
    client.post(set_password_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    client.logout()

    response = client.get(reset_path, follow=True)

    assert response.context["token_fail"]


def test_password_reset_for_an_unknown_address_reveals_nothing(client, db, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "nobody@sme.example"})

    assert response.status_code == 302
    # The address gets at most a "no account here" notice, never a reset link.
    assert all("/accounts/password/reset/key/" not in m.body for m in mailoutbox)


# --- Two-factor authentication (TOTP) -----------------------------------------------------


def current_code(secret: str) -> str:
    """What the user's authenticator app shows now. fabpool accepts only the current
    time step, so wait out the last two seconds of one rather than race its end."""
    period = mfa_settings.TOTP_PERIOD
    if time.time() % period > period - 2:
        time.sleep(period - time.time() % period + 0.05)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))


def wrong_code(secret: str) -> str:
    """A well-formed code valid in no accepted time step."""
    valid = {format_hotp_value(hotp_value(secret, c)) for c in yield_hotp_counters_from_time()}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


@pytest.fixture
def totp_user(db):
    user = factories.UserFactory(email="mfa@sme.example")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user, secret


def test_with_totp_enabled_login_asks_for_the_code(client, totp_user):
    response = log_in(client, "mfa@sme.example")

    assert response.status_code == 302
    assert response.url == "/accounts/2fa/authenticate/"
    assert logged_in_user_id(client) is None
    page = client.get("/accounts/2fa/authenticate/")
    assert page.status_code == 200
    assert 'name="code"' in page.content.decode()


def test_a_correct_totp_code_completes_login(client, totp_user):
    user, secret = totp_user
    log_in(client, "mfa@sme.example")

    response = client.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})

    assert response.status_code == 302
    assert response.url == "/"
    assert logged_in_user_id(client) == str(user.pk)


def test_a_wrong_totp_code_does_not_log_in(client, totp_user):
    _user, secret = totp_user
    log_in(client, "mfa@sme.example")

    response = client.post("/accounts/2fa/authenticate/", {"code": wrong_code(secret)})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert logged_in_user_id(client) is None


def test_a_totp_code_cannot_be_used_twice(client, totp_user):
    _user, secret = totp_user
    code = current_code(secret)
    log_in(client, "mfa@sme.example")
    client.post("/accounts/2fa/authenticate/", {"code": code})
    client.logout()

    log_in(client, "mfa@sme.example")
    response = client.post("/accounts/2fa/authenticate/", {"code": code})

    assert response.status_code == 200
    assert logged_in_user_id(client) is None


def test_the_totp_page_cannot_be_skipped(client, totp_user):
    log_in(client, "mfa@sme.example")

    client.get("/")

    assert logged_in_user_id(client) is None
    assert client.get("/api/v1/me/").status_code == 401

"""/api/v1/feeds/: people list, create, rename and revoke their calendar feeds.
Who may create which feed, and that feeds are personal, is in
tests/test_permission_matrix.py; what a feed shows, in test_feeds.py."""

from urllib.parse import quote

import pytest
from django.conf import settings

from booking.models import FeedToken
from core.models import AuditEvent

FEEDS = "/api/v1/feeds/"


@pytest.fixture
def session(api, world):
    """The API as SME A's member, logged in (feeds are created from a session)."""
    api.force_login(world.a.org_member)
    return api


def create(client, **body):
    return client.post(FEEDS, {"name": "Atelier", "kind": "user", **body})


def test_creating_a_feed_hands_out_its_secret_links_once(session, client, world):
    response = create(session, kind="machine", machine=world.a.machine.pk)

    assert response.status_code == 201, response.content
    body = response.json()
    links = body.pop("links")
    https = links["https"]
    assert https.startswith(f"{settings.FABPOOL_BASE_URL}/feeds/") and https.endswith(".ics")
    secret = https.rsplit("/", 1)[1].removesuffix(".ics")
    assert links["webcal"] == "webcal://" + https.split("://", 1)[1]
    assert links["google"] == (
        "https://calendar.google.com/calendar/r?cid=" + quote(links["webcal"], safe="")
    )
    assert body == {
        "id": body["id"],
        "name": "Atelier",
        "kind": "machine",
        "organization": None,
        "machine": world.a.machine.pk,
        "platform": None,
        "target_name": "Printer a",
        "hint": secret[:4],
        "created_at": body["created_at"],
        "last_used_at": None,
        "revoked_at": None,
    }
    # The link works without any session; the list never shows the secret again.
    assert client.get(f"/feeds/{secret}.ics").status_code == 200
    listed = session.get(FEEDS)
    assert secret not in listed.content.decode()
    assert listed.json()["results"][0]["last_used_at"] is not None
    event = AuditEvent.objects.get(action="feedtoken.create")
    assert event.actor_id == world.a.org_member.pk


def test_an_api_token_cannot_create_feeds(api, world):
    """A leaked API token must not leave feeds behind that outlive its revocation."""
    response = create(api.as_user(world.a.org_member))

    assert response.status_code == 403
    assert not FeedToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "machine"}, "machine"),
        ({"kind": "organization", "organization": None}, "organization"),
        ({"kind": "user", "platform": 1}, "platform"),
        ({"kind": "platform", "platform": 1, "machine": 1}, "machine"),
        ({"kind": "calendar"}, "kind"),
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "x" * 101}, "name"),
    ],
)
def test_a_feed_names_exactly_the_target_its_kind_needs(session, body, field):
    response = create(session, **body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]
    assert not FeedToken.objects.exists()


def test_an_unknown_target_is_not_found(session):
    response = create(session, kind="platform", platform=987654)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_renaming_renames_the_calendar(session, client, world):
    created = create(session).json()
    secret = created["links"]["https"].rsplit("/", 1)[1]

    response = session.patch(f"{FEEDS}{created['id']}/", {"name": "Planning atelier"})

    assert response.status_code == 200
    assert response.json()["name"] == "Planning atelier"
    assert "X-WR-CALNAME:Planning atelier\r\n" in client.get(f"/feeds/{secret}").content.decode()
    assert AuditEvent.objects.filter(action="feedtoken.update").count() == 1


def test_kind_and_target_cannot_change(session, world):
    created = create(session).json()

    response = session.patch(
        f"{FEEDS}{created['id']}/", {"kind": "platform", "platform": world.a.platform.pk}
    )

    assert response.status_code == 200
    token = FeedToken.objects.get(pk=created["id"])
    assert (token.kind, token.platform_id) == ("user", None)


def test_revoking_turns_the_feed_into_a_404_once_and_for_all(session, client):
    created = create(session).json()
    url = created["links"]["https"].split(settings.FABPOOL_BASE_URL, 1)[1]
    assert client.get(url).status_code == 200

    first = session.delete(f"{FEEDS}{created['id']}/")
    again = session.delete(f"{FEEDS}{created['id']}/")

    assert (first.status_code, again.status_code) == (204, 204)
    assert client.get(url).status_code == 404
    assert session.get(f"{FEEDS}{created['id']}/").json()["revoked_at"] is not None
    assert AuditEvent.objects.filter(action="feedtoken.revoke").count() == 1


def test_the_list_filters_by_kind(session, world):
    create(session)
    create(session, kind="organization", organization=world.a.org.pk)

    response = session.get(FEEDS, {"kind": "organization"})

    assert [row["kind"] for row in response.json()["results"]] == ["organization"]
    assert response.json()["results"][0]["target_name"] == "SME a"

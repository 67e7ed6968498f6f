"""My calendar feeds: created through booking/feeds.py, the secret link shown
once at creation (https, webcal, Google), renamed, revoked; another person's
feed answers 404; a machine or platform I cannot see cannot be chosen."""

import pytest
from django.utils import translation
from django.utils.html import escape

from booking.models import FeedToken


def test_creating_a_feed_shows_its_links_once(member_client, lab):
    response = member_client.post(
        "/calendar-feeds/",
        {"about": f"machine:{lab.a.machine.pk}", "name": "Printer week"},
        follow=True,
    )

    assert response.redirect_chain == [("/calendar-feeds/", 302)]
    html = response.content.decode()
    links = response.context["created"]["links"]
    assert links["https"].endswith(".ics") and links["https"] in html
    assert links["webcal"].startswith("webcal://") and "calendar.google.com" in links["google"]
    token = FeedToken.objects.get(owner=lab.a.org_member)
    assert (token.kind, token.machine, token.name) == ("machine", lab.a.machine, "Printer week")
    secret = links["https"].rsplit("/", 1)[1].removesuffix(".ics")
    assert secret not in token.token_hash

    again = member_client.get("/calendar-feeds/").content.decode()
    assert "Printer week" in again and secret not in again


def test_the_feed_link_serves_the_calendar(member_client, client, lab):
    response = member_client.post(
        "/calendar-feeds/", {"about": "user", "name": "Mine"}, follow=True
    )
    path = response.context["created"]["links"]["https"].split("://", 1)[1].split("/", 1)[1]

    feed = client.get(f"/{path}")

    assert feed.status_code == 200 and feed.content.startswith(b"BEGIN:VCALENDAR")


def test_what_i_cannot_see_is_not_offered_and_is_refused_next_to_the_field(member_client, lab):
    page = member_client.get("/calendar-feeds/").content.decode()
    assert f'value="machine:{lab.a.machine.pk}"' in page
    assert f'value="machine:{lab.b.machine.pk}"' not in page
    assert f'value="organization:{lab.b.org.pk}"' not in page

    response = member_client.post(
        "/calendar-feeds/", {"about": f"machine:{lab.b.machine.pk}", "name": "Spy"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["about"]
    assert 'value="Spy"' in response.content.decode()
    assert not FeedToken.objects.exists()


def test_a_feed_without_a_name_is_refused_and_keeps_the_choice(member_client, lab):
    about = f"platform:{lab.a.platform.pk}"

    response = member_client.post("/calendar-feeds/", {"about": about, "name": ""})

    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert f'value="{about}" selected' in response.content.decode()


def test_a_feeds_target_is_introduced_with_french_punctuation(member_client, lab):
    member_client.post(
        "/calendar-feeds/", {"about": f"machine:{lab.a.machine.pk}", "name": "Printer"}
    )

    english = member_client.get("/calendar-feeds/").content.decode()
    french = member_client.get("/calendar-feeds/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    kind = FeedToken.Kind.MACHINE.label
    with translation.override("en"):
        kind_en = str(kind)
    with translation.override("fr"):
        kind_fr = str(kind)
    assert escape(f"{kind_en}: {lab.a.machine}") in english
    assert escape(f"{kind_fr}\u00a0: {lab.a.machine}") in french  # no-break space, then colon


def test_renaming_and_revoking(member_client, lab):
    member_client.post("/calendar-feeds/", {"about": "user", "name": "Mine"})
    token = FeedToken.objects.get()

    member_client.post(f"/calendar-feeds/{token.pk}/rename/", {"name": "Lab"})
    member_client.post(f"/calendar-feeds/{token.pk}/revoke/")

    token.refresh_from_db()
    assert token.name == "Lab" and token.revoked_at is not None


def test_someone_elses_feed_is_not_found(client, member_client, lab):
    member_client.post("/calendar-feeds/", {"about": "user", "name": "Mine"})
    token = FeedToken.objects.get()
    client.force_login(lab.a.org_admin)

    assert client.post(f"/calendar-feeds/{token.pk}/revoke/").status_code == 404
    assert client.post(f"/calendar-feeds/{token.pk}/rename/", {"name": "x"}).status_code == 404
    assert "Mine" not in client.get("/calendar-feeds/").content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("n", [1, 12])
def test_the_feeds_page_costs_the_same_queries_for_1_or_12_feeds(
    member_client, lab, n, django_assert_max_num_queries
):
    for i in range(n):
        kind = ["user", f"machine:{lab.a.machine.pk}", f"organization:{lab.a.org.pk}"][i % 3]
        member_client.post("/calendar-feeds/", {"about": kind, "name": f"Feed {i}"}, follow=True)

    with django_assert_max_num_queries(10):
        response = member_client.get("/calendar-feeds/")
    assert len(response.context["active"]) == n

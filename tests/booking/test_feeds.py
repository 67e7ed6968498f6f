"""Calendar subscription feeds (/feeds/<secret>.ics): what each kind shows to whom,
read by three parsers, kept in sync by clients, and cheap to poll.

The scene: platform A's printer, booked by SME A (one booking across each DST
change in Paris, a cancelled one, a rejected one, a past one) and by a neighbour
SME C that also books on platform A, with a title, a note and a name that must
never reach SME A's people; platform B and SME B on the other side. Feeds cover
the past 30 days to 12 months ahead."""

import hashlib
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import icalendar
import pytest
import time_machine
import vobject
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.http import http_date, parse_http_date

from booking.calendar import booking_uid
from booking.feeds import create_feed_token, revoke_feed_token
from booking.models import Booking, FeedToken
from booking.services import cancel_booking
from core.models import Membership
from equipment.models import PlatformStaff
from tests import factories
from tests.booking.conftest import next_weekday
from tests.booking.feed_support import (
    assert_wire_format,
    read_three_ways,
    read_with_icalendar,
    read_with_icaljs_raw,
)
from tests.booking.support import make_booking, next_dst_sunday, paris

# A note that needs every escape and folds in the middle of multi-byte characters.
LONG_NOTE = (
    "Réglage de la buse ✓; vérifier l'axe Z, puis \\ recalibrer.\r\n"
    + "Étape suivante — « ébavurage » 🛠️, 0,2 mm; " * 6
    + "\nFin."
)


def feed_url(secret: str) -> str:
    return f"/feeds/{secret}.ics"


def new_feed(owner, kind="user", target=None, name="My calendar") -> tuple[FeedToken, str]:
    return create_feed_token(
        by=owner, kind=kind, name=name, target_id=target.pk if target is not None else None
    )


def uid_of(obj) -> str:
    if isinstance(obj, Booking):
        return booking_uid(obj.pk)
    kind = "maintenance" if hasattr(obj, "machine_id") else "closure"
    return f"{kind}-{obj.pk}@fabpool"


def spans(*objects) -> dict:
    """What the database says each object's event is: UID → (UTC start, end), or
    (first day, day after the last) for a closure."""
    out = {}
    for obj in objects:
        obj.refresh_from_db()
        if hasattr(obj, "start_date"):
            out[uid_of(obj)] = (obj.start_date, obj.end_date + timedelta(days=1))
        else:
            out[uid_of(obj)] = (obj.start.astimezone(UTC), obj.end.astimezone(UTC))
    return out


@pytest.fixture
def scene(world):
    a, b = world.a, world.b
    s = SimpleNamespace(world=world, a=a, b=b)
    s.neighbour = factories.OrganizationFactory(legal_name="Voisinage Secret SARL")
    factories.PlatformMembershipFactory(organization=s.neighbour, platform=a.platform)
    s.neighbour_person = factories.UserFactory(
        email="cecile@voisinage.example", full_name="Cécile Voisine"
    )
    factories.MembershipFactory(user=s.neighbour_person, organization=s.neighbour)

    day = next_weekday(1)  # a Tuesday, one to two weeks ahead (Paris midnight)
    now = timezone.now().replace(second=0, microsecond=0)  # bookings start on whole minutes

    def booking(start, end, org=a.org, by=a.org_member, machine=a.machine, **fields):
        return make_booking(machine, org, by, start, end, **fields)

    s.mine = booking(day.replace(hour=9), day.replace(hour=11), title="Gabarit A", note=LONG_NOTE)
    s.colleague = booking(
        day.replace(hour=14) + timedelta(days=1),
        day.replace(hour=16) + timedelta(days=1),
        by=a.org_admin,
        status=Booking.Status.PENDING,
    )
    s.neighbours = booking(
        day.replace(hour=12),
        day.replace(hour=13),
        org=s.neighbour,
        by=s.neighbour_person,
        title="Projet confidentiel Zeta",
        note="Prototype secret pour client Omega",
    )
    s.neighbours_cancelled = booking(
        day.replace(hour=15),
        day.replace(hour=16),
        org=s.neighbour,
        by=s.neighbour_person,
        status=Booking.Status.CANCELLED,
        cancelled_at=now - timedelta(days=1),
        sequence=1,
    )
    # Across both DST changes in Paris: the night the clocks move, and the morning after.
    s.dst = []
    for month in (3, 10):
        sunday = next_dst_sunday(month)
        saturday = sunday - timedelta(days=1)
        s.dst.append(booking(paris(saturday, 20), paris(sunday, 8), title="Nuit"))
        s.dst.append(booking(paris(sunday, 9), paris(sunday, 11, 30)))
    s.past = booking(
        now - timedelta(days=10, hours=2),
        now - timedelta(days=10),
        status=Booking.Status.COMPLETED,
    )
    s.too_old = booking(now - timedelta(days=40, hours=2), now - timedelta(days=40))
    s.too_far = booking(now + timedelta(days=400), now + timedelta(days=400, hours=2))
    s.rejected = booking(
        day.replace(hour=16) + timedelta(days=2),
        day.replace(hour=17) + timedelta(days=2),
        status=Booking.Status.REJECTED,
        decided_at=now - timedelta(days=2),
        sequence=1,
    )
    s.long_cancelled = booking(
        day.replace(hour=8) + timedelta(days=3),
        day.replace(hour=9) + timedelta(days=3),
        status=Booking.Status.CANCELLED,
        cancelled_at=now - timedelta(days=31),
        sequence=1,
    )
    # Calendars count whole seconds, as bookings do.
    for side in (a, b):
        side.maintenance.start = side.maintenance.start.replace(microsecond=0)
        side.maintenance.end = side.maintenance.end.replace(microsecond=0)
        side.maintenance.save()
    s.other_side = booking(
        day.replace(hour=9), day.replace(hour=10), org=b.org, by=b.org_member, machine=b.machine
    )
    return s


def mine_all(s) -> list[Booking]:
    """SME A's bookings that any feed of its own shows."""
    return [s.mine, s.colleague, *s.dst, s.past, s.rejected]


def get_feed(client, secret: str, **headers):
    return client.get(feed_url(secret), **headers)


# --- Every kind, three parsers, the database ------------------------------------------------


KINDS = [
    # (owner, kind, target): what the feed must hold, as attribute names of the scene
    ("user", lambda s: (s.a.org_member, "user", None), lambda s: [
        s.mine, *s.dst, s.past, s.rejected]),
    ("organization", lambda s: (s.a.org_admin, "organization", s.a.org), mine_all),
    ("machine, staff", lambda s: (s.a.operator, "machine", s.a.machine), lambda s: [
        *mine_all(s), s.neighbours, s.neighbours_cancelled, s.a.maintenance, s.a.closure]),
    ("machine, SME", lambda s: (s.a.org_member, "machine", s.a.machine), lambda s: [
        *mine_all(s), s.neighbours, s.a.maintenance, s.a.closure]),
    ("platform, staff", lambda s: (s.a.manager, "platform", s.a.platform), lambda s: [
        *mine_all(s), s.neighbours, s.neighbours_cancelled, s.a.maintenance, s.a.closure]),
    ("platform, SME", lambda s: (s.a.org_accountant, "platform", s.a.platform), lambda s: [
        *mine_all(s), s.neighbours, s.a.maintenance, s.a.closure]),
]  # fmt: skip


@pytest.mark.parametrize(("label", "who", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_three_parsers_read_each_kind_of_feed_exactly_as_the_database_says(
    client, scene, label, who, expected
):
    owner, kind, target = who(scene)
    _token, secret = new_feed(owner, kind, target)

    response = get_feed(client, secret)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert_wire_format(response.content)
    assert read_three_ways(response.content) == spans(*expected(scene))


def test_bookings_across_dst_changes_keep_their_instants(client, scene):
    """Paris moves its clocks during these bookings: UTC in the feed keeps the
    elapsed time (11 h in spring, 13 h in autumn), whatever zone the reader is in."""
    _token, secret = new_feed(scene.a.org_member)

    events = read_three_ways(get_feed(client, secret).content)

    spring, autumn = scene.dst[0], scene.dst[2]
    for booking, hours in ((spring, 11), (autumn, 13)):
        start, end = events[booking_uid(booking.pk)]
        assert end - start == timedelta(hours=hours)
        assert start == booking.start and start.tzinfo == UTC


def test_the_calendar_says_how_to_keep_it_in_sync(client, scene):
    token, secret = new_feed(scene.a.org_member, name="Atelier; planning, été")
    other_token, other_secret = new_feed(scene.a.org_member, name="Other")

    body = get_feed(client, secret).content
    text = body.decode()
    seen = read_with_icaljs_raw(body)

    assert "METHOD:PUBLISH\r\n" in text
    assert f"UID:feed-{token.pk}@fabpool\r\n" in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in text
    assert "X-PUBLISHED-TTL:PT1H\r\n" in text
    assert (seen["method"], seen["uid"]) == ("PUBLISH", f"feed-{token.pk}@fabpool")
    # The name is TEXT (RFC 7986; X- properties default to TEXT), escaped as such;
    # vobject reads it back (icalendar and ical.js keep these properties raw).
    assert "NAME:Atelier\\; planning\\, été\r\n" in text
    assert "X-WR-CALNAME:Atelier\\; planning\\, été\r\n" in text
    parsed = vobject.readOne(text, validate=True)
    assert parsed.contents["name"][0].value == "Atelier; planning, été"
    assert parsed.x_wr_calname.value == "Atelier; planning, été"
    assert (seen["refresh"], seen["ttl"]) == ("PT1H", "PT1H")
    # One calendar, one UID, whatever the request; another feed, another UID.
    assert f"UID:feed-{token.pk}@fabpool" in get_feed(client, secret).content.decode()
    assert f"UID:feed-{other_token.pk}@fabpool" in get_feed(client, other_secret).content.decode()


def test_each_event_carries_the_bookings_stamp_sequence_and_status(client, scene):
    _token, secret = new_feed(scene.a.org_admin, "organization", scene.a.org)

    events = {e["uid"]: e for e in read_with_icaljs_raw(get_feed(client, secret).content)["events"]}

    expected_status = {
        scene.mine: "CONFIRMED",
        scene.colleague: "TENTATIVE",
        scene.past: "CONFIRMED",
        scene.rejected: "CANCELLED",
    }
    for booking, status in expected_status.items():
        event = events[booking_uid(booking.pk)]
        stamp = booking.updated_at.replace(microsecond=0)
        assert event["status"] == status
        assert event["sequence"] == booking.sequence
        assert datetime.fromisoformat(event["dtstamp"].replace("Z", "+00:00")) == stamp


def test_text_survives_escaping_and_folding_in_every_parser(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    body = get_feed(client, secret).content
    note = LONG_NOTE.replace("\r\n", "\n")

    descriptions = [
        str(e["DESCRIPTION"])
        for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
        if str(e["UID"]) == booking_uid(scene.mine.pk)
    ]
    from_icaljs = [
        e["description"]
        for e in read_with_icaljs_raw(body)["events"]
        if e["uid"] == booking_uid(scene.mine.pk)
    ]
    assert note in descriptions[0]
    assert note in from_icaljs[0]
    assert_wire_format(body)
    assert max(len(line) for line in body.split(b"\r\n")) == 75  # it did fold


def test_a_cancelled_booking_turns_cancelled_with_a_higher_sequence(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    before = get_feed(client, secret)
    old = {e["uid"]: e for e in read_with_icaljs_raw(before.content)["events"]}

    cancel_booking(booking=scene.mine, by=scene.a.org_member)
    after = get_feed(client, secret)
    new = {e["uid"]: e for e in read_with_icaljs_raw(after.content)["events"]}

    uid = booking_uid(scene.mine.pk)
    assert (old[uid]["status"], new[uid]["status"]) == ("CONFIRMED", "CANCELLED")
    assert new[uid]["sequence"] > old[uid]["sequence"]
    assert after["ETag"] != before["ETag"]


def test_cancelled_bookings_leave_the_feed_30_days_after_cancellation(client, scene):
    _token, secret = new_feed(scene.a.org_admin, "organization", scene.a.org)
    cancel_booking(booking=scene.mine, by=scene.a.org_member)
    uid = booking_uid(scene.mine.pk)

    assert uid in read_with_icalendar(get_feed(client, secret).content)
    assert booking_uid(scene.long_cancelled.pk) not in read_with_icalendar(
        get_feed(client, secret).content
    )
    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1), tick=False):
        # The booking, one to two weeks ahead when cancelled, is now in the past
        # 30 days of the window: only the age of its cancellation takes it out.
        assert uid not in read_with_icalendar(get_feed(client, secret).content)


# --- Same data, same bytes; conditional requests -------------------------------------------------


def test_the_same_data_gives_the_same_bytes_and_etag(client, scene):
    _token, secret = new_feed(scene.a.manager, "platform", scene.a.platform)

    first, second = get_feed(client, secret), get_feed(client, secret)

    assert first.content == second.content
    assert first["ETag"] == second["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{64}"', first["ETag"])  # strong: no W/
    assert first["Last-Modified"] == second["Last-Modified"]


def test_if_none_match_answers_304_without_a_body(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    first = get_feed(client, secret)

    again = get_feed(client, secret, HTTP_IF_NONE_MATCH=first["ETag"])
    weak = get_feed(client, secret, HTTP_IF_NONE_MATCH=f'"nope", W/{first["ETag"]}')
    stale = get_feed(client, secret, HTTP_IF_NONE_MATCH='"something-else"')

    assert (again.status_code, again.content) == (304, b"")
    assert again["ETag"] == first["ETag"]
    assert again["Last-Modified"] == first["Last-Modified"]
    assert weak.status_code == 304
    assert (stale.status_code, stale.content) == (200, first.content)


def test_if_modified_since_answers_304_until_the_feed_changes(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    first = get_feed(client, secret)

    unchanged = get_feed(client, secret, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    cancel_booking(booking=scene.mine, by=scene.a.org_member)
    changed = get_feed(client, secret, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])

    assert unchanged.status_code == 304
    assert changed.status_code == 200


def test_a_change_gives_a_new_etag_and_a_later_last_modified(client, scene):
    """Even within one second (the resolution of HTTP dates), and even when the
    change is an event leaving the window, which leaves no newer stamp behind."""
    _token, secret = new_feed(scene.a.org_admin, "organization", scene.a.org)
    with time_machine.travel(timezone.now(), tick=False):
        first = get_feed(client, secret)
        cancel_booking(booking=scene.colleague, by=scene.a.org_admin)
        second = get_feed(client, secret)
    with time_machine.travel(timezone.now() + timedelta(days=21), tick=False):
        third = get_feed(client, secret)  # the past booking has left the window

    etags = [r["ETag"] for r in (first, second, third)]
    modified = [parse_http_date(r["Last-Modified"]) for r in (first, second, third)]
    assert len(set(etags)) == 3
    assert modified[0] < modified[1] < modified[2]
    assert booking_uid(scene.past.pk) not in read_with_icalendar(third.content)


@pytest.mark.parametrize(
    "change",
    ["booker's name", "organization's name", "machine's name", "platform's name", "token's name"],
)
def test_a_change_of_a_name_the_feed_shows_gives_a_new_etag(client, scene, change):
    """Names live in other rows than the bookings: the ETag covers them too."""
    token, secret = new_feed(scene.a.manager, "platform", scene.a.platform)
    before = get_feed(client, secret)
    renamed = {
        "booker's name": (scene.neighbour_person, "full_name"),
        "organization's name": (scene.neighbour, "legal_name"),
        "machine's name": (scene.a.machine, "name"),
        "platform's name": (scene.a.platform, "name"),
        "token's name": (token, "name"),
    }
    row, field = renamed[change]
    type(row).objects.filter(pk=row.pk).update(**{field: "Nouveau nom"})

    after = get_feed(client, secret)

    assert after["ETag"] != before["ETag"]
    assert "Nouveau nom" in after.content.replace(b"\r\n ", b"").decode()
    assert get_feed(client, secret, HTTP_IF_NONE_MATCH=before["ETag"]).status_code == 200


def test_joining_an_organization_turns_its_busy_blocks_into_bookings(client, scene):
    """What the reader may see is part of the ETag: a client's copy from before is stale."""
    _token, secret = new_feed(scene.a.org_member, "machine", scene.a.machine)
    before = get_feed(client, secret)
    factories.MembershipFactory(user=scene.a.org_member, organization=scene.neighbour)

    after = get_feed(client, secret, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert "Projet confidentiel Zeta" in after.content.replace(b"\r\n ", b"").decode()


def test_last_modified_is_never_before_the_newest_booking_stamp(client, scene):
    _token, secret = new_feed(scene.a.org_member)

    response = get_feed(client, secret)

    newest = max(b.updated_at for b in (scene.mine, *scene.dst, scene.past, scene.rejected))
    assert parse_http_date(response["Last-Modified"]) >= int(newest.timestamp())
    assert response["Last-Modified"] == http_date(parse_http_date(response["Last-Modified"]))


# --- Tenancy -------------------------------------------------------------------------------------

SECRETS = ("Voisinage", "Cécile", "cecile@voisinage", "confidentiel", "Zeta", "Omega", "Prototype")


@pytest.mark.parametrize("kind", ["machine", "platform"])
@pytest.mark.parametrize("role", ["org_member", "org_admin", "org_accountant"])
def test_an_sme_sees_other_smes_bookings_only_as_neutral_busy_blocks(client, scene, kind, role):
    target = scene.a.machine if kind == "machine" else scene.a.platform
    _token, secret = new_feed(getattr(scene.a, role), kind, target)

    body = get_feed(client, secret).content
    unfolded = body.replace(b"\r\n ", b"").decode()

    for secret_text in SECRETS:
        assert secret_text not in unfolded
    events = {e["uid"]: e for e in read_with_icaljs_raw(body)["events"]}
    busy = events[booking_uid(scene.neighbours.pk)]
    assert busy["description"] is None
    assert "Occupé" in busy["summary"]  # in the owner's language: French, the default
    # Their own organization's bookings in full.
    assert "Gabarit A" in events[booking_uid(scene.mine.pk)]["summary"]
    assert "SME a" in events[booking_uid(scene.mine.pk)]["description"]


@pytest.mark.parametrize("owner_language", ["fr", "en"])
def test_a_feed_says_the_language_it_is_written_in_whoever_fetches_it(
    client, scene, owner_language
):
    scene.a.org_member.language = owner_language
    scene.a.org_member.save()
    _token, secret = new_feed(scene.a.org_member, "machine", scene.a.machine)

    for asked in ("fr", "en"):
        response = get_feed(client, secret, HTTP_ACCEPT_LANGUAGE=asked)
        assert response["Content-Language"] == owner_language
        busy = "Occupé" if owner_language == "fr" else "Busy"
        assert busy in response.content.decode()


@pytest.mark.parametrize("kind", ["machine", "platform"])
def test_platform_staff_see_who_holds_every_booking(client, scene, kind):
    target = scene.a.machine if kind == "machine" else scene.a.platform
    _token, secret = new_feed(scene.a.operator, kind, target)

    events = {e["uid"]: e for e in read_with_icaljs_raw(get_feed(client, secret).content)["events"]}

    neighbours = events[booking_uid(scene.neighbours.pk)]
    assert "Voisinage Secret SARL" in neighbours["summary"]
    assert "Projet confidentiel Zeta" in neighbours["summary"]
    assert "Cécile Voisine" in neighbours["description"]
    assert "Prototype secret pour client Omega" in neighbours["description"]


def test_the_other_side_never_appears(client, scene):
    for owner, kind, target in (
        (scene.a.org_member, "user", None),
        (scene.a.org_admin, "organization", scene.a.org),
        (scene.a.manager, "platform", scene.a.platform),
    ):
        _token, secret = new_feed(owner, kind, target)
        assert booking_uid(scene.other_side.pk) not in read_with_icalendar(
            get_feed(client, secret).content
        )


def test_an_owner_who_left_the_organization_gets_404(client, scene):
    _token, secret = new_feed(scene.a.org_member, "organization", scene.a.org)
    _token, machine_secret = new_feed(scene.a.org_member, "machine", scene.a.machine)
    assert get_feed(client, secret).status_code == 200

    Membership.objects.filter(user=scene.a.org_member).delete()

    for lost in (secret, machine_secret):
        response = get_feed(client, lost)
        assert (response.status_code, response.content) == (404, b"No such calendar feed.\n")


def test_a_user_feed_drops_the_bookings_of_an_organization_left(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    Membership.objects.filter(user=scene.a.org_member).delete()

    response = get_feed(client, secret)

    assert response.status_code == 200
    assert read_with_icalendar(response.content) == {}


def test_staff_who_lose_their_role_lose_the_staff_view(client, scene):
    _token, secret = new_feed(scene.a.operator, "platform", scene.a.platform)
    PlatformStaff.objects.filter(user=scene.a.operator).delete()

    assert get_feed(client, secret).status_code == 404


def test_a_retired_machine_disappears_from_sme_feeds_but_not_from_staff_ones(client, scene):
    _t, sme = new_feed(scene.a.org_member, "machine", scene.a.machine)
    _t, staff = new_feed(scene.a.manager, "machine", scene.a.machine)
    scene.a.machine.is_active = False
    scene.a.machine.save()

    assert get_feed(client, sme).status_code == 404
    assert get_feed(client, staff).status_code == 200


# --- Unknown, malformed, revoked ----------------------------------------------------------------


def test_revoked_unknown_and_malformed_tokens_all_answer_the_same_404(client, scene):
    token, revoked = new_feed(scene.a.org_member)
    revoke_feed_token(token=token, by=scene.a.org_member)
    inactive_owner = factories.UserFactory(is_active=False)
    _t, of_inactive = new_feed(inactive_owner)

    answers = {
        get_feed(client, secret).content
        for secret in (revoked, "A" * 22, "short", "x" * 200, "bad%20chars!!!!!!!!!!!", of_inactive)
    }
    for secret in (revoked, "A" * 22, "short", of_inactive):
        assert get_feed(client, secret).status_code == 404
    assert answers == {b"No such calendar feed.\n"}


def test_the_feed_needs_no_session_and_sets_no_cookie(client, scene):
    _token, secret = new_feed(scene.a.org_member)

    response = get_feed(client, secret)

    assert response.status_code == 200
    assert not response.cookies
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_feed_takes_only_safe_methods(client, scene):
    _token, secret = new_feed(scene.a.org_member)

    assert client.head(feed_url(secret)).status_code == 200
    assert client.post(feed_url(secret)).status_code == 405


# --- The window ---------------------------------------------------------------------------------


def test_start_and_end_narrow_the_window_but_never_widen_it(client, scene):
    _token, secret = new_feed(scene.a.org_member)
    url = feed_url(secret)
    after_mine = (scene.mine.end + timedelta(minutes=1)).isoformat()

    narrowed = read_with_icalendar(client.get(url, {"start": after_mine}).content)
    widened = read_with_icalendar(
        client.get(url, {"start": "2000-01-01", "end": "2100-01-01T00:00:00Z"}).content
    )
    before_mine = read_with_icalendar(
        client.get(url, {"end": scene.mine.start.isoformat()}).content
    )

    assert booking_uid(scene.mine.pk) not in narrowed
    assert booking_uid(scene.dst[2].pk) in narrowed
    assert widened == read_with_icalendar(client.get(url).content)
    assert booking_uid(scene.too_old.pk) not in widened
    assert booking_uid(scene.too_far.pk) not in widened
    assert set(before_mine) == {booking_uid(scene.past.pk)}


@pytest.mark.parametrize("value", ["tomorrow", "2027-13-01", "2027-03-01T08:00:00", "1-1-1"])
def test_a_malformed_window_bound_is_a_400(client, scene, value):
    _token, secret = new_feed(scene.a.org_member)

    response = client.get(feed_url(secret), {"start": value})

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"


# --- Cost ---------------------------------------------------------------------------------------


def _add_bookings(s, count: int, offset: int) -> None:
    """`count` bookings of SME A and of the neighbour on platform A's printer,
    one an hour from 60 days ahead."""
    first = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=60)
    for i in range(offset, offset + count):
        org, by = (s.a.org, s.a.org_member) if i % 2 else (s.neighbour, s.neighbour_person)
        start = first + timedelta(hours=2 * i)
        make_booking(s.a.machine, org, by, start, start + timedelta(hours=1), title=f"n{i}")


KIND_TARGETS = {
    "user": lambda s: (s.a.org_member, None),
    "organization": lambda s: (s.a.org_member, s.a.org),
    "machine": lambda s: (s.a.org_member, s.a.machine),
    "platform": lambda s: (s.a.manager, s.a.platform),
}
# The token with its owner's roles; the ETag's hash (PostgreSQL) and the events;
# maintenance windows and closures (machine, platform); the token's stamps.
MAX_QUERIES = {"user": 4, "organization": 4, "machine": 6, "platform": 6}


@pytest.mark.parametrize("kind", list(KIND_TARGETS))
def test_a_feed_costs_the_same_queries_for_3_and_60_events(client, scene, kind):
    owner, target = KIND_TARGETS[kind](scene)
    _token, secret = new_feed(owner, kind, target)
    get_feed(client, secret)
    counts, sizes = [], []
    for offset, count in ((0, 3), (3, 57)):
        _add_bookings(scene, count, offset)  # a change: the token's stamps are written too
        with CaptureQueriesContext(connection) as queries:
            response = get_feed(client, secret)
        counts.append(len(queries))
        sizes.append(len(read_with_icalendar(response.content)))

    assert sizes[1] > sizes[0] + 20
    assert counts[0] == counts[1] <= MAX_QUERIES[kind]


def test_a_304_costs_no_write(client, scene, django_assert_max_num_queries):
    _token, secret = new_feed(scene.a.manager, "platform", scene.a.platform)
    etag = get_feed(client, secret)["ETag"]

    # PostgreSQL: the token with its owner's roles, and the ETag's hash (events,
    # maintenance windows, closures). Elsewhere the hash is made from those rows.
    # No write: the content has not changed, and the last use is recent.
    with django_assert_max_num_queries(2 if connection.vendor == "postgresql" else 4):
        assert get_feed(client, secret, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_last_use_is_stamped_at_most_once_a_minute(client, scene):
    token, secret = new_feed(scene.a.org_member)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        get_feed(client, secret)
        first = FeedToken.objects.get(pk=token.pk).last_used_at
        clock.shift(timedelta(seconds=30))
        get_feed(client, secret)
        assert FeedToken.objects.get(pk=token.pk).last_used_at == first
        clock.shift(timedelta(seconds=31))
        get_feed(client, secret)
        assert FeedToken.objects.get(pk=token.pk).last_used_at > first


def test_only_the_secrets_hash_is_stored(scene):
    token, secret = new_feed(scene.a.org_member)

    row = FeedToken.objects.filter(pk=token.pk).values().get()

    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())
    assert len(secret) == 22  # 128 random bits, URL-safe

from booking.models import Booking
from tests.booking.conftest import at, next_weekday

BOOKINGS = "/api/v1/bookings/"


def book(client, machine, start, end, **extra):
    return client.post(
        BOOKINGS,
        {"machine": machine.pk, "start": start.isoformat(), "end": end.isoformat(), **extra},
    )


def test_a_member_books_a_free_slot(api, lab):
    tuesday = next_weekday(1)

    response = book(api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 9), at(tuesday, 11))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["organization"] == lab.a.org.pk
    assert Booking.objects.get(pk=body["id"]).start == at(tuesday, 9)


def test_an_overlapping_booking_answers_409_with_the_clash_but_not_its_owner(api, lab):
    tuesday = next_weekday(1)
    assert (
        book(
            api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 9), at(tuesday, 11)
        ).status_code
        == 201
    )

    response = book(api.as_user(lab.a.org_admin), lab.a.machine, at(tuesday, 10), at(tuesday, 12))

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "booking_conflict"
    assert error["details"]["conflicts"] == [
        {
            "start": at(tuesday, 9).astimezone().isoformat().replace("+00:00", "Z"),
            "end": at(tuesday, 11).astimezone().isoformat().replace("+00:00", "Z"),
            "kind": "booking",
        }
    ]
    assert Booking.objects.count() == 1


def test_every_broken_rule_is_reported_at_once(api, lab):
    tuesday = next_weekday(1)

    response = book(
        api.as_user(lab.a.org_member), lab.a.machine, at(tuesday, 7, 5), at(tuesday, 7, 20)
    )

    assert response.status_code == 400, response.content
    codes = [p["code"] for p in response.json()["error"]["details"]["problems"]]
    assert codes == ["too_short", "misaligned", "outside_opening_hours"]
    assert not Booking.objects.exists()


def test_cancel_frees_the_slot(api, lab):
    tuesday = next_weekday(1)
    client = api.as_user(lab.a.org_member)
    booking_id = book(client, lab.a.machine, at(tuesday, 9), at(tuesday, 11)).json()["id"]

    response = client.post(f"{BOOKINGS}{booking_id}/cancel/", {})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["sequence"] == 1
    assert book(client, lab.a.machine, at(tuesday, 9), at(tuesday, 11)).status_code == 201

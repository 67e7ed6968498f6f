"""A retried POST with the same Idempotency-Key never books twice."""

import threading

import pytest
from django.db import connection

from booking.models import Booking
from core.models import IdempotentRequest
from tests.booking.conftest import at, next_weekday

BOOKINGS = "/api/v1/bookings/"


def booking_body(lab, hour=9):
    tuesday = next_weekday(1)
    return {
        "machine": lab.a.machine.pk,
        "start": at(tuesday, hour).isoformat(),
        "end": at(tuesday, hour + 1).isoformat(),
    }


def test_a_retry_with_the_same_key_gets_the_same_answer_and_books_once(api, lab):
    client = api.as_user(lab.a.org_member)

    first = client.post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="k-1")
    retry = client.post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


def test_the_same_key_with_another_body_answers_422_and_books_nothing_more(api, lab):
    client = api.as_user(lab.a.org_member)
    client.post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="k-2")

    response = client.post(BOOKINGS, booking_body(lab, hour=14), HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Booking.objects.count() == 1


def test_without_a_key_a_retry_is_a_new_request_and_meets_the_first(api, lab):
    client = api.as_user(lab.a.org_member)
    client.post(BOOKINGS, booking_body(lab))

    assert client.post(BOOKINGS, booking_body(lab)).status_code == 409


def test_a_refused_request_stores_nothing_and_may_be_retried(api, lab):
    client = api.as_user(lab.a.org_member)
    body = {**booking_body(lab), "end": booking_body(lab)["start"]}

    assert client.post(BOOKINGS, body, HTTP_IDEMPOTENCY_KEY="k-3").status_code == 400
    assert not IdempotentRequest.objects.exists()
    assert client.post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201


def test_keys_belong_to_their_user(api, lab):
    api.as_user(lab.a.org_member).post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="k-4")

    other = api.as_user(lab.a.org_admin).post(
        BOOKINGS, booking_body(lab, hour=14), HTTP_IDEMPOTENCY_KEY="k-4"
    )

    assert other.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "clé"])
def test_a_malformed_key_is_refused(api, lab, key):
    response = api.as_user(lab.a.org_member).post(
        BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["details"]["fields"]
    assert not Booking.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_twin_requests_at_the_same_moment_book_once(api, lab):
    """Two connections send the same keyed request at once: one books, the
    other waits for it and replays its answer."""
    from rest_framework.test import APIClient

    client = api.as_user(lab.a.org_member)
    auth = client._credentials["HTTP_AUTHORIZATION"]
    barrier = threading.Barrier(2)
    answers = []

    def send():
        twin = APIClient()
        twin.credentials(HTTP_AUTHORIZATION=auth)
        barrier.wait()
        try:
            answers.append(twin.post(BOOKINGS, booking_body(lab), HTTP_IDEMPOTENCY_KEY="twin"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(a.status_code for a in answers) == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert Booking.objects.count() == 1

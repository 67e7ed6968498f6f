"""bench/booking.py measures the create's SQL statements alone (/bench/statements/,
in bench/urls.py) beside POST /api/v1/bookings/. That comparison only means
something while the two run the same statements: this keeps them in step."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django_tasks_db.models import DBTaskResult

from booking.models import Booking
from core.models import AuditEvent
from tests.booking.conftest import at, next_weekday

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the benchmark runs on PostgreSQL only"
)


def statements(client, path: str, body: dict) -> list[str]:
    """The kinds (SELECT, INSERT, SAVEPOINT…) of the statements a POST runs after
    authentication (the token's, which also stamps its use once a minute, are the
    baseline's too), in order."""
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, body)
    assert response.status_code == 201, response.content
    return [q["sql"].split()[0] for q in captured if "core_apitoken" not in q["sql"]]


# As in production and in the benchmark: booking emails are queued in the database.
@override_settings(
    ROOT_URLCONF="bench.urls",
    TASKS={"default": {"BACKEND": settings.TASK_BACKENDS["database"]}},
)
def test_the_benchmarks_create_statements_are_those_of_a_create(api, lab):
    day = next_weekday(1)
    client = api.as_user(lab.a.org_member)

    def booking(hour: int) -> dict:
        return {
            "machine": lab.a.machine.pk,
            "start": at(day, hour).isoformat(),
            "end": at(day, hour + 1).isoformat(),
        }

    # A first create fills the process's caches (content types), as a server's first
    # request does.
    statements(client, "/api/v1/bookings/", booking(13))

    real = statements(client, "/api/v1/bookings/", booking(9))
    written_out = statements(client, "/bench/statements/", booking(11))

    assert written_out == real
    # Both wrote a booking, its audit line and its email task.
    assert Booking.objects.count() == 3
    assert AuditEvent.objects.filter(action="booking.create").count() == 3
    assert DBTaskResult.objects.count() == 3

"""The project's URLs plus two endpoints measured beside POST /api/v1/bookings/ by
bench/booking.py, both token-authenticated by the project's default classes:

- /bench/insert/: the baseline, one INSERT into bench_slot, a table with the same
  kind of btree_gist exclusion constraint as booking_booking;
- /bench/statements/: the statements of one booking create, run as written-out SQL
  with no ORM and no rule evaluated in Python. It shows how much of the create's
  time its SQL takes, whatever the Python around it does."""

import uuid
from datetime import UTC, datetime

from django.db import connection, transaction
from django.urls import path
from psycopg.types.json import Jsonb
from rest_framework.response import Response
from rest_framework.views import APIView

from booking.rules import _BOOKED_MICROSECONDS, _QUOTAS_SQL, _STANDING_SQL
from booking.selectors import _HELD_MACHINE, _HELD_SQL
from booking.services import _lock_machine, _lock_organization
from core.models import Organization
from core.urls import urlpatterns as core_urlpatterns
from equipment.models import Machine


class BaselineInsert(APIView):
    """Token-authenticated (the project's default classes), one row inserted."""

    def post(self, request):
        data = request.data
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO bench_slot (machine_id, start, "end")'
                " VALUES (%s, %s, %s) RETURNING id",
                [int(data["machine"]), data["start"], data["end"]],
            )
            (pk,) = cursor.fetchone()
        return Response({"id": pk}, status=201)


# The statements of a create, in its order (CaptureQueriesContext on one POST
# /api/v1/bookings/): the machine the user may see, with its platform; the user's
# organizations; in the transaction, who books (rules._STANDING_SQL), the
# organization's lock (services._lock_organization), the opening hours, the quotas
# (rules._QUOTAS_SQL), the machine's lock (services._lock_machine), its clashes
# (selectors._HELD_SQL), the booking in a savepoint, its audit line and its email
# task. tests/booking/test_bench_statements.py keeps them in step with a create.
_MACHINE_SQL = """
SELECT m.platform_id, m.machine_type_id, m.*, p.*
FROM equipment_machine m JOIN equipment_platform p ON p.id = m.platform_id
WHERE m.id = %(machine)s
  AND (m.platform_id IN (SELECT platform_id FROM equipment_platformstaff WHERE user_id = %(user)s)
       OR (m.is_active AND m.platform_id IN (
           SELECT pm.platform_id FROM equipment_platformmembership pm
           JOIN core_membership ms ON ms.organization_id = pm.organization_id
           WHERE ms.user_id = %(user)s)))
"""
_ORGANIZATIONS_SQL = """
SELECT o.* FROM core_organization o JOIN core_membership ms ON ms.organization_id = o.id
WHERE ms.user_id = %s ORDER BY o.legal_name, o.id LIMIT 2
"""
_HOURS_SQL = """
SELECT * FROM equipment_openinghours WHERE platform_id = %s ORDER BY weekday, opens_at, id
"""
_BOOKING_SQL = """
INSERT INTO booking_booking (machine_id, organization_id, booked_by_id, start, "end",
    blocked_until, status, title, note, sequence, override_reason, late_cancellation,
    decision_note, created_at, updated_at)
VALUES (%(machine)s, %(org)s, %(user)s, %(start)s, %(end)s, %(end)s, 'confirmed', '', '', 0, '',
    false, '', %(now)s, %(now)s)
RETURNING id
"""
_AUDIT_SQL = """
INSERT INTO core_auditevent (created_at, actor_id, actor_email, action, target_type_id,
    target_id, target_repr, changes)
SELECT %(now)s, %(user)s, '', 'booking.create', id, %(booking)s, '', %(changes)s
FROM django_content_type WHERE app_label = 'booking' AND model = 'booking'
"""
# On a queue of its own, which the email worker run after the measure leaves alone.
_TASK_SQL = """
INSERT INTO django_tasks_database_dbtaskresult (id, status, enqueued_at, args_kwargs,
    priority, task_path, worker_ids, queue_name, backend_name, run_after,
    exception_class_path, traceback)
VALUES (%(id)s, 'READY', %(now)s, %(args)s, 0, 'booking.notifications.deliver_notices',
    '[]', 'bench-statements', 'default', '9999-01-01', '', '')
"""


class CreateStatements(APIView):
    """A booking create's statements (above), with the parameters a create gives them."""

    def post(self, request):
        data = request.data
        now = datetime.now(UTC)
        start, end = datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"])
        day = start.date().isoformat()
        ids = {"machine": int(data["machine"]), "user": request.user.pk}
        with connection.cursor() as cursor:
            cursor.execute(_MACHINE_SQL, ids)
            platform, machine_type, *_machine_and_platform = cursor.fetchone()
            cursor.execute(_ORGANIZATIONS_SQL, [ids["user"]])
            ids |= {"org": cursor.fetchall()[0][0], "platform": platform}
            with transaction.atomic():
                cursor.execute(
                    _STANDING_SQL,
                    {
                        **ids,
                        "machine_type": machine_type,
                        **{"first_day": day, "last_day": day, "admin": "admin"},
                        **{"member": "member", "manager": "manager", "operator": "operator"},
                    },
                )
                cursor.fetchone()
                _lock_organization(Organization(pk=ids["org"]))
                cursor.execute(_HOURS_SQL, [ids["platform"]])
                cursor.fetchall()
                cursor.execute(
                    _QUOTAS_SQL.format(booked=_BOOKED_MICROSECONDS["postgresql"]),
                    {
                        **ids,
                        "machine_type": machine_type,
                        **{"cancelled": "cancelled", "rejected": "rejected", "week": "week"},
                        **{"week_first": start, "week_after": end, "ignoring": 0},
                        **{"month_first": start, "month_after": end},
                    },
                )
                cursor.fetchall()
                _lock_machine(Machine(pk=ids["machine"]))
                cursor.execute(
                    _HELD_SQL.format(machines=_HELD_MACHINE),
                    {
                        "machines": [ids["machine"]],
                        "active": ["pending", "confirmed"],
                        **{"ignoring": None, "start": start, "end": end},
                    },
                )
                if cursor.fetchall():
                    return Response({"error": "taken"}, status=409)
                with transaction.atomic():
                    cursor.execute(_BOOKING_SQL, {**ids, "start": start, "end": end, "now": now})
                    (booking,) = cursor.fetchone()
                changes = Jsonb({"status": "confirmed", "override_reason": ""})
                audit = {**ids, "now": now, "booking": booking, "changes": changes}
                cursor.execute(_AUDIT_SQL, audit)
                letters = [{"template": "booking_confirmed", "booking": booking, "to": []}]
                args = Jsonb({"args": [letters], "kwargs": {}})
                cursor.execute(_TASK_SQL, {"id": uuid.uuid4(), "now": now, "args": args})
        return Response({"id": booking, **data, "status": "confirmed"}, status=201)


urlpatterns = [
    path("bench/insert/", BaselineInsert.as_view()),
    path("bench/statements/", CreateStatements.as_view()),
    *core_urlpatterns,
]

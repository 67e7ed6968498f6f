"""Races between real database connections (threads), on SQLite and PostgreSQL."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from core.models import Membership
from core.services import change_member_role
from tests import factories


def in_thread(target):
    """Run `target` in a thread with its own database connection; returns the thread
    and a dict that receives its result or error."""
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin():
    organization = factories.OrganizationFactory()
    first, second = (
        factories.MembershipFactory(organization=organization, role=Membership.Role.ADMIN)
        for _ in range(2)
    )
    first_has_written = threading.Event()
    first_may_commit = threading.Event()

    def first_demotes_itself():
        with transaction.atomic():
            change_member_role(membership=first, by=first.user, role=Membership.Role.MEMBER)
            first_has_written.set()
            # Hold the transaction open while the second admin tries the same.
            first_may_commit.wait(timeout=2)

    def second_demotes_itself():
        first_has_written.wait(timeout=10)
        return change_member_role(membership=second, by=second.user, role=Membership.Role.MEMBER)

    first_thread, first_outcome = in_thread(first_demotes_itself)
    second_thread, second_outcome = in_thread(second_demotes_itself)
    # The second must wait for the first's lock (it cannot finish meanwhile).
    second_thread.join(timeout=1)
    assert second_thread.is_alive()
    first_may_commit.set()
    first_thread.join(timeout=20)
    second_thread.join(timeout=20)

    assert "error" not in first_outcome
    assert isinstance(second_outcome.get("error"), ValidationError)
    assert "at least one administrator" in str(second_outcome["error"])
    admins = Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN)
    assert list(admins) == [second]

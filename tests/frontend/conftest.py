import pytest

from booking import services
from tests import factories
from tests.booking.conftest import PARIS, at, lab, next_weekday


@pytest.fixture
def member_client(client, lab):
    client.force_login(lab.a.org_member)
    return client


@pytest.fixture
def book(lab):
    """Book world.a's printer for its SME: book(day, hour, hours=1, **fields)."""

    def make(day, hour, hours=1, machine=None, by=None, **fields):
        start = at(day, hour)
        return services.create_booking(
            machine=machine or lab.a.machine,
            organization=lab.a.org,
            by=by or lab.a.org_member,
            start=start,
            end=start.replace(hour=hour + hours),
            **fields,
        )

    return make


@pytest.fixture
def second_printer(lab):
    """Another machine of the printer's type on world.a's platform (suggestions)."""
    return factories.MachineFactory(
        platform=lab.a.platform, machine_type=lab.a.machine.machine_type, name="Printer a2"
    )


__all__ = ["PARIS", "lab", "next_weekday"]  # lab: a fixture, shared with tests/booking

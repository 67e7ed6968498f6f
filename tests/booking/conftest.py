from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from equipment.models import OpeningHours
from tests import factories

PARIS = ZoneInfo("Europe/Paris")


def next_weekday(weekday: int, weeks_ahead: int = 1) -> datetime:
    """Midnight (Paris) of the given weekday, `weeks_ahead` weeks from now."""
    today = datetime.now(PARIS).date()
    day = today + timedelta(days=(weekday - today.weekday()) % 7 + 7 * weeks_ahead)
    return datetime.combine(day, time(0), tzinfo=PARIS)


@pytest.fixture
def lab(world):
    """world.a's platform open every day 08:00–18:00 (Paris), and its printer:
    30 min to 8 h, 15-minute steps, 1 h notice, 90 days ahead, no buffer."""
    platform = world.a.platform
    OpeningHours.objects.filter(platform=platform).delete()
    for weekday in range(7):
        factories.OpeningHoursFactory(
            platform=platform, weekday=weekday, opens_at=time(8), closes_at=time(18)
        )
    world.a.platform.closures.all().delete()
    world.a.machine.maintenance_windows.all().delete()
    return world


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)

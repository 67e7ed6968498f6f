"""Writes on a person's email preferences (their own only)."""

from django.db import transaction

from booking.models import EmailPreferences
from core.models import User
from core.writes import save_changes


def email_preferences_of(user: User) -> EmailPreferences:
    """The stored preferences, or the defaults (every email on) without writing a row."""
    return EmailPreferences.objects.filter(user=user).first() or EmailPreferences(user=user)


@transaction.atomic
def update_email_preferences(*, user: User, data: dict[str, bool]) -> EmailPreferences:
    """Turn kinds of email (EmailPreferences.KINDS) on or off for `user`; audited."""
    # Locked whether found or just created (a concurrent first save loses the race
    # to the unique user and get_or_create then reads, and locks, the winner's row).
    preferences, _created = EmailPreferences.objects.select_for_update().get_or_create(user=user)
    return save_changes(preferences, by=user, data=data)

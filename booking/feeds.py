"""Calendar subscription feeds: their tokens (services) and what a feed shows.

A feed token belongs to one user and names what the feed is about: that user's
own bookings (`user`), an organization's, a machine's or a platform's. Its URL,
/feeds/<secret>.ics, carries a random 128-bit secret of which only the SHA-256 is
stored; the token is the only credential a calendar client sends, so who may
see what is decided again from the owner's roles at every read:

- user: the bookings the owner made, in organizations they still belong to or
  on platforms where they still work;
- organization: its bookings, while the owner belongs to it;
- machine, platform: the platform's staff see every booking with its
  organization and booker; an SME's people see their organizations' bookings in
  full, every other booking as a neutral busy block (no organization, person,
  title or note), and maintenance windows and closures.
An owner who lost the role the feed needs gets a 404, as for an unknown token.

Same data, same bytes: the rows a feed is made of are loaded with a fixed number
of queries and reduced to what the reader may see; the ETag is a hash of those
values (so a 304 costs the queries but no rendering), and the body is rendered
from them alone, with fixed UIDs and the bookings' own stamps (never "now")."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from booking import ical
from booking.calendar import ICAL_STATUS, PRODID, UID_DOMAIN, booking_uid
from booking.models import Booking, FeedToken
from core.audit import record
from core.errors import Forbidden, NotVisible
from core.models import Membership, Organization, User, hash_secret
from core.writes import save_changes
from equipment.models import (
    Closure,
    Machine,
    MaintenanceWindow,
    Platform,
    PlatformMembership,
    PlatformStaff,
)

# The window a feed covers, from now; a narrower ?start=/?end= is clipped to it.
PAST = timedelta(days=30)
AHEAD = timedelta(days=365)
# Cancelled and rejected bookings stay this long after the decision, as CANCELLED,
# so that calendars which saw them remove them.
CANCELLED_KEPT = timedelta(days=30)
# How often clients should poll (REFRESH-INTERVAL and X-PUBLISHED-TTL).
REFRESH = timedelta(hours=1)
# How stale last_used_at may get: one write a minute per feed, not one a poll.
USE_RESOLUTION = timedelta(minutes=1)
SECRET_BYTES = 16  # 128 bits
# Part of every ETag: a change of what the feed says about the same rows (its
# layout, its wording) must change every ETag too.
FORMAT_VERSION = "1"

GONE_STATUSES = (Booking.Status.CANCELLED, Booking.Status.REJECTED)
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")


# --- Services ---------------------------------------------------------------------------------


def _visible_target(by: User, kind: str, target_id: int | None):
    """The target of a new feed of `kind`, if `by` may see it; 404 otherwise."""
    querysets = {
        FeedToken.Kind.ORGANIZATION: Organization.objects.visible_to(by),
        FeedToken.Kind.MACHINE: Machine.objects.visible_to(by),
        FeedToken.Kind.PLATFORM: Platform.objects.visible_to(by),
    }
    found = querysets[kind].filter(pk=target_id).first() if target_id is not None else None
    if found is None:
        raise NotVisible(_("No such organization, machine or platform."))
    return found


@transaction.atomic
def create_feed_token(
    *, by: User, kind: str, name: str, target_id: int | None = None, with_token: bool = False
) -> tuple[FeedToken, str]:
    """A new feed of `kind` ("user", or about the organization, machine or platform
    `target_id`, which `by` must be able to see). Returns the row and its secret,
    which is never stored nor shown again. `with_token`: the caller authenticated
    with an API token, which may not mint lasting credentials (a leaked one could
    otherwise leave feeds behind that outlive its revocation)."""
    if with_token:
        raise Forbidden(_("Create calendar feeds from a logged-in session, not with a token."))
    token = FeedToken(owner=by, kind=kind, name=name)
    field = FeedToken.TARGETS[FeedToken.Kind(kind)]
    if field:
        setattr(token, field, _visible_target(by, kind, target_id))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    token.hint = secret[:4]
    token.token_hash = hash_secret(secret)
    token.full_clean()
    token.save()
    record(actor=by, action="feedtoken.create", target=token, changes={"kind": kind})
    return token, secret


def _require_owner(token: FeedToken, by: User) -> None:
    if token.owner_id != by.pk:
        raise NotVisible(_("No such calendar feed."))


@transaction.atomic
def rename_feed_token(*, token: FeedToken, by: User, name: str) -> FeedToken:
    _require_owner(token, by)
    return save_changes(token, by=by, data={"name": name})


@transaction.atomic
def revoke_feed_token(*, token: FeedToken, by: User) -> FeedToken:
    """The feed answers 404 from now on; the row stays, with its revocation time."""
    _require_owner(token, by)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor=by, action="feedtoken.revoke", target=token)
    return token


def feed_links(secret: str) -> dict[str, str]:
    """The feed's address in the three forms calendar apps take."""
    https = f"{settings.FABPOOL_BASE_URL}{reverse('calendar-feed', args=[secret])}"
    webcal = "webcal://" + https.split("://", 1)[1]
    google = "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe="")
    return {"https": https, "webcal": webcal, "google": google}


# --- Reading a feed ------------------------------------------------------------------------------

FULL, BUSY = "full", "busy"  # how a booking shows: everything, or a neutral block


def active_token(secret: str) -> FeedToken | None:
    """The live token of `secret`, with what its owner may still see (one query);
    None for a malformed, unknown or revoked one, or an inactive owner."""
    if not SECRET_SHAPE.fullmatch(secret):
        return None
    owner = OuterRef("owner_id")
    token = (
        FeedToken.objects.active()
        .filter(token_hash=hash_secret(secret), owner__is_active=True)
        .select_related("owner", "organization", "machine__platform", "platform")
        .annotate(target_platform_id=Coalesce(F("platform_id"), F("machine__platform_id")))
        .annotate(
            owner_is_member=Exists(
                Membership.objects.filter(
                    user_id=owner, organization_id=OuterRef("organization_id")
                )
            ),
            owner_is_staff=Exists(
                PlatformStaff.objects.filter(
                    user_id=owner, platform_id=OuterRef("target_platform_id")
                )
            ),
            owner_books_there=Exists(
                PlatformMembership.objects.filter(
                    platform_id=OuterRef("target_platform_id"),
                    organization__memberships__user_id=owner,
                )
            ),
        )
        .first()
    )
    return token


def _access(token: FeedToken) -> str | None:
    """FULL (everything), BUSY (the SME view of a machine or platform), or None
    when the owner may no longer see the feed's target."""
    superuser = token.owner.is_superuser
    if token.kind == FeedToken.Kind.USER:
        return FULL
    if token.kind == FeedToken.Kind.ORGANIZATION:
        return FULL if superuser or token.owner_is_member else None
    if superuser or token.owner_is_staff:
        return FULL
    if token.owner_books_there and (
        token.kind == FeedToken.Kind.PLATFORM or token.machine.is_active
    ):
        return BUSY
    return None


@dataclass
class Feed:
    token: FeedToken
    etag: str  # quoted, strong
    last_modified: datetime
    events: list[tuple]  # what may be shown, and nothing else (see _booking_events)
    extras: list[tuple]  # maintenance windows and closures

    def render(self) -> bytes:
        with translation.override(self.token.owner.language):
            return _render(self)


def window(now: datetime, start: datetime | None = None, end: datetime | None = None):
    """[lo, hi): the feed's bounds, narrowed by `start`/`end` but never widened."""
    lo, hi = now - PAST, now + AHEAD
    if start is not None:
        lo = min(max(lo, start), hi)
    if end is not None:
        hi = max(min(hi, end), lo)
    return lo, hi


def load_feed(
    token: FeedToken, *, start: datetime | None = None, end: datetime | None = None
) -> Feed | None:
    """What `token`'s feed shows now, or None when its owner may no longer see it.
    A fixed number of queries whatever the number of events: the bookings, plus
    maintenance windows and closures for a machine or platform; and at most one
    write (the token's last use, and when its content last changed)."""
    access = _access(token)
    if access is None:
        return None
    now = timezone.now()
    lo, hi = window(now, start, end)
    events = _booking_events(token, access, lo, hi, now)
    extras = _extras(token, access, lo, hi) if token.kind in ("machine", "platform") else []

    digest = hashlib.sha256(
        repr(
            (FORMAT_VERSION, token.pk, token.kind, token.name, token.owner.language, events, extras)
        ).encode()
    ).hexdigest()
    etag = f'"{digest}"'
    last_modified = _note_read(token, digest, now, events)
    return Feed(token=token, etag=etag, last_modified=last_modified, events=events, extras=extras)


BOOKING_FIELDS = (
    "id",
    "updated_at",
    "sequence",
    "status",
    "start",
    "end",
    "machine__name",
    "machine__platform__name",
    "organization__legal_name",
    "booked_by__full_name",
    "booked_by__email",
    "title",
    "note",
)


def _booking_events(token: FeedToken, access: str, lo, hi, now) -> list[tuple]:
    """One tuple per booking in [lo, hi): (FULL or BUSY, id, updated, sequence,
    status, start, end, machine, platform, organization, booker, title, note),
    the last four blank in a BUSY one. Cancelled and rejected bookings stay
    CANCELLED_KEPT after the decision (another SME's ones, never)."""
    owner = token.owner
    bookings = Booking.objects.annotate(
        decided=Coalesce("cancelled_at", "decided_at", "updated_at")
    ).filter(
        Q(start__lt=hi, end__gt=lo),
        ~Q(status__in=GONE_STATUSES) | Q(decided__gte=now - CANCELLED_KEPT),
    )
    kind = token.kind
    if kind == FeedToken.Kind.USER:
        bookings = bookings.filter(booked_by=owner)
        if not owner.is_superuser:
            # Only what the owner may still see: a booking made for an organization
            # they have left is that organization's business now.
            bookings = bookings.filter(
                Q(organization_id__in=Membership.objects.filter(user=owner).values("organization"))
                | Q(
                    machine__platform_id__in=PlatformStaff.objects.filter(user=owner).values(
                        "platform"
                    )
                )
            )
    elif kind == FeedToken.Kind.ORGANIZATION:
        bookings = bookings.filter(organization_id=token.organization_id)
    elif kind == FeedToken.Kind.MACHINE:
        bookings = bookings.filter(machine_id=token.machine_id)
    else:
        bookings = bookings.filter(machine__platform_id=token.platform_id)

    if access == BUSY:
        mine = Exists(
            Membership.objects.filter(user=owner, organization_id=OuterRef("organization"))
        )
        bookings = bookings.annotate(mine=mine).filter(
            Q(mine=True) | (~Q(status__in=GONE_STATUSES) & Q(machine__is_active=True))
        )
        fields = (*BOOKING_FIELDS, "mine")
    else:
        fields = BOOKING_FIELDS
    rows = bookings.order_by("start", "id").values_list(*fields)

    events = []
    for row in rows:
        (pk, updated, sequence, status, start, end, machine, platform) = row[:8]
        if access == BUSY and not row[-1]:
            events.append((BUSY, pk, updated, sequence, status, start, end, machine, platform))
        else:
            organization, full_name, email, title, note = row[8:13]
            booker = full_name or email
            shown = (FULL, pk, updated, sequence, status, start, end, machine, platform)
            events.append((*shown, organization, booker, title, note))
    return events


def _extras(token: FeedToken, access: str, lo: datetime, hi: datetime) -> list[tuple]:
    """Maintenance windows ("maintenance", id, created, start, end, machine, reason)
    and closures ("closure", id, first day, last day, reason) in [lo, hi)."""
    if token.kind == FeedToken.Kind.MACHINE:
        windows = MaintenanceWindow.objects.filter(machine_id=token.machine_id)
        platform_id = token.machine.platform_id
    else:
        windows = MaintenanceWindow.objects.filter(machine__platform_id=token.platform_id)
        if access == BUSY:
            windows = windows.filter(machine__is_active=True)
        platform_id = token.platform_id
    windows = windows.filter(start__lt=hi, end__gt=lo).order_by("start", "id")
    extras = [
        ("maintenance", *row)
        for row in windows.values_list(
            "id", "created_at", "start", "end", "machine__name", "reason"
        )
    ]
    tz = (token.platform or token.machine.platform).tzinfo
    closures = Closure.objects.filter(
        platform_id=platform_id,
        start_date__lte=hi.astimezone(tz).date(),
        end_date__gte=lo.astimezone(tz).date(),
    ).order_by("start_date", "id")
    extras += [
        ("closure", *row) for row in closures.values_list("id", "start_date", "end_date", "reason")
    ]
    return extras


def _note_read(token: FeedToken, digest: str, now: datetime, events: list[tuple]) -> datetime:
    """Record the read (coarsely) and whether the content changed; returns the
    feed's Last-Modified: when its content last changed, which never goes
    backwards, even when an event leaves the window; at least the newest stamp
    in the feed and the token's creation."""
    updates = {}
    changed_at = token.content_changed_at
    if token.served_etag != digest or changed_at is None:
        earliest = now.replace(microsecond=0)
        if changed_at is not None:
            # HTTP dates count whole seconds: each change gets a later one.
            earliest = max(earliest, changed_at + timedelta(seconds=1))
        changed_at = updates["content_changed_at"] = earliest
        updates["served_etag"] = digest
    if token.last_used_at is None or now - token.last_used_at >= USE_RESOLUTION:
        updates["last_used_at"] = now
    if updates:
        FeedToken.objects.filter(pk=token.pk).update(**updates)
        for field, value in updates.items():
            setattr(token, field, value)
    newest = max((event[2] for event in events), default=token.created_at)
    return max(changed_at, newest, token.created_at)


# --- Rendering -----------------------------------------------------------------------------------


def _feed_uid(token: FeedToken) -> str:
    return f"feed-{token.pk}@{UID_DOMAIN}"


def _render(feed: Feed) -> bytes:
    token = feed.token
    kind = token.kind
    out = [
        "BEGIN:VCALENDAR\r\n",
        "VERSION:2.0\r\n",
        ical.line(f"PRODID:{PRODID}"),
        "CALSCALE:GREGORIAN\r\n",
        "METHOD:PUBLISH\r\n",
        ical.line(f"UID:{_feed_uid(token)}"),
        ical.line(f"NAME:{ical.text(token.name)}"),
        ical.line(f"X-WR-CALNAME:{ical.text(token.name)}"),
        f"REFRESH-INTERVAL;VALUE=DURATION:{ical.duration(REFRESH)}\r\n",
        f"X-PUBLISHED-TTL:{ical.duration(REFRESH)}\r\n",
    ]
    busy = _("Busy")
    labels = {
        "organization": _("Organization"),
        "booker": _("Booked by"),
        "title": _("Title"),
        "note": _("Note"),
    }
    line, text, utc = ical.line, ical.text, ical.utc
    for event in feed.events:
        shown, pk, updated, sequence, status, start, end, machine, platform = event[:9]
        stamp = utc(updated)
        out += [
            "BEGIN:VEVENT\r\n",
            line(f"UID:{booking_uid(pk)}"),
            f"DTSTAMP:{stamp}\r\n",
            f"LAST-MODIFIED:{stamp}\r\n",
            f"SEQUENCE:{sequence}\r\n",
            f"STATUS:{ICAL_STATUS[status]}\r\n",
            f"DTSTART:{utc(start)}\r\n",
            f"DTEND:{utc(end)}\r\n",
        ]
        if shown == BUSY:
            summary = busy if kind == FeedToken.Kind.MACHINE else f"{machine} — {busy}"
            out.append(line(f"SUMMARY:{text(summary)}"))
        else:
            organization, booker, title, note = event[9:]
            who = {"user": None, "organization": booker}.get(kind, organization)
            summary = " — ".join(part for part in (machine, title, who) if part)
            details = [
                f"{labels['organization']}: {organization}",
                f"{labels['booker']}: {booker}",
            ]
            if title:
                details.append(f"{labels['title']}: {title}")
            if note:
                details.append(f"{labels['note']}: {note}")
            out.append(line(f"SUMMARY:{text(summary)}"))
            out.append(line(f"DESCRIPTION:{text(chr(10).join(details))}"))
        out += [line(f"LOCATION:{text(platform)}"), "END:VEVENT\r\n"]

    platform = token.platform or (token.machine.platform if token.machine_id else None)
    for extra in feed.extras:
        if extra[0] == "maintenance":
            _kind, pk, created, start, end, machine, reason = extra
            out += [
                "BEGIN:VEVENT\r\n",
                line(f"UID:maintenance-{pk}@{UID_DOMAIN}"),
                f"DTSTAMP:{utc(created)}\r\n",
                "SEQUENCE:0\r\n",
                "STATUS:CONFIRMED\r\n",
                f"DTSTART:{utc(start)}\r\n",
                f"DTEND:{utc(end)}\r\n",
                line(f"SUMMARY:{text(f'{machine} — ' + _('Maintenance'))}"),
            ]
        else:
            _kind, pk, first, last, reason = extra
            out += [
                "BEGIN:VEVENT\r\n",
                line(f"UID:closure-{pk}@{UID_DOMAIN}"),
                # A closure has no stamp of its own; its platform's creation is as fixed.
                f"DTSTAMP:{utc(platform.created_at)}\r\n",
                "SEQUENCE:0\r\n",
                "STATUS:CONFIRMED\r\n",
                "TRANSP:TRANSPARENT\r\n",
                f"DTSTART;VALUE=DATE:{ical.day(first)}\r\n",
                f"DTEND;VALUE=DATE:{ical.day(last + timedelta(days=1))}\r\n",
                line(f"SUMMARY:{text(_('%(platform)s closed') % {'platform': platform.name})}"),
            ]
        if reason:
            out.append(line(f"DESCRIPTION:{text(reason)}"))
        out += [line(f"LOCATION:{text(platform.name)}"), "END:VEVENT\r\n"]
    out.append("END:VCALENDAR\r\n")
    return "".join(out).encode()


def parse_bound(value: str | None) -> datetime | None:
    """?start= / ?end=: a date (midnight UTC) or a date-time with its offset;
    ValueError for anything else."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        parsed = date.fromisoformat(value)
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None

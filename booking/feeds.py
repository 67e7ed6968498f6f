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

Same data, same bytes: the body is rendered from the rows the feed is made of,
the token and the reader's roles alone, with fixed UIDs and the bookings' own
stamps (never "now"); the strong ETag is a hash of all that, computed before any
rendering (on PostgreSQL by the database, so that a 304 fetches no event). A feed
costs a fixed number of queries, whatever the number of events."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import CharField, F, Func, Q
from django.db.models.expressions import RawSQL
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
#
# Polling is what feeds are for, so reading one is kept cheap: short queries whose
# SQL compiles fast, the events' times formatted by the database, and on
# PostgreSQL the ETag's hash computed by the database (a 304 fetches no event).

FULL, BUSY = "full", "busy"  # what the reader sees: everything, or the SME view


def _ids_of_owner(select: str, table: str, join: str = "") -> RawSQL:
    """The ids `select` of the token owner's rows in `table` (aliased m, with a
    user_id), as one "1,5,7" string: correlated with the token's row, so that the
    owner's roles come with the token, in one query."""
    if connection.vendor == "postgresql":
        aggregate = f"string_agg(({select})::text, ',')"
    else:
        aggregate = f"group_concat({select}, ',')"
    owner = f"{FeedToken._meta.db_table}.owner_id"
    return RawSQL(f"(SELECT {aggregate} FROM {table} {join} WHERE m.user_id = {owner})", ())


def active_token(secret: str) -> FeedToken | None:
    """The live token of `secret`, with its owner's roles now (one query); None for
    a malformed, unknown or revoked one, or one whose owner was deactivated."""
    if not SECRET_SHAPE.fullmatch(secret):
        return None
    memberships = f"{Membership._meta.db_table} m"
    return (
        FeedToken.objects.active()
        .filter(token_hash=hash_secret(secret), owner__is_active=True)
        .select_related("owner", "machine__platform", "platform")
        .annotate(
            owner_organizations=_ids_of_owner("m.organization_id", memberships),
            owner_staffed=_ids_of_owner("m.platform_id", f"{PlatformStaff._meta.db_table} m"),
            owner_books_on=_ids_of_owner(
                "pm.platform_id",
                memberships,
                f"JOIN {PlatformMembership._meta.db_table} pm"
                " ON pm.organization_id = m.organization_id",
            ),
        )
        .order_by()
        .first()
    )


@dataclass(frozen=True)
class Roles:
    """What a feed's owner is, now: read at every request (with the token), so a
    feed follows its owner's memberships and staff roles."""

    organizations: frozenset  # ids of the organizations they belong to
    staffed: frozenset  # ids of the platforms where they are staff
    booking_on: frozenset  # ids of the platforms where one of their organizations books

    @classmethod
    def of(cls, token: FeedToken) -> "Roles":
        def ids(value: str | None) -> frozenset:
            return frozenset(int(pk) for pk in value.split(",")) if value else frozenset()

        return cls(
            ids(token.owner_organizations), ids(token.owner_staffed), ids(token.owner_books_on)
        )


def _access(token: FeedToken, roles: Roles) -> str | None:
    """FULL, BUSY (an SME's view of a machine or platform), or None when the owner
    may no longer see the feed's target: the feed then answers 404."""
    superuser = token.owner.is_superuser
    if token.kind == FeedToken.Kind.USER:
        return FULL
    if token.kind == FeedToken.Kind.ORGANIZATION:
        return FULL if superuser or token.organization_id in roles.organizations else None
    platform_id = token.platform_id or token.machine.platform_id
    if superuser or platform_id in roles.staffed:
        return FULL
    visible = token.kind == FeedToken.Kind.PLATFORM or token.machine.is_active
    return BUSY if visible and platform_id in roles.booking_on else None


class ICalUTC(Func):
    """A date-time as iCalendar writes it in UTC ("20270302T080000Z"), formatted by
    the database: turning thousands of timestamps into Python datetimes costs
    more than writing the whole feed. Seconds are the finest unit (truncated)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')"""
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Stored in UTC; "%%%%" survives both this template and the backend's paramstyle.
        template = "strftime('%%%%Y%%%%m%%%%dT%%%%H%%%%M%%%%SZ', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra)


# The columns of a booking's event, in this order (see _render()).
EVENT_FIELDS = (
    "id",
    "ical_stamp",
    "sequence",
    "status",
    "ical_start",
    "ical_end",
    "machine_name",
    "platform_name",
    "organization_id",
    "organization_name",
    "booker_name",
    "booker_email",
    "title",
    "note",
)
# What the ETag's hash covers on PostgreSQL, with the same outcome as hashing the
# events, for less: a booking's row changes its `updated_at` whenever it changes
# (the booking's own columns, among them the ids of its machine, organization and
# booker); what those ids show (names) is covered once per distinct combination.
KEY_FIELDS = (
    "id",
    "updated_at",
    "machine_id",
    "machine_name",
    "platform_name",
    "organization_id",
    "organization_name",
    "booked_by_id",
    "booker_name",
    "booker_email",
)
KEY_SQL = (
    "SELECT md5(string_agg(t.id || '.' || t.updated_at, ',' ORDER BY t.id)),"
    " md5(string_agg(DISTINCT concat_ws(chr(31), t.machine_id, t.machine_name, t.platform_name,"
    " t.organization_id, t.organization_name, t.booked_by_id, t.booker_name, t.booker_email),"
    " chr(30))), count(*), max(t.updated_at){columns} FROM ({bookings}) t"
)


def _bookings(token: FeedToken, access: str, roles: Roles, lo, hi, now):
    """The feed's bookings in [lo, hi), with EVENT_FIELDS and KEY_FIELDS. Cancelled and rejected
    ones stay CANCELLED_KEPT after the decision (another SME's ones, never).
    Another SME's organization, people, title and note are loaded with the rest
    but never rendered (see _render()); the ETag hashes them too, which tells
    nothing more: any change to a booking also changes its visible DTSTAMP."""
    bookings = Booking.objects.annotate(
        decided=Coalesce("cancelled_at", "decided_at", "updated_at")
    ).filter(
        Q(start__lt=hi, end__gt=lo),
        ~Q(status__in=GONE_STATUSES) | Q(decided__gte=now - CANCELLED_KEPT),
    )
    kind = token.kind
    if kind == FeedToken.Kind.USER:
        bookings = bookings.filter(booked_by=token.owner_id)
        if not token.owner.is_superuser:
            # Only what the owner may still see: a booking made for an organization
            # they have left is that organization's business now.
            bookings = bookings.filter(
                Q(organization_id__in=roles.organizations)
                | Q(machine__platform_id__in=roles.staffed)
            )
    elif kind == FeedToken.Kind.ORGANIZATION:
        bookings = bookings.filter(organization_id=token.organization_id)
    elif kind == FeedToken.Kind.MACHINE:
        bookings = bookings.filter(machine_id=token.machine_id)
    else:
        bookings = bookings.filter(machine__platform_id=token.platform_id)
    if access == BUSY:
        bookings = bookings.filter(
            Q(organization_id__in=roles.organizations)
            | (~Q(status__in=GONE_STATUSES) & Q(machine__is_active=True))
        )
    return bookings.annotate(
        ical_stamp=ICalUTC("updated_at"),
        ical_start=ICalUTC("start"),
        ical_end=ICalUTC("end"),
        machine_name=F("machine__name"),
        platform_name=F("machine__platform__name"),
        organization_name=F("organization__legal_name"),
        booker_name=F("booked_by__full_name"),
        booker_email=F("booked_by__email"),
    ).order_by("start", "id")


def _sql(queryset) -> tuple[str, tuple] | None:
    """The compiled query; None when it can match nothing (e.g. the bookings of
    someone who belongs nowhere now)."""
    try:
        return queryset.query.sql_with_params()
    except EmptyResultSet:
        return None


def _fetch(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass
class Feed:
    token: FeedToken
    access: str
    roles: Roles
    etag: str  # quoted, strong
    last_modified: datetime
    bookings: object  # the queryset of the events
    extra_querysets: tuple  # maintenance windows and closures (see _extras())
    rows: list[tuple] | None = None  # the events (EVENT_FIELDS), once fetched
    extra_rows: list[tuple] | None = None

    def extras(self) -> list[tuple]:
        if self.extra_rows is None:
            windows, closures = self.extra_querysets or ((), ())
            self.extra_rows = [("maintenance", *row) for row in windows]
            self.extra_rows += [("closure", *row) for row in closures]
        return self.extra_rows

    def events(self) -> list[tuple]:
        if self.rows is None:
            sql = _sql(self.bookings.values_list(*EVENT_FIELDS))
            self.rows = _fetch(*sql) if sql else []
        return self.rows

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

    The ETag comes before any event is rendered, from a hash of every value the
    events are made of: on PostgreSQL computed by the database, which sends one
    row back; elsewhere from the fetched rows, which rendering then reuses. A
    fixed number of queries whatever the number of events: the owner's roles,
    that hash, the maintenance windows and closures of a machine or platform, at
    most one write (the token's last use, and when its content last changed),
    and the events when the feed is rendered."""
    roles = Roles.of(token)
    access = _access(token, roles)
    if access is None:
        return None
    now = timezone.now()
    lo, hi = window(now, start, end)
    bookings = _bookings(token, access, roles, lo, hi, now)
    extras = _extras(token, access, lo, hi) if token.kind in ("machine", "platform") else None
    feed = Feed(token, access, roles, "", now, bookings, extras)
    key_sql = _sql(bookings.order_by().values_list(*KEY_FIELDS))
    extra_sqls = [_sql(queryset) for queryset in extras or ()]
    if key_sql and None not in extra_sqls and connection.vendor == "postgresql":
        sql, params = _key_sql(key_sql, extra_sqls)
        (digest,) = _fetch(sql, params)
        count, newest = digest[2], digest[3]
    else:
        rows = feed.events()
        digest = (hashlib.sha256(repr(rows).encode()).hexdigest(), feed.extras())
        count = len(rows)
        newest = max((row[1] for row in rows), default=None)
        if newest:
            newest = datetime.strptime(newest, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    platform = token.platform or (token.machine.platform if token.machine_id else None)
    shown = sorted(roles.organizations) if access == BUSY else None
    etag_digest = hashlib.sha256(
        repr(
            (
                FORMAT_VERSION,
                token.pk,
                token.kind,
                token.name,
                token.owner.language,
                access,
                shown,
                platform and (platform.name, platform.created_at),
                digest,
                count,
            )
        ).encode()
    ).hexdigest()
    feed.etag = f'"{etag_digest}"'
    feed.last_modified = _note_read(token, etag_digest, now, newest)
    return feed


def _key_sql(bookings: tuple, extras: list) -> tuple[str, tuple]:
    """KEY_SQL, plus a hash of each of `extras` (compiled queries whose rows are
    all shown, with an "id" column), so that a 304 takes this one query."""
    columns, params = [], []
    for sql, extra_params in extras:
        columns.append(f", (SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) FROM ({sql}) x)")
        params += extra_params
    sql = KEY_SQL.format(columns="".join(columns), bookings=bookings[0])
    return sql, (*params, *bookings[1])


def _extras(token: FeedToken, access: str, lo: datetime, hi: datetime) -> tuple:
    """Maintenance windows (id, created, start, end, machine, reason) and closures
    (id, first day, last day, reason) in [lo, hi), as two querysets."""
    if token.kind == FeedToken.Kind.MACHINE:
        windows = MaintenanceWindow.objects.filter(machine_id=token.machine_id)
        platform_id = token.machine.platform_id
    else:
        windows = MaintenanceWindow.objects.filter(machine__platform_id=token.platform_id)
        if access == BUSY:
            windows = windows.filter(machine__is_active=True)
        platform_id = token.platform_id
    windows = (
        windows.filter(start__lt=hi, end__gt=lo)
        .annotate(
            ical_stamp=ICalUTC("created_at"), ical_start=ICalUTC("start"), ical_end=ICalUTC("end")
        )
        .order_by("start", "id")
        .values_list("id", "ical_stamp", "ical_start", "ical_end", "machine__name", "reason")
    )
    tz = (token.platform or token.machine.platform).tzinfo
    closures = (
        Closure.objects.filter(
            platform_id=platform_id,
            start_date__lte=hi.astimezone(tz).date(),
            end_date__gte=lo.astimezone(tz).date(),
        )
        .order_by("start_date", "id")
        .values_list("id", "start_date", "end_date", "reason")
    )
    return windows, closures


def _note_read(token: FeedToken, digest: str, now: datetime, newest: datetime | None) -> datetime:
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
    return max(changed_at, newest or changed_at, token.created_at)


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
    # French puts a non-breaking space before the colon.
    pair = _("%(label)s: %(value)s")
    line, text = ical.line, ical.text
    everything = feed.access == FULL
    mine = feed.roles.organizations
    for event in feed.events():
        (pk, stamp, sequence, status, start, end, machine, platform, organization_id) = event[:9]
        out += [
            "BEGIN:VEVENT\r\n",
            f"UID:{booking_uid(pk)}\r\n",  # short and ASCII: never folded
            f"DTSTAMP:{stamp}\r\n",
            f"LAST-MODIFIED:{stamp}\r\n",
            f"SEQUENCE:{sequence}\r\n",
            f"STATUS:{ICAL_STATUS[status]}\r\n",
            f"DTSTART:{start}\r\n",
            f"DTEND:{end}\r\n",
        ]
        if everything or organization_id in mine:
            organization, full_name, email, title, note = event[9:]
            booker = full_name or email
            who = {"user": None, "organization": booker}.get(kind, organization)
            summary = " — ".join(part for part in (machine, title, who) if part)
            details = "\n".join(
                pair % {"label": labels[key], "value": value}
                for key, value in (
                    ("organization", organization),
                    ("booker", booker),
                    ("title", title),
                    ("note", note),
                )
                if value
            )
            out.append(line(f"SUMMARY:{text(summary)}"))
            out.append(line(f"DESCRIPTION:{text(details)}"))
        else:  # another SME's booking: when the machine is taken, nothing more
            summary = busy if kind == FeedToken.Kind.MACHINE else f"{machine} — {busy}"
            out.append(line(f"SUMMARY:{text(summary)}"))
        out += [line(f"LOCATION:{text(platform)}"), "END:VEVENT\r\n"]

    platform = token.platform or (token.machine.platform if token.machine_id else None)
    for extra in feed.extras():
        if extra[0] == "maintenance":
            _kind, pk, stamp, start, end, machine, reason = extra
            out += [
                "BEGIN:VEVENT\r\n",
                f"UID:maintenance-{pk}@{UID_DOMAIN}\r\n",
                f"DTSTAMP:{stamp}\r\n",
                "SEQUENCE:0\r\n",
                "STATUS:CONFIRMED\r\n",
                f"DTSTART:{start}\r\n",
                f"DTEND:{end}\r\n",
                line("SUMMARY:" + text(f"{machine} — " + _("Maintenance"))),
            ]
        else:
            _kind, pk, first, last, reason = extra
            out += [
                "BEGIN:VEVENT\r\n",
                f"UID:closure-{pk}@{UID_DOMAIN}\r\n",
                # A closure has no stamp of its own; its platform's creation is as fixed.
                f"DTSTAMP:{ical.utc(platform.created_at)}\r\n",
                "SEQUENCE:0\r\n",
                "STATUS:CONFIRMED\r\n",
                "TRANSP:TRANSPARENT\r\n",
                f"DTSTART;VALUE=DATE:{ical.day(first)}\r\n",
                f"DTEND;VALUE=DATE:{ical.day(last + timedelta(days=1))}\r\n",
                line("SUMMARY:" + text(_("%(platform)s closed") % {"platform": platform.name})),
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

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.models import Organization
from core.validators import validate_single_line
from equipment.models import Machine, Platform


class BookingQuerySet(models.QuerySet):
    def active(self) -> "BookingQuerySet":
        """Bookings that hold their slot: no other may overlap them."""
        return self.filter(status__in=Booking.ACTIVE_STATUSES)

    def overlapping(self, machine_id: int, start, blocked_until) -> "BookingQuerySet":
        """Active bookings of `machine` whose blocked period meets [start, blocked_until)."""
        return self.holding([machine_id], start, blocked_until)

    def holding(self, machine_ids: list[int], start, end) -> "BookingQuerySet":
        """Active bookings of these machines whose held period [start, blocked_until)
        meets [start, end). The conflict check and the availability reads use
        booking.selectors.held_periods(), which PostgreSQL answers from the exclusion
        constraint's index."""
        active = self.active().filter(machine_id__in=machine_ids)
        return active.filter(start__lt=end, blocked_until__gt=start)

    def visible_to(self, user) -> "BookingQuerySet":
        """Staff see every booking of their platforms; SME people see their
        organizations' bookings (others' appear only as anonymous busy time)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(machine__platform__in=Platform.objects.staffed_by(user))
            | Q(organization__memberships__user=user)
        ).distinct()


class BookingSeriesQuerySet(models.QuerySet):
    def visible_to(self, user) -> "BookingSeriesQuerySet":
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(machine__platform__in=Platform.objects.staffed_by(user))
            | Q(organization__memberships__user=user)
        ).distinct()


class BookingSeries(models.Model):
    """Bookings repeated by a rule (RFC 5545 RRULE subset, see booking/recurrence.py);
    each occurrence is an ordinary Booking pointing here."""

    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="+")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    rule = models.CharField(_("recurrence rule"), max_length=200)
    title = models.CharField(_("title or project"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = BookingSeriesQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "booking series"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.machine} {self.rule}"


class Booking(models.Model):
    """A machine reserved by an organization over [start, end), in UTC.

    The slot is held until `blocked_until` = end + the machine's buffer at the
    time of booking; on PostgreSQL an exclusion constraint (migration 0002)
    forbids two active bookings of one machine whose held periods overlap."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending approval")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        REJECTED = "rejected", _("Rejected")
        COMPLETED = "completed", _("Completed")
        NO_SHOW = "no_show", _("No-show")

    ACTIVE_STATUSES = (Status.PENDING, Status.CONFIRMED)

    # No index of their own: the (machine, start) and (organization, start) indexes
    # begin with them. With a second one on machine alone, PostgreSQL at times read
    # a machine's bookings through it and sorted them, where the search wants the
    # first few in order of start (booking/selectors.py, _GAPS_SQL).
    machine = models.ForeignKey(
        Machine, on_delete=models.PROTECT, related_name="bookings", db_index=False
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="bookings", db_index=False
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings"
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    blocked_until = models.DateTimeField(
        _("held until"), help_text=_("The end plus the machine's buffer after each booking.")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.CONFIRMED
    )
    title = models.CharField(_("title or project"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True)
    series = models.ForeignKey(
        BookingSeries,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bookings",
    )
    # Rises on every change a calendar must see (RFC 5545 SEQUENCE).
    sequence = models.PositiveIntegerField(default=0)
    override_reason = models.CharField(
        _("reason for overriding the rules"), max_length=500, blank=True
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    late_cancellation = models.BooleanField(
        default=False, help_text=_("Cancelled after the platform's cancellation deadline.")
    )
    # Approval of a pending booking, or its rejection, by the platform.
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_note = models.CharField(_("decision note"), max_length=500, blank=True)
    # What really happened, for billing.
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_out_at = models.DateTimeField(_("checked out at"), null=True, blank=True)
    # When `manage.py send_reminders` claimed this booking's reminder; cleared by a move
    # to a later start, which deserves a reminder of its own.
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BookingQuerySet.as_manager()

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["machine", "start"]),
            models.Index(fields=["organization", "start"]),
            # A machine's active bookings (ACTIVE_STATUSES) in order of start, with
            # where each stops holding it: a search reads its gaps from this index
            # alone, without visiting the table (booking/selectors.py, _GAPS_SQL);
            # 200 machines' gaps in two thirds of the time (bench/booking.py).
            models.Index(
                fields=["machine", "start", "blocked_until"],
                condition=Q(status__in=["pending", "confirmed"]),
                name="booking_active_by_machine",
            ),
            # What send_reminders looks for every minute: confirmed, not reminded yet.
            models.Index(
                fields=["start"],
                condition=Q(status="confirmed", reminded_at__isnull=True),
                name="booking_reminder_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="booking_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(blocked_until__gte=F("end")), name="booking_held_at_least_until_end"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.machine} {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class QuotaQuerySet(models.QuerySet):
    def visible_to(self, user) -> "QuotaQuerySet":
        """Staff see their platforms' quotas; an SME sees the ones that apply to it."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        applies_to_me = Q(organization__isnull=True) | Q(organization__memberships__user=user)
        return self.filter(
            Q(platform__in=Platform.objects.staffed_by(user))
            | (applies_to_me & Q(platform__in=Platform.objects.visible_to(user)))
        ).distinct()


class Quota(models.Model):
    """A cap a platform puts on an organization's booked hours per week or month
    (local weeks from Monday, calendar months), on all machines or one type.
    Without an organization, the cap applies to each organization alone."""

    class Period(models.TextChoices):
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="quotas")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    machine_type = models.ForeignKey(
        "equipment.MachineType", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    period = models.CharField(_("period"), max_length=10, choices=Period.choices)
    max_hours = models.PositiveIntegerField(_("maximum hours"))

    objects = QuotaQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "period", "id"]

    def __str__(self) -> str:
        return f"{self.max_hours} h / {self.period}"


class RefusedRequest(models.Model):
    """Demand the platform could not serve, for utilisation analytics
    (booking/analytics.py): a booking or a move refused for a conflict or for
    broken rules, and a pending booking a manager rejected. Written by
    booking/refusals.py after the refused service's transaction rolled back, so
    that it survives the refusal; never shown to other SMEs except as counts."""

    class Kind(models.TextChoices):
        CONFLICT = "conflict", _("Conflict")
        RULES = "rules", _("Broken rules")
        REJECTED = "rejected", _("Rejected by a manager")

    class Action(models.TextChoices):
        CREATE = "create", _("New booking")
        # A noun here; "Move" alone is also a button (a verb) in the pages.
        MOVE = "move", pgettext_lazy("refused request", "Move")
        SERIES = "series", _("Recurring series")
        APPROVAL = "approval", _("Approval")

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    booking = models.ForeignKey(
        Booking, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    # The period asked for, in UTC.
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    codes = models.JSONField(
        _("rule codes"), default=list, blank=True, help_text=_("The broken rules' codes.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["machine", "start"])]

    def __str__(self) -> str:
        return f"{self.machine} {self.start:%Y-%m-%d %H:%M} UTC: {self.kind}"


class FeedTokenQuerySet(models.QuerySet):
    def active(self) -> "FeedTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class FeedToken(models.Model):
    """A calendar subscription: its secret URL (/feeds/<secret>.ics) is the only
    credential a calendar client has, so only the secret's hash is stored, and
    what the feed shows is decided again, from its owner's roles, at every read."""

    class Kind(models.TextChoices):
        USER = "user", _("My bookings")
        ORGANIZATION = "organization", _("An organization's bookings")
        MACHINE = "machine", _("A machine's calendar")
        PLATFORM = "platform", _("A platform's calendar")

    # The target each kind needs; the others stay empty.
    TARGETS = {
        Kind.USER: None,
        Kind.ORGANIZATION: "organization",
        Kind.MACHINE: "machine",
        Kind.PLATFORM: "platform",
    }

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_tokens"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    platform = models.ForeignKey(
        Platform, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100, validators=[validate_single_line])
    # The first characters of the secret, kept in clear so people can tell their feeds apart.
    hint = models.CharField(max_length=8, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Coarse (booking.feeds.USE_RESOLUTION): a calendar polling often costs no write per poll.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The ETag the feed last served, and since when its content is so: Last-Modified
    # then never goes backwards, even when an event leaves the feed's window.
    served_etag = models.CharField(max_length=64, blank=True, editable=False)
    content_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = FeedTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind="user",
                    organization__isnull=True,
                    machine__isnull=True,
                    platform__isnull=True,
                )
                | Q(
                    kind="organization",
                    organization__isnull=False,
                    machine__isnull=True,
                    platform__isnull=True,
                )
                | Q(
                    kind="machine",
                    organization__isnull=True,
                    machine__isnull=False,
                    platform__isnull=True,
                )
                | Q(
                    kind="platform",
                    organization__isnull=True,
                    machine__isnull=True,
                    platform__isnull=False,
                ),
                name="feedtoken_target_matches_kind",
                violation_error_message=_("A feed names exactly the target its kind needs."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def target(self):
        field = self.TARGETS[self.Kind(self.kind)]
        return getattr(self, field) if field else None

    @classmethod
    def target_errors(cls, kind: str, given: set[str]) -> dict[str, str]:
        """What is wrong with naming the targets `given` (field names) for a feed
        of `kind`: it needs its own target and no other. Shared with the API."""
        wanted = cls.TARGETS.get(kind)
        errors = {}
        for field in ("organization", "machine", "platform"):
            if field == wanted and field not in given:
                errors[field] = _("A feed of this kind needs one.")
            elif field != wanted and field in given:
                errors[field] = _("A feed of this kind has none.")
        return errors

    def clean(self) -> None:
        given = {f for f in ("organization", "machine", "platform") if getattr(self, f"{f}_id")}
        if errors := self.target_errors(self.kind, given):
            raise ValidationError(errors)


class EmailPreferences(models.Model):
    """Which booking emails a person wants; without a row, all of them. The emails
    the platform decides (approval requests to managers, and those about money:
    no-shows and late cancellations) are not here: they are always sent."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="email_preferences",
    )
    booking_confirmed = models.BooleanField(_("booking confirmed"), default=True)
    booking_pending = models.BooleanField(_("booking awaiting approval"), default=True)
    booking_approved = models.BooleanField(_("booking approved"), default=True)
    booking_rejected = models.BooleanField(_("booking rejected"), default=True)
    booking_moved = models.BooleanField(_("booking moved"), default=True)
    booking_cancelled = models.BooleanField(_("booking cancelled"), default=True)
    booking_reminder = models.BooleanField(_("reminder before a booking"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The kinds of email a person may turn off, in the order the API lists them.
    KINDS = (
        "booking_confirmed",
        "booking_pending",
        "booking_approved",
        "booking_rejected",
        "booking_moved",
        "booking_cancelled",
        "booking_reminder",
    )

    class Meta:
        verbose_name = _("email preferences")
        verbose_name_plural = _("email preferences")

    def __str__(self) -> str:
        return f"email preferences of {self.user_id}"

    def wants(self, kind: str) -> bool:
        return getattr(self, kind, True)

import functools
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_countries.fields import CountryField

from core.models import Organization, another_row_has
from core.validators import validate_single_line

CURRENCIES = [("EUR", "EUR — euro"), ("CHF", "CHF — Swiss franc"), ("GBP", "GBP — pound sterling")]


@functools.cache
def _iana_time_zones() -> frozenset[str]:
    # available_timezones() rescans tzdata on each call; "localtime" is the
    # server's own zone and "Factory" a placeholder: neither names a place.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def validate_timezone(value: str) -> None:
    if value not in _iana_time_zones():
        raise ValidationError(
            _("Unknown time zone “%(value)s”; use an IANA name such as Europe/Paris."),
            code="invalid_timezone",
            params={"value": value},
        )


def validate_specs(value) -> None:
    """Specs are a flat object: names to a number, text, yes/no, or a list of those."""
    scalar = str | int | float | bool

    def ok_scalar(item) -> bool:
        # PostgreSQL's jsonb cannot hold a NUL character.
        return isinstance(item, scalar) and not (isinstance(item, str) and "\x00" in item)

    def ok(item) -> bool:
        return ok_scalar(item) or (isinstance(item, list) and all(ok_scalar(x) for x in item))

    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and "\x00" not in k and ok(v) for k, v in value.items()
    ):
        raise ValidationError(
            _("Specs must be an object of names to numbers, text, booleans or lists of those."),
            code="invalid_specs",
        )


# --- Who may see what ---------------------------------------------------------------
# One queryset method per model answers "what may this user see"; the API and
# the pages both use it, so a foreign object is simply not found.


def _platforms_where_staff(user, roles=None):
    """The ids of the platforms where `user` holds one of `roles` (default: any
    staff role), as a subquery."""
    staff = PlatformStaff.objects.filter(user=user)
    if roles:
        staff = staff.filter(role__in=roles)
    return staff.values("platform")


def _platforms_where_member(user):
    """The ids of the platforms where one of `user`'s organizations may book, as a
    subquery."""
    return PlatformMembership.objects.filter(organization__memberships__user=user).values(
        "platform"
    )


class PlatformQuerySet(models.QuerySet):
    def visible_to(self, user) -> "PlatformQuerySet":
        """Platforms where the user works, or where one of their organizations may book."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(pk__in=_platforms_where_staff(user)) | Q(pk__in=_platforms_where_member(user))
        )

    def staffed_by(self, user, roles=None) -> "PlatformQuerySet":
        """Platforms where the user holds one of `roles` (default: any staff role)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(pk__in=_platforms_where_staff(user, roles))


class PlatformScopedQuerySet(models.QuerySet):
    """For rows that belong to a platform through `platform_path`."""

    platform_path = "platform"

    def visible_to(self, user):
        platforms = Platform.objects.visible_to(user)
        return self.filter(**{f"{self.platform_path}__in": platforms})


class MachineQuerySet(PlatformScopedQuerySet):
    def visible_to(self, user):
        """Every machine of the platforms where the user works, retired ones included;
        the bookable machines of the platforms where one of their organizations may
        book. (Platform.visible_to() and staffed_by() put together: two subqueries on
        the platforms' ids rather than three, a machine's lookup on every booking write
        and read compiles in two thirds of the time.)"""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(platform__in=_platforms_where_staff(user))
            | Q(is_active=True, platform__in=_platforms_where_member(user))
        )


class MachineScopedQuerySet(models.QuerySet):
    """For rows that belong to a machine: visible with the machine."""

    def visible_to(self, user):
        return self.filter(machine__in=Machine.objects.visible_to(user))


class PlatformMembershipQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Staff see who may book on their platform; an SME sees its own memberships
        only (never which other SMEs use a platform)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(platform__in=Platform.objects.staffed_by(user))
            | Q(organization__memberships__user=user)
        ).distinct()


class UserQualificationQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Your own qualifications, and those granted on platforms where you work."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            Q(user=user) | Q(qualification__platform__in=Platform.objects.staffed_by(user))
        )


# --- Catalogue ---------------------------------------------------------------------------


class Label(models.Model):
    """A label a platform carries, e.g. "Vitrine Industrie du Futur"."""

    name = models.CharField(_("name"), max_length=150, unique=True)
    slug = models.SlugField(unique=True)
    issuer = models.CharField(_("issuer"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    website = models.URLField(_("website"), blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Platform(models.Model):
    """A collaborative platform (fab lab) hosting pooled machines."""

    name = models.CharField(_("name"), max_length=150, validators=[validate_single_line])
    slug = models.SlugField(unique=True)
    description = models.TextField(_("description"), blank=True)
    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = CountryField(_("country"), default="FR")
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Paris", validators=[validate_timezone]
    )
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="EUR")
    labels = models.ManyToManyField(Label, related_name="platforms", blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    website = models.URLField(_("website"), blank=True)
    cancellation_deadline_hours = models.PositiveIntegerField(
        _("cancellation deadline (hours before the start)"),
        default=24,
        validators=[MaxValueValidator(24 * 30)],
        help_text=_("Cancelling later is allowed but marked late, and may be charged."),
    )
    no_show_grace_minutes = models.PositiveIntegerField(
        _("no-show grace period (minutes)"),
        default=15,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("A booking not checked in this long after its start is a no-show."),
    )
    reminder_hours = models.PositiveIntegerField(
        _("reminder (hours before the start)"),
        default=24,
        validators=[MaxValueValidator(24 * 7)],
        help_text=_("Email a reminder this long before each booking; 0 sends none."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PlatformQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class PlatformStaff(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", _("Manager")
        OPERATOR = "operator", _("Operator")
        ACCOUNTANT = "accountant", _("Accountant")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_roles"
    )
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)

    class Meta:
        verbose_name_plural = "platform staff"
        constraints = [
            models.UniqueConstraint(fields=["user", "platform"], name="platformstaff_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.platform} ({self.role})"


class PlatformMembership(models.Model):
    """An organization may book on a platform, at a price tier."""

    class Tier(models.TextChoices):
        STANDARD = "standard", _("Standard")
        MEMBER = "member", pgettext_lazy("price tier", "Member")
        PARTNER = "partner", _("Partner")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="platform_memberships"
    )
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="memberships")
    tier = models.CharField(_("tier"), max_length=20, choices=Tier.choices, default=Tier.STANDARD)
    since = models.DateField(_("member since"), auto_now_add=True)

    objects = PlatformMembershipQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "organization__legal_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "platform"], name="platformmembership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization} @ {self.platform} ({self.tier})"


class OpeningHours(models.Model):
    """One opening span on a weekday, in the platform's local time. A day may
    have several spans (e.g. 08:00–12:00 and 13:30–18:00)."""

    class Weekday(models.IntegerChoices):
        # With a context: Django's dates ("l j F Y") use the bare names, lower-case in French.
        MONDAY = 0, pgettext_lazy("weekday", "Monday")
        TUESDAY = 1, pgettext_lazy("weekday", "Tuesday")
        WEDNESDAY = 2, pgettext_lazy("weekday", "Wednesday")
        THURSDAY = 3, pgettext_lazy("weekday", "Thursday")
        FRIDAY = 4, pgettext_lazy("weekday", "Friday")
        SATURDAY = 5, pgettext_lazy("weekday", "Saturday")
        SUNDAY = 6, pgettext_lazy("weekday", "Sunday")

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"))

    objects = PlatformScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "opening hours"
        ordering = ["platform_id", "weekday", "opens_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opens_at")),
                name="openinghours_closes_after_opening",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("Closing time must be after opening time.")})


class Closure(models.Model):
    """Whole days when the platform is closed (holidays, events), inclusive."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="closures")
    start_date = models.DateField(_("first day"))
    end_date = models.DateField(_("last day"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    objects = PlatformScopedQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")),
                name="closure_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform}: {self.start_date} → {self.end_date}"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": _("The last day cannot be before the first day.")})


class MachineType(models.Model):
    """A kind of machine: FDM 3D printer, cobot, CNC mill, laser cutter…"""

    class Category(models.TextChoices):
        ADDITIVE = "additive", _("Additive manufacturing")
        ROBOTICS = "robotics", _("Robotics")
        SUBTRACTIVE = "subtractive", _("Machining")
        CUTTING = "cutting", _("Cutting")
        METROLOGY = "metrology", _("Metrology")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(unique=True)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        ordering = ["category", "name"]

    def __str__(self) -> str:
        return self.name


class Machine(models.Model):
    """A bookable machine, with the booking policy the platform sets for it.
    Durations are whole minutes; the horizon is in days."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="machines")
    machine_type = models.ForeignKey(MachineType, on_delete=models.PROTECT, related_name="machines")
    name = models.CharField(_("name"), max_length=150, validators=[validate_single_line])
    description = models.TextField(_("description"), blank=True)
    specs = models.JSONField(
        _("specifications"), default=dict, blank=True, validators=[validate_specs]
    )
    image = models.ImageField(_("image"), upload_to="machines/", blank=True)
    is_active = models.BooleanField(_("bookable"), default=True)
    # Booking policy.
    min_duration_minutes = models.PositiveIntegerField(
        _("minimum duration (minutes)"), default=30, validators=[MinValueValidator(1)]
    )
    max_duration_minutes = models.PositiveIntegerField(
        _("maximum duration (minutes)"),
        default=8 * 60,
        validators=[MinValueValidator(1), MaxValueValidator(14 * 24 * 60)],
    )
    granularity_minutes = models.PositiveIntegerField(
        _("time granularity (minutes)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("Starts and ends fall on multiples of this, from midnight local time."),
    )
    buffer_after_minutes = models.PositiveIntegerField(
        _("buffer after each booking (minutes)"),
        default=0,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("Cleaning or cooling time kept free after each booking."),
    )
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"), default=60, validators=[MaxValueValidator(365 * 24 * 60)]
    )
    booking_horizon_days = models.PositiveIntegerField(
        _("booking horizon (days)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
    )
    qualification_required = models.BooleanField(_("qualification required"), default=False)
    approval_required = models.BooleanField(_("approval required"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MachineQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "name"],
                name="machine_unique_name_per_platform",
            ),
            models.CheckConstraint(
                condition=Q(max_duration_minutes__gte=F("min_duration_minutes")),
                name="machine_max_duration_at_least_min",
            ),
            models.CheckConstraint(
                condition=Q(min_duration_minutes__gte=1) & Q(granularity_minutes__gte=1),
                name="machine_positive_durations",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if (
            self.min_duration_minutes
            and self.max_duration_minutes
            and self.max_duration_minutes < self.min_duration_minutes
        ):
            errors["max_duration_minutes"] = _(
                "The maximum duration cannot be shorter than the minimum duration."
            )
        if self.granularity_minutes:
            if (24 * 60) % self.granularity_minutes:
                errors["granularity_minutes"] = _(
                    "The granularity must divide a day evenly (e.g. 15, 30, 60 or 120 minutes)."
                )
            for field in ("min_duration_minutes", "max_duration_minutes"):
                if getattr(self, field) and getattr(self, field) % self.granularity_minutes:
                    errors[field] = _("Durations must be multiples of the granularity.")
        if another_row_has(self, platform_id=self.platform_id, name=self.name):
            errors["name"] = _("This platform already has a machine of that name.")
        if errors:
            raise ValidationError(errors)


class MaintenanceWindow(models.Model):
    """A period when a machine cannot be booked."""

    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MachineScopedQuerySet.as_manager()

    class Meta:
        ordering = ["machine_id", "start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")),
                name="maintenance_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.machine}: {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": _("The end must be after the start.")})


class Qualification(models.Model):
    """Training a platform requires before someone may use a machine, or any
    machine of a type, on that platform."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="qualifications")
    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    machine_type = models.ForeignKey(
        MachineType, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, null=True, blank=True, related_name="qualifications"
    )

    objects = PlatformScopedQuerySet.as_manager()

    class Meta:
        ordering = ["platform_id", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(machine_type__isnull=True, machine__isnull=False)
                | Q(machine_type__isnull=False, machine__isnull=True),
                name="qualification_for_machine_xor_type",
                violation_error_message=_("A qualification covers either a machine or a type."),
            ),
            models.UniqueConstraint(
                fields=["platform", "name"], name="qualification_unique_name_per_platform"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.machine_id and self.platform_id and self.machine.platform_id != self.platform_id:
            errors["machine"] = _("This machine is on another platform.")
        if another_row_has(self, platform_id=self.platform_id, name=self.name):
            errors["name"] = _("This platform already has a qualification of that name.")
        if errors:
            raise ValidationError(errors)


class UserQualification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications"
    )
    qualification = models.ForeignKey(
        Qualification, on_delete=models.CASCADE, related_name="holders"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    granted_on = models.DateField(_("granted on"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)

    objects = UserQualificationQuerySet.as_manager()

    class Meta:
        ordering = ["qualification_id", "user_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "qualification"],
                name="userqualification_unique",
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gt=F("granted_on")),
                name="userqualification_expires_after_grant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.qualification}"

    def clean(self) -> None:
        errors = {}
        if self.expires_on and self.granted_on and self.expires_on <= self.granted_on:
            errors["expires_on"] = _("The expiry date must be after the grant date.")
        if another_row_has(self, user_id=self.user_id, qualification_id=self.qualification_id):
            errors["user"] = _("This person already holds this qualification.")
        if errors:
            raise ValidationError(errors)

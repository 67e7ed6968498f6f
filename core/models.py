import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from core.validators import (
    compact_siret,
    compact_vat_number,
    validate_single_line,
    validate_siret,
    validate_vat_number,
)


def hash_secret(secret: str) -> str:
    """Hash of a high-entropy random secret (API and feed tokens, invitations).

    The secrets are 256-bit random strings, so a fast hash is enough: there is
    no dictionary to guess from, and a lookup by hash stays one indexed query."""
    return hashlib.sha256(secret.encode()).hexdigest()


def another_row_has(instance: models.Model, **values) -> bool:
    """Whether a row other than `instance` holds `values`: lets `clean()` name the
    field of a multi-column unique constraint (Django reports those field-less)."""
    if any(value is None for value in values.values()):
        return False
    return type(instance)._default_manager.filter(**values).exclude(pk=instance.pk).exists()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; logs in with their email address."""

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(
        _("full name"), max_length=150, blank=True, validators=[validate_single_line]
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="fr"
    )
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        # One spelling per address, so uniqueness is case-insensitive.
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class OrganizationQuerySet(models.QuerySet):
    def visible_to(self, user) -> "OrganizationQuerySet":
        """The organizations `user` belongs to (superusers: all)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user)

    def administered_by(self, user) -> "OrganizationQuerySet":
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user, memberships__role=Membership.Role.ADMIN)


class Organization(models.Model):
    """An SME that books machines and receives invoices."""

    legal_name = models.CharField(
        _("legal name"), max_length=200, validators=[validate_single_line]
    )
    # NULL, not "", when absent: foreign SMEs have none, and NULLs never clash.
    siret = models.CharField(
        _("SIRET"),
        max_length=20,
        null=True,
        blank=True,
        unique=True,
        validators=[validate_siret],
        error_messages={"unique": _("An organization with this SIRET already exists.")},
        help_text=_("14-digit establishment number; required for French organizations."),
    )
    vat_number = models.CharField(
        _("VAT number"), max_length=20, blank=True, validators=[validate_vat_number]
    )
    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address (continued)"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = CountryField(_("country"), default="FR")
    billing_email = models.EmailField(_("billing email"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["legal_name", "id"]

    def __str__(self) -> str:
        return self.legal_name

    def clean(self) -> None:
        self.siret = compact_siret(self.siret or "") or None
        self.vat_number = compact_vat_number(self.vat_number)
        errors = {}
        if self.country == "FR" and not self.siret:
            errors["siret"] = _("A French organization needs its SIRET number.")
        if (
            self.siret
            and self.vat_number.startswith("FR")
            and len(self.vat_number) == 13
            and self.vat_number[4:] != self.siret[:9]
        ):
            errors["vat_number"] = _("This VAT number belongs to another SIREN than the SIRET.")
        if errors:
            raise ValidationError(errors)


class Membership(models.Model):
    """A user's role in an organization; a user may belong to several."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Administrator")
        MEMBER = "member", _("Member")
        ACCOUNTANT = "accountant", _("Accountant")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"],
                name="membership_unique_user_organization",
                violation_error_message=_("This user is already a member."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.organization} ({self.role})"


class Invitation(models.Model):
    """An organization admin invites someone by email; the link carries a secret."""

    LIFETIME_DAYS = 14

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(_("email address"))
    role = models.CharField(
        _("role"), max_length=20, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> "ApiTokenQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal API token for scripts. Only its hash is stored; the token
    itself is shown once, at creation."""

    PREFIX = "fbp_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    # The first characters, kept in clear so people can tell their tokens apart.
    hint = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def generate_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


class AuditEvent(models.Model):
    """Who did what to which object, and when. Written by services only."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept in clear so the trail survives the actor's deletion.
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=100)
    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"


class IdempotentRequest(models.Model):
    """A POST made with an `Idempotency-Key` header, and the answer it got: a
    retry with the same key gets the same answer instead of acting twice."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What was asked (method, path, body): the same key for another request is an error.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotentrequest_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.key}"

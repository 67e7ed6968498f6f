"""Validators for French and EU business identifiers (python-stdnum does the maths)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret as fr_siret


def validate_siret(value: str) -> None:
    try:
        fr_siret.validate(value)
    except StdnumError as exc:
        raise ValidationError(
            _("Enter a valid SIRET number: 14 digits with a valid check digit."),
            code="invalid_siret",
        ) from exc


def validate_vat_number(value: str) -> None:
    try:
        eu_vat.validate(value)
    except StdnumError as exc:
        raise ValidationError(
            _("Enter a valid EU VAT number, country prefix included (e.g. FR44732829320)."),
            code="invalid_vat_number",
        ) from exc


def compact_siret(value: str) -> str:
    return fr_siret.compact(value) if value else ""


def compact_vat_number(value: str) -> str:
    return eu_vat.compact(value) if value else ""

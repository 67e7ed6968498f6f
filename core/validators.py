"""Validators for French and EU business identifiers (python-stdnum does the maths)."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import bic as swift_bic
from stdnum import iban as iban_number
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


def validate_iban(value: str) -> None:
    try:
        iban_number.validate(value)
    except StdnumError as exc:
        raise ValidationError(
            _("Enter a valid IBAN, e.g. FR76 3000 6000 0112 3456 7890 189."), code="invalid_iban"
        ) from exc


def validate_bic(value: str) -> None:
    try:
        swift_bic.validate(value)
    except StdnumError as exc:
        raise ValidationError(
            _("Enter a valid BIC: 8 or 11 letters and digits, e.g. AGRIFRPP."), code="invalid_bic"
        ) from exc


def validate_single_line(value: str) -> None:
    """Names end up in email subjects and invoice headers: no line breaks or
    other control characters."""
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValidationError(
            _("Use a single line without control characters."), code="control_characters"
        )


# The compact forms are what is stored. They must not fail on a value the
# validators above have already refused: full_clean() runs clean() regardless.
def _compacting(number_module):
    """The stored form of a number (python-stdnum's compact()), or what was typed."""

    def compact(value: str) -> str:
        try:
            return number_module.compact(value) if value else ""
        except StdnumError:
            return value

    return compact


compact_siret = _compacting(fr_siret)
compact_vat_number = _compacting(eu_vat)
compact_iban = _compacting(iban_number)
compact_bic = _compacting(swift_bic)

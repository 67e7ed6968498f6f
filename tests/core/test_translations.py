"""The French catalogue is complete, compiled, and served to French speakers."""

import gettext
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import translation

from tests import factories

LOCALE = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
NBSP = "\u00a0"


def _key(entry: polib.POEntry) -> str:
    """A msgid with a context is keyed "context\x04msgid", as gettext does."""
    return f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid


@pytest.fixture(scope="module")
def po() -> polib.POFile:
    po = polib.pofile(str(LOCALE / "django.po"))
    assert po.metadata["Language"] == "fr"
    assert po.fuzzy_entries() == []
    return po


@pytest.fixture(scope="module")
def catalogue(po) -> dict[str, str]:
    """{msgid: msgstr} for the entries without a plural."""
    return {
        _key(entry): entry.msgstr for entry in po if not entry.obsolete and not entry.msgid_plural
    }


@pytest.fixture(scope="module")
def plurals(po) -> dict[str, tuple[str, list[str]]]:
    """{msgid: (msgid_plural, [French forms])} for the entries with a plural."""
    return {
        _key(entry): (
            entry.msgid_plural,
            [entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural)],
        )
        for entry in po
        if not entry.obsolete and entry.msgid_plural
    }


@pytest.fixture(scope="module")
def translations(catalogue, plurals) -> list[str]:
    """Every French text, each plural form included."""
    return [*catalogue.values(), *(form for _, forms in plurals.values() for form in forms)]


def test_every_entry_is_translated(catalogue):
    assert len(catalogue) > 100
    assert [msgid for msgid, msgstr in catalogue.items() if not msgstr.strip()] == []


def test_every_plural_entry_has_both_french_forms(plurals):
    assert [msgid for msgid, (_, forms) in plurals.items() if len(forms) != 2] == []
    assert [
        msgid for msgid, (_, forms) in plurals.items() if not all(f.strip() for f in forms)
    ] == []


def test_translations_keep_their_placeholders_and_line_breaks(catalogue, plurals):
    def same(msgstr: str, msgid: str) -> bool:
        return sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(msgid)) and (
            msgstr.count("\n") == msgid.count("\n")
        )

    for msgid, msgstr in catalogue.items():
        assert same(msgstr, msgid), msgid
    # French uses the singular for 0 and 1, the plural from 2: each form mirrors its English one.
    for msgid, (msgid_plural, (singular, plural)) in plurals.items():
        assert same(singular, msgid.rpartition("\x04")[2]), msgid
        assert same(plural, msgid_plural), msgid_plural


def test_french_punctuation_takes_a_non_breaking_space(translations):
    for msgstr in translations:
        assert not re.search(r" [;:!?»]|« ", msgstr), msgstr
        # Not a URL's "://" nor a clock's "08:00".
        assert not re.search(rf"[^\s{NBSP}][;!?»]|[^\s{NBSP}]:(?!//|\d)", msgstr), msgstr


def test_the_compiled_catalogue_matches_the_po_file(catalogue):
    with open(LOCALE / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    assert {msgid: compiled.gettext(msgid) for msgid in catalogue} == catalogue
    assert compiled.info()["language"] == "fr"
    # French plural rule, plural=(n > 1): 0 and 1 take the singular form.
    assert [compiled.plural(n) for n in (0, 1, 2, 10)] == [0, 0, 1, 1]


def test_the_compiled_catalogue_has_the_plural_forms(plurals):
    assert plurals  # the pages and emails count things
    with open(LOCALE / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)

    def forms(msgid: str, msgid_plural: str) -> list[str]:
        context, _, text = msgid.rpartition("\x04")
        if context:
            return [compiled.npgettext(context, text, msgid_plural, n) for n in (1, 2)]
        return [compiled.ngettext(text, msgid_plural, n) for n in (1, 2)]

    served = {msgid: forms(msgid, msgid_plural) for msgid, (msgid_plural, _) in plurals.items()}
    assert served == {msgid: french for msgid, (_, french) in plurals.items()}


def test_django_serves_the_project_catalogue_in_french(catalogue, plurals):
    """LOCALE_PATHS wins over Django's and the apps' catalogues for shared msgids."""

    def translate(msgid: str) -> str:
        context, _, text = msgid.rpartition("\x04")
        return translation.pgettext(context, text) if context else translation.gettext(text)

    with translation.override("fr"):
        served = {msgid: translate(msgid) for msgid in catalogue}
    assert served == catalogue
    with translation.override("fr"):
        counted = {
            msgid: [translation.ngettext(msgid, msgid_plural, n) for n in (0, 1, 2)]
            for msgid, (msgid_plural, _) in plurals.items()
            if "\x04" not in msgid
        }
    assert counted == {
        msgid: [forms[0], forms[0], forms[1]]
        for msgid, (_, forms) in plurals.items()
        if "\x04" not in msgid
    }
    with translation.override("en"):
        assert translation.gettext("legal name") == "legal name"


# --- Over HTTP ----------------------------------------------------------------------------


def siret_errors(api, language: str | None) -> list[str]:
    user = factories.UserFactory(email="founder@sme.example")
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = api.as_user(user).post(
        "/api/v1/organizations/",
        {"legal_name": "Atelier Dupont SARL", "country": "FR", "siret": "1234"},
        **headers,
    )
    assert response.status_code == 400, response.content
    return response.json()["error"]["details"]["fields"]["siret"]


def test_the_api_explains_a_bad_siret_in_french(api, db):
    assert siret_errors(api, "fr-FR,fr;q=0.9,en;q=0.5") == [
        f"Saisissez un numéro SIRET valide{NBSP}: 14 chiffres avec une clé de contrôle correcte."
    ]


def test_the_api_answers_in_english_by_default(api, db):
    assert siret_errors(api, None) == [
        "Enter a valid SIRET number: 14 digits with a valid check digit."
    ]


def test_the_api_names_the_allowed_staff_roles_in_french(api, world):
    """Role names inside a translated message are translated too."""
    response = api.as_user(world.a.operator).patch(
        f"/api/v1/machines/{world.a.machine.pk}/",
        {"name": "Renamed"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 403, response.content
    assert response.json()["error"]["message"] == (
        "Seule l’équipe de cette plateforme (gestionnaire) peut effectuer cette action."
    )


def test_the_login_page_speaks_french(client, db):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert "Aller au contenu" in html  # our layout
    assert "Mot de passe" in html  # allauth's own French
    assert "Se connecter" in html
    assert "Sign in" not in html

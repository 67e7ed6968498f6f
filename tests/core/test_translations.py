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


@pytest.fixture(scope="module")
def catalogue() -> dict[str, str]:
    """{msgid: msgstr}; a msgid with a context is keyed "context\x04msgid", as gettext does."""
    po = polib.pofile(str(LOCALE / "django.po"))
    assert po.metadata["Language"] == "fr"
    assert po.fuzzy_entries() == []
    return {
        (f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid): entry.msgstr
        for entry in po
        if not entry.obsolete
    }


def test_every_entry_is_translated(catalogue):
    assert len(catalogue) > 100
    assert [msgid for msgid, msgstr in catalogue.items() if not msgstr.strip()] == []


def test_translations_keep_their_placeholders_and_line_breaks(catalogue):
    for msgid, msgstr in catalogue.items():
        assert sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(msgid)), msgid
        assert msgstr.count("\n") == msgid.count("\n"), msgid


def test_french_punctuation_takes_a_non_breaking_space(catalogue):
    for msgstr in catalogue.values():
        assert not re.search(r" [;:!?»]|« ", msgstr), msgstr
        assert not re.search(rf"[^\s{NBSP}][;!?»]|[^\s{NBSP}]:(?!//)", msgstr), msgstr


def test_the_compiled_catalogue_matches_the_po_file(catalogue):
    with open(LOCALE / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    assert {msgid: compiled.gettext(msgid) for msgid in catalogue} == catalogue
    assert compiled.info()["language"] == "fr"
    # French plural rule, plural=(n > 1): 0 and 1 take the singular form.
    assert [compiled.plural(n) for n in (0, 1, 2, 10)] == [0, 0, 1, 1]


def test_django_serves_the_project_catalogue_in_french(catalogue):
    """LOCALE_PATHS wins over Django's and the apps' catalogues for shared msgids."""

    def translate(msgid: str) -> str:
        context, _, text = msgid.rpartition("\x04")
        return translation.pgettext(context, text) if context else translation.gettext(text)

    with translation.override("fr"):
        served = {msgid: translate(msgid) for msgid in catalogue}
    assert served == catalogue
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

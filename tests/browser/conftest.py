"""A real browser (Debian's Chromium, driven by Playwright) against Django's live
server. Marked `browser`: `make test-browser` runs them once, on SQLite.

Without /usr/bin/chromium the tests are skipped, saying so; with CI=true they fail
instead, since CI installs Chromium and a silent skip would hide a broken leg."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import sync_playwright

from tests.billing.support import flush_despite_the_guard

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "fabpool-demo"  # seed_demo's


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists() or os.environ.get("CI") == "true":
        return  # in CI a missing Chromium makes the tests fail, not vanish
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: browser tests skipped")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# Playwright's sync API keeps an event loop running in this thread while it is started;
# Django's ORM then refuses to run unless DJANGO_ALLOW_ASYNC_UNSAFE says this
# (single-threaded test) use is fine. pytest-playwright starts Playwright once per
# session, which would leave both the loop and the variable (inherited by every
# subprocess, e.g. `check --deploy`, which rejects it) to the rest of the suite:
# here Playwright lives for one module, and the variable with it.


@pytest.fixture(scope="module")
def playwright():
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    started = sync_playwright().start()
    yield started
    started.stop()
    if before is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="module")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def launch_browser(browser_type_launch_args, browser_type):
    return lambda **kwargs: browser_type.launch(**{**browser_type_launch_args, **kwargs})


@pytest.fixture(scope="module")
def browser(launch_browser):
    launched = launch_browser()
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def demo(live_server, settings):
    """The demo platforms, machines and people (manage.py seed_demo), and its issued
    invoices, which the database's guard lets only flush_despite_the_guard remove."""
    settings.ALLOWED_HOSTS = ["*"]
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield live_server
    flush_despite_the_guard()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


# A page in each way people come: English, French, a French phone. Downloads are
# accepted (the accountants' journeys save their PDF and FEC).
def _page(browser, **options):
    context = browser.new_context(accept_downloads=True, **options)
    return context, context.new_page()


@pytest.fixture
def english(browser):
    context, page = _page(browser, locale="en-GB", viewport={"width": 1280, "height": 900})
    yield page
    context.close()


@pytest.fixture
def french(browser):
    context, page = _page(browser, locale="fr-FR", viewport={"width": 1280, "height": 900})
    yield page
    context.close()


@pytest.fixture
def phone(browser):
    context, page = _page(
        browser,
        locale="fr-FR",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    context.close()


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base_url}/")

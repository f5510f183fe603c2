"""Portal fixtures: members of a provider with each role, and browser sessions that passed the
second factor."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.portal.models import Membership, Role
from tests.factories import ProviderFactory

PASSWORD = "un mot de passe assez long 42"


def make_member(organisation, role: str = Role.ADMINISTRATOR, username: str = "") -> User:
    kind = "provider" if hasattr(organisation, "vaults") else "issuer"
    username = username or f"{role}-{organisation.pk.hex[:6]}"
    user = User.objects.create_user(username, f"{username}@org.example", PASSWORD)
    Membership.objects.create(user=user, role=role, **{kind: organisation})
    TOTPDevice.objects.create(user=user, name="portal", confirmed=True)
    return User.objects.select_related("membership").get(pk=user.pk)


def signed_in(user: User) -> Client:
    """A session that passed the password and the TOTP code."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = user.totpdevice_set.get().persistent_id
    session.save()
    return client


@pytest.fixture
def bare_provider(db):
    """An active provider with no endpoint and no certificate yet."""
    return ProviderFactory()


@pytest.fixture
def administrator(provider):
    return make_member(provider, Role.ADMINISTRATOR)


@pytest.fixture
def operator(provider):
    return make_member(provider, Role.OPERATOR)


@pytest.fixture
def viewer(provider):
    return make_member(provider, Role.VIEWER)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for every browser test (the system's, through ``executable_path``)."""
    from tests.portal.browser import require_chromium

    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, request):
    """Pages in separate browser contexts (one per person: their own cookies), in French.
    Each is screenshotted if the test fails, then closed."""
    from tests.portal.browser import ARTIFACTS

    contexts = []

    def open_page(locale: str = "fr-FR"):
        # bypass_csp lets the test inject axe-core; the pages' own CSP is tested without a
        # browser (test_headers.py)
        context = browser.new_context(
            bypass_csp=True, locale=locale, viewport={"width": 1280, "height": 800}
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    report = getattr(request.node, "rep_call", None)
    for number, context in enumerate(contexts):
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for page in context.pages:
                path = ARTIFACTS / f"{request.node.name}-{number}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}")
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so the browser fixture screenshots failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

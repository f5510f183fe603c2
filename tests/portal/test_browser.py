"""Journeys in a real browser: a provider applies on the web, a federation admin approves it,
its administrator enrols TOTP, publishes an endpoint and a certificate and sees that it can
receive documents; every portal page passes axe-core; the language switch."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import User

from registry import x509
from registry.models import Provider
from registry.portal.models import Role
from registry.services import accounts, organisations
from registry.services.common import Actor
from tests.portal.browser import assert_accessible, current_code, follow
from tests.portal.conftest import PASSWORD

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_provider_applies_is_approved_enrols_and_can_receive_documents(page, live_server):
    url = live_server.url
    # a provider applies on the web
    page.goto(f"{url}/apply/provider/")
    assert_accessible(page)
    page.get_by_label("Raison sociale").fill("Coffre Navigateur SAS")
    page.get_by_label("SIREN").fill("732 829 320")
    page.get_by_label("Courriel du contact technique").fill("tech@coffre.example")
    page.get_by_label("Courriel du contact sécurité").fill("soc@coffre.example")
    follow(page, page.get_by_role("button", name="Envoyer la candidature"))
    assert "candidat" in page.locator("#application-status").inner_text()
    status_link = page.locator("#status-link").inner_text()
    assert_accessible(page)
    # a federation admin approves it and invites its first administrator
    admin = User.objects.create_superuser("root", "root@registry.example", PASSWORD)
    provider = Provider.objects.get(legal_name="Coffre Navigateur SAS")
    organisations.provider_set_status(
        actor=Actor.for_user(admin), provider=provider, status="active", reason="checked"
    )
    page.goto(status_link)
    assert "actif" in page.locator("#application-status").inner_text()
    _invitation, token = accounts.portal_user_invite(
        actor=Actor.for_user(admin),
        organisation=provider,
        email="anne@coffre.example",
        role=Role.ADMINISTRATOR,
    )
    # its administrator creates her account and enrols TOTP in the browser
    page.goto(f"{url}/portal/invitation/{token}/")
    assert_accessible(page)
    page.get_by_label("Votre nom").fill("Anne Durand")
    page.get_by_label("Identifiant").fill("anne")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_label("Mot de passe (confirmation)").fill(PASSWORD)
    follow(page, page.get_by_role("button", name="Créer mon compte"))
    assert page.locator("figure.qr svg").is_visible()
    assert_accessible(page)
    page.get_by_label("Code à six chiffres").fill(current_code("anne", confirmed=False))
    follow(page, page.get_by_role("button", name="Confirmer"))
    assert page.locator("#recovery-codes li").count() == 10
    recovery_code = page.locator("#recovery-codes li").first.inner_text()
    assert_accessible(page)
    follow(page, page.get_by_role("link", name="Je les ai notés"))
    assert "ne peut pas recevoir" in page.locator("#readiness").inner_text()
    assert_accessible(page)
    # she publishes an endpoint
    follow(page, page.get_by_role("link", name="Adresses de dépôt").first)
    assert_accessible(page)
    page.get_by_label("Adresse de dépôt (https://…)").fill(
        "https://in.coffre-navigateur.example/v1"
    )
    page.get_by_label("relevés bancaires").check()
    follow(page, page.get_by_role("button", name="Publier"))
    assert "Adresse de dépôt publiée" in page.content()
    # and a certificate, after a mistake explained in plain words
    follow(page, page.get_by_role("link", name="Certificats"))
    page.get_by_label("Certificat (texte PEM)").fill("not a certificate")
    follow(page, page.get_by_role("button", name="Publier"))
    assert "Ce n'est pas un certificat PEM" in page.content()
    assert_accessible(page)
    pem, _key = x509.generate_certificate("Coffre Navigateur documents", "encryption")
    page.get_by_label("Certificat (texte PEM)").fill(pem)
    follow(page, page.get_by_role("button", name="Publier"))
    assert "Certificat publié" in page.content()
    assert_accessible(page)
    # then the start page says it can receive documents
    follow(page, page.get_by_role("link", name="Coffre Navigateur SAS"))
    assert "peut recevoir des documents" in page.locator("#readiness").inner_text()
    assert "ne peut pas" not in page.locator("#readiness").inner_text()
    # the other portal pages pass axe too
    for path in (
        "/portal/vaults/",
        "/portal/transfers/",
        "/portal/messages/",
        "/portal/webhook/",
        "/portal/tokens/",
        "/portal/users/",
        "/portal/audit/",
    ):
        page.goto(f"{url}{path}")
        assert_accessible(page)
    # and she signs out; signing in again needs a second factor: here a recovery code (the
    # app's code of this 30-second step was used at enrolment, and a code works once)
    follow(page, page.get_by_role("button", name=re.compile("Se déconnecter")))
    page.get_by_label("Identifiant").fill("anne")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_label(re.compile("Code de votre application")).fill(recovery_code)
    follow(page, page.get_by_role("button", name="Se connecter"))
    assert "peut recevoir des documents" in page.locator("#readiness").inner_text()


def test_the_language_switch(page, live_server):
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert_accessible(page)
    page.select_option("#language", "en")
    follow(page, page.get_by_role("button", name="Changer de langue"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="You keep your documents in a vault").is_visible()

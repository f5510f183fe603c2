"""Journeys of two people at once, in a real browser: a transfer from the holder's code to the
approval (the gaining and the losing provider, each in their own browser context); an issuer
resolving a file of 10,000 numbers and checking what it downloads; a federation admin closing a
vault after the confirmation page. axe-core checks every portal page visited."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re

import pytest
from django.contrib.auth.models import User
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry import numbers
from registry.models import AuditEvent, Transfer, TransferState, Vault, VaultStatus
from registry.portal.models import Role
from registry.services import vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import VaultFactory
from tests.portal.browser import assert_accessible, current_code, follow, sign_in
from tests.portal.conftest import PASSWORD, make_member

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.django_db(transaction=True)


def nav(page, name: str) -> None:
    """Follow a link of the portal's navigation bar."""
    bar = page.get_by_role("navigation", name="Portail")
    follow(page, bar.get_by_role("link", name=name, exact=True))


def test_a_transfer_from_request_to_approval_by_two_providers(
    new_page, live_server, provider, other_provider
):
    url = live_server.url
    vault = VaultFactory(provider=provider)
    make_member(provider, Role.OPERATOR, "lea")  # at the losing provider
    make_member(other_provider, Role.OPERATOR, "gus")  # at the gaining provider
    # Léa, at the holder's current provider, issues the holder's transfer code
    lea = new_page()
    sign_in(lea, url, "lea", PASSWORD)
    lea.goto(f"{url}/portal/vaults/{vault.number}/")
    assert_accessible(lea)
    follow(lea, lea.get_by_role("button", name="Émettre un code de transfert"))
    code = lea.locator("#transfer-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){4}", code)
    assert_accessible(lea)
    # the holder gives it to Gus, at the gaining provider, who requests the move in his browser
    gus = new_page()
    sign_in(gus, url, "gus", PASSWORD)
    nav(gus, "Transferts")
    assert_accessible(gus)
    gus.get_by_label("Numéro de coffre").fill(numbers.format_display(vault.number).lower())
    gus.get_by_label("Code de transfert donné par le titulaire").fill(code.lower())
    gus.get_by_label("Votre référence du consentement du titulaire").fill("consentement-7")
    follow(gus, gus.get_by_role("button", name="Demander le transfert"))
    assert "Transfert demandé" in gus.locator("main").inner_text()
    incoming = gus.locator("table").nth(1)
    assert "en attente" in incoming.inner_text()
    # Léa finds the request among her messages and approves it
    nav(lea, "Messages")
    assert "le transfert d'un de vos coffres est demandé" in lea.locator("#messages").inner_text()
    assert_accessible(lea)
    follow(lea, lea.get_by_role("link", name="le transfert"))
    assert "en attente" in lea.locator("#transfer-state").inner_text()
    assert re.search(r"\d+ jours? ouvrés? restants?", lea.locator("main").inner_text())
    assert_accessible(lea)
    follow(lea, lea.get_by_role("button", name="Approuver le transfert"))
    # both see the outcome: the vault now routes to Gus's organisation
    assert "approuvé par le prestataire cédant" in lea.locator("#transfer-state").inner_text()
    assert "Transfert approuvé" in lea.locator("main").inner_text()
    nav(gus, "Transferts")
    follow(gus, gus.locator("table").nth(1).get_by_role("link").first)
    assert "approuvé par le prestataire cédant" in gus.locator("#transfer-state").inner_text()
    assert_accessible(gus)
    nav(gus, "Messages")
    assert "votre demande de transfert est approuvée" in gus.locator("#messages").inner_text()
    gus.goto(f"{url}/portal/vaults/{vault.number}/")
    assert numbers.format_display(vault.number) in gus.locator("#vault-number").inner_text()
    assert_accessible(gus)
    # and the registry agrees, with each person named in the audit trail
    vault.refresh_from_db()
    assert vault.provider == other_provider
    transfer = Transfer.objects.get(vault=vault)
    assert transfer.state == TransferState.CLIENT_APPROVED
    actors = dict(
        AuditEvent.objects.filter(target_id=str(transfer.pk)).values_list("action", "actor")
    )
    assert actors["transfer:requested"].startswith(f"user:gus provider:{other_provider.pk}")
    assert actors["transfer:client_approved"].startswith(f"user:lea provider:{provider.pk}")


def test_an_issuer_resolves_a_file_of_10000_numbers_and_downloads_the_plan(
    page, live_server, issuer, provider, other_provider
):
    url = live_server.url
    actor = Actor.system("tests")
    # given 40 deliverable vaults at two providers, 5 closed, 3 on hold
    routable = [VaultFactory(provider=provider).number for _ in range(25)]
    routable += [VaultFactory(provider=other_provider).number for _ in range(15)]
    closed = [VaultFactory(provider=provider) for _ in range(5)]
    for vault in closed:
        vaults.vault_close(actor=actor, vault=vault)
    held = [VaultFactory(provider=other_provider) for _ in range(3)]
    for vault in held:
        vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)
    # two numbers mistyped, and the rest well formed but unknown: 10,000 lines in all
    mistyped = [n[:-1] + str((int(n[-1]) + 1) % 10) for n in routable[:2]]
    known = set(routable) | {v.number for v in closed + held}
    unknown: set[str] = set()
    while len(unknown) < 10_000 - 50:
        number = numbers.draw("FR", "VLT1").value
        if number not in known:
            unknown.add(number)
    lines = routable + [v.number for v in closed + held] + mistyped + sorted(unknown)
    body = ("\n".join(numbers.format_display(n) for n in lines) + "\n").encode()
    assert len(lines) == 10_000
    make_member(issuer, Role.OPERATOR, "ines")
    # when Inès sends the file from the plans page
    sign_in(page, url, "ines", PASSWORD)
    nav(page, "Plans de routage")
    assert_accessible(page)
    page.get_by_label("Fichier de numéros de coffre").set_input_files(
        files=[{"name": "releves-2026-11.csv", "mimeType": "text/csv", "buffer": body}]
    )
    page.get_by_label("Finalité").select_option("bank_statement")
    page.get_by_role("button", name="Résoudre").click()
    page.wait_for_url(re.compile(r"/portal/plans/[0-9a-f-]{36}/$"))
    # then the plan's page gives the counts and why numbers cannot be delivered
    assert page.locator("#plan-asked").inner_text() == "10000"
    assert page.locator("#plan-routable").inner_text() == "40"
    assert page.locator("#plan-unroutable").inner_text() == "9960"
    reasons = page.locator("#plan-reasons").inner_text()
    assert "5 closed — le coffre est fermé" in reasons
    assert "3 hold — les dépôts dans ce coffre sont suspendus" in reasons
    assert "9950 unknown — aucun coffre n'a ce numéro" in reasons
    assert_accessible(page)
    # and the JSON download is the answer whose hash the page shows
    with page.expect_download() as download:
        page.locator("#download-json").click()
    answer_bytes = download.value.path().read_bytes()
    assert hashlib.sha256(answer_bytes).hexdigest() == (
        page.locator("#plan-answer-sha256").inner_text()
    )
    answer = json.loads(answer_bytes)
    assert answer["summary"]["asked"] == 10_000
    assert answer["summary"]["unroutable_by_reason"] == {
        "closed": 5,
        "hold": 3,
        "invalid:invalid_check_digits": 2,
        "unknown": 9950,
    }
    groups = {g["provider"]["id"]: sorted(g["numbers"]) for g in answer["groups"]}
    assert groups == {
        str(provider.pk): sorted(routable[:25]),
        str(other_provider.pk): sorted(routable[25:]),
    }
    # the CSV download has one row per number: where to deliver, or why not
    with page.expect_download() as download:
        page.locator("#download-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    assert len(rows) == 10_000
    by_number = {row["number"]: row for row in rows}
    assert {n for n, row in by_number.items() if row["routable"] == "yes"} == set(routable)
    assert by_number[routable[0]]["endpoint"] == provider.endpoints.get().url
    assert by_number[routable[30]]["provider_id"] == str(other_provider.pk)
    for vault in closed:
        assert (by_number[vault.number]["reason"], by_number[vault.number]["explanation"]) == (
            "closed",
            "le coffre est fermé",
        )
    for vault in held:
        assert by_number[vault.number]["reason"] == "hold"
    for typo in mistyped:
        assert by_number[numbers.format_display(typo)]["reason"] == "invalid:invalid_check_digits"
    assert all(by_number[n]["reason"] == "unknown" for n in list(unknown)[:100])


def test_a_federation_admin_closes_a_vault_after_the_confirmation_page(page, live_server, provider):
    url = live_server.url
    kept, closing = VaultFactory(provider=provider), VaultFactory(provider=provider)
    admin = User.objects.create_superuser("root", "root@registry.example", PASSWORD)
    TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    # the admin signs in with the password and the code
    page.goto(f"{url}/admin/")
    page.locator("input[name=username]").fill("root")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=otp_token]").fill(current_code("root"))
    follow(page, page.locator("input[type=submit]"))
    assert "Candidatures de prestataires en attente" in page.locator("#work-queue").inner_text()
    # picks one vault and the "close" action
    page.goto(f"{url}/admin/registry/vault/")
    page.locator(f"input[name=_selected_action][value={closing.number}]").check()
    page.locator("select[name=action]").select_option("close")
    follow(page, page.get_by_role("button", name="Envoyer"))
    # the confirmation page says what it will do, and nothing has changed yet
    impact = page.locator("#impact").inner_text()
    assert "1 coffre joignable aujourd'hui devient injoignable." in impact
    assert "La fermeture est irréversible" in impact
    assert numbers.format_display(closing.number) in page.locator("#content").inner_text()
    assert Vault.objects.get(pk=closing.pk).status == VaultStatus.ACTIVE
    # a confirmation without a reason is not sent (and the server would refuse it too)
    page.get_by_role("button", name="Confirmer").click()
    assert page.get_by_label("Motif").evaluate("field => field.validity.valueMissing")
    assert page.locator("#impact").is_visible()
    assert Vault.objects.get(pk=closing.pk).status == VaultStatus.ACTIVE
    # with a reason it runs, and the list says so
    page.get_by_label("Motif").fill("Demande de fermeture du titulaire, dossier 4512")
    follow(page, page.get_by_role("button", name="Confirmer"))
    assert "Fermés : 1." in page.locator("ul.messagelist").inner_text()
    assert Vault.objects.get(pk=closing.pk).status == VaultStatus.CLOSED
    assert Vault.objects.get(pk=kept.pk).status == VaultStatus.ACTIVE
    event = AuditEvent.objects.get(action="vault:closed", target_id=closing.number)
    assert event.actor == "user:root"
    assert "dossier 4512" in json.dumps(event.data, ensure_ascii=False)

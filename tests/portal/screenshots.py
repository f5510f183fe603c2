"""The README's screenshots: `make screenshots` runs this file with pytest (not part of
`make test`). It loads the demo federation into a throwaway test database, serves it with
pytest-django's live server, signs in as the demo's provider and issuer administrators and as
the federation admin in the system's Chromium, and saves 1280x800 PNGs of the key pages to
docs/screenshots/ (optimised with optipng when it is installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from registry import x509
from registry.models import Issuer, Provider, Vault, VaultStatus
from registry.services import routing, transfers
from registry.services.common import Actor
from tests.portal.browser import current_code, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "un mot de passe de démonstration"

pytestmark = pytest.mark.django_db(transaction=True)


def _demo() -> tuple[Provider, Issuer]:
    """The demo federation (small), plus what makes the pages worth a picture: a transfer in
    each direction, a certificate rollover, the people's passwords known."""
    call_command("load_demo", vaults=600, stdout=open(os.devnull, "w"))  # noqa: SIM115
    actor = Actor.system("screenshots")
    atlantique, *others = Provider.objects.order_by("legal_id")
    for index, (losing, gaining) in enumerate([(others[0], atlantique), (atlantique, others[1])]):
        vault = Vault.objects.filter(provider=losing, status=VaultStatus.ACTIVE).order_by("number")[
            index * 7 + 3
        ]
        _code, value = transfers.transfer_code_issue(actor=actor, provider=losing, vault=vault)
        transfers.transfer_request(
            actor=actor,
            gaining_provider=gaining,
            number=vault.number,
            code=value,
            consent_reference=f"MANDAT-2026-{4810 + index}",
        )
    now = timezone.now()
    pem, _key = x509.generate_certificate(
        "Coffre Numérique Atlantique chiffrement 2027",
        "encryption",
        not_before=now - timedelta(days=2),
        not_after=now + timedelta(days=730),
    )
    routing.certificate_upload(actor=actor, provider=atlantique, use="encryption", pem=pem)
    for username in ("provider-admin", "issuer-admin", "admin"):
        user = User.objects.get(username=username)
        user.set_password(PASSWORD)
        user.save()
    return atlantique, Issuer.objects.order_by("legal_id").first()


def _save(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", str(path)], check=True)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


def test_screenshots(new_page, live_server):
    url = live_server.url
    _demo()
    visitor = new_page()
    visitor.goto(f"{url}/")
    _save(visitor, "home-fr")

    provider = new_page()
    sign_in(provider, url, "provider-admin", PASSWORD)
    _save(provider, "provider-start")
    provider.goto(f"{url}/portal/certificates/")
    _save(provider, "provider-certificates")
    provider.goto(f"{url}/portal/transfers/")
    _save(provider, "provider-transfers")

    issuer = new_page()
    sign_in(issuer, url, "issuer-admin", PASSWORD)
    issuer.goto(f"{url}/portal/plans/")
    numbers = Vault.objects.order_by("number").values_list("number", flat=True)[:400]
    body = ("\n".join(numbers) + "\nFR00 VLT1 0000 0000 0000\n").encode()
    issuer.get_by_label("Fichier de numéros de coffre").set_input_files(
        files=[{"name": "releves-novembre.csv", "mimeType": "text/csv", "buffer": body}]
    )
    issuer.get_by_label("Finalité").select_option("bank_statement")
    issuer.get_by_role("button", name="Résoudre").click()
    issuer.wait_for_url("**/portal/plans/*/")
    _save(issuer, "issuer-plan-result")
    issuer.goto(f"{url}/portal/plans/")
    _save(issuer, "issuer-plan-upload")

    admin = new_page()
    admin.goto(f"{url}/admin/")
    admin.locator("input[name=username]").fill("admin")
    admin.locator("input[name=password]").fill(PASSWORD)
    admin.locator("input[name=otp_token]").fill(current_code("admin"))
    admin.locator("input[type=submit]").click()
    admin.locator("#work-queue").wait_for()
    _save(admin, "admin-work-queue")

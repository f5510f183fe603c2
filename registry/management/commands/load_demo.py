"""Load a small demo federation (idempotent) and print how to use it."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from stdnum import luhn

from directory import checkpoints, proven
from registry import numbers, x509
from registry.management.commands.add_totp_device import draw_qr
from registry.models import (
    ApiToken,
    Certificate,
    CertificateUse,
    Endpoint,
    Issuer,
    OrganisationStatus,
    Provider,
    Vault,
    VaultStatus,
)
from registry.portal.models import Role
from registry.services import accounts, organisations, routing, tokens, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind

PROVIDERS = [
    ("Coffre Numérique Atlantique SAS", "coffre-atlantique.example", ["NF Z42-020"]),
    ("Digiposte Démo SA", "digiposte-demo.example", ["NF Z42-020", "ISO 27001"]),
    ("Safe Box Provence SARL", "safebox-provence.example", []),
    ("Archives Alpines SAS", "archives-alpines.example", ["NF Z42-020"]),
    ("Lumière Vault SAS", "lumiere-vault.example", []),
]
ISSUERS = [
    ("Banque Démo du Centre SA", ["bank_statement"]),
    ("Énergie Démo SAS", ["invoice"]),
]
VAULTS = 10_000
HELD, SERVER_HELD, CLOSED = 6, 2, 5
BATCH = 1000


def demo_siren(index: int) -> str:
    body = f"9{index:07d}0"[:8]
    return body + luhn.calc_check_digit(body)


class Command(BaseCommand):
    help = (
        "Create (or top up) a demo federation: 5 providers, 2 issuers, 10,000 vaults, an admin "
        "with a TOTP device; print credentials, tokens and curl commands."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--vaults", type=int, default=VAULTS)

    def handle(self, *args, base_url: str, vaults: int, **options):
        actor = Actor.system("load_demo")
        providers = [self._provider(actor, i, *spec) for i, spec in enumerate(PROVIDERS)]
        issuers = [self._issuer(actor, i, *spec) for i, spec in enumerate(ISSUERS)]
        self._vaults(actor, providers, vaults)
        self._holds_and_closures(actor, providers)
        self._checkpoint()
        password, device = self._admin()
        issuer_token = self._token(actor, issuers[0])
        provider_token = self._token(actor, providers[0])
        members = [
            self._member("provider-admin", providers[0]),
            self._member("issuer-admin", issuers[0]),
        ]
        self._print(base_url, password, device, issuer_token, provider_token, providers[0])
        self._print_members(base_url, members)

    # --- records ----------------------------------------------------------------------------

    def _provider(self, actor, index, name, domain, certifications) -> Provider:
        siren = demo_siren(index + 1)
        provider = Provider.objects.filter(legal_id=siren).first()
        if provider is None:
            provider = organisations.provider_apply(
                actor=actor,
                legal_name=name,
                legal_id=siren,
                contact_name="Demo contact",
                technical_email=f"tech@{domain}",
                security_email=f"security@{domain}",
                certifications=certifications,
            )
        if provider.status == OrganisationStatus.APPLIED:
            provider = organisations.provider_set_status(
                actor=actor,
                provider=provider,
                status=OrganisationStatus.ACTIVE,
                reason="demo federation",
            )
        if not Endpoint.objects.active().filter(provider=provider).exists():
            routing.endpoint_create(
                actor=actor,
                provider=provider,
                transport_profile="vault-pivot-https/1",
                url=f"https://deliver.{domain}/pivot/v1",
                document_types=["bank_statement", "payslip", "invoice"],
            )
        if (
            not Certificate.objects.valid()
            .filter(provider=provider, use=CertificateUse.ENCRYPTION)
            .exists()
        ):
            pem, _key = x509.generate_certificate(f"{name} document encryption", "encryption")
            routing.certificate_upload(actor=actor, provider=provider, use="encryption", pem=pem)
        self.stdout.write(f"provider  {provider.legal_name} ({provider.status})")
        return provider

    def _issuer(self, actor, index, name, purposes) -> Issuer:
        siren = demo_siren(100 + index)
        issuer = Issuer.objects.filter(legal_id=siren).first()
        if issuer is None:
            issuer = organisations.issuer_apply(
                actor=actor,
                legal_name=name,
                legal_id=siren,
                technical_email="tech@issuer.example",
                security_email="security@issuer.example",
                purposes=purposes,
            )
        if issuer.status == OrganisationStatus.APPLIED:
            issuer = organisations.issuer_set_status(
                actor=actor,
                issuer=issuer,
                status=OrganisationStatus.ACTIVE,
                reason="demo federation",
            )
        self.stdout.write(f"issuer    {issuer.legal_name} ({issuer.status})")
        return issuer

    def _vaults(self, actor, providers, target: int) -> None:
        missing = target - Vault.objects.filter(provider__in=providers).count()
        done = 0
        # A terminal gets one line rewritten in place; a log or a pipe gets whole lines, one per
        # tenth of the work, instead of carriage returns glued into a single line.
        live = self.stdout.isatty()
        step, reported = max(missing // 10, 1), 0
        while missing > 0:
            # Spread unevenly, as a real federation is: the first providers host more.
            for weight, provider in zip((4, 3, 1, 1, 1), providers, strict=True):
                count = min(missing, max(1, BATCH * weight // 10))
                vaults.vault_allocate_many(actor=actor, provider=provider, count=count)
                missing -= count
                done += count
                if live:
                    self.stdout.write(f"\rvaults    {done:>6} allocated", ending="")
                    self.stdout.flush()
                elif done - reported >= step or missing <= 0:
                    self.stdout.write(f"vaults    {done:>6} allocated")
                    reported = done
                if missing <= 0:
                    break
        if done and live:
            self.stdout.write("")
        self.stdout.write(
            f"vaults    {Vault.objects.filter(provider__in=providers).count()} "
            "in the demo federation"
        )

    def _holds_and_closures(self, actor, providers) -> None:
        open_vaults = Vault.objects.filter(provider__in=providers, status=VaultStatus.ACTIVE)
        plan = [
            (
                HELD - open_vaults.filter(client_hold=True).count(),
                lambda v: vaults.vault_hold(actor=actor, vault=v, kind=HoldKind.CLIENT),
            ),
            (
                SERVER_HELD - open_vaults.filter(server_hold=True).count(),
                lambda v: vaults.vault_hold(actor=actor, vault=v, kind=HoldKind.SERVER),
            ),
            (
                CLOSED
                - Vault.objects.filter(provider__in=providers, status=VaultStatus.CLOSED).count(),
                lambda v: vaults.vault_close(actor=actor, vault=v),
            ),
        ]
        for missing, act in plan:
            if missing > 0:
                candidates = open_vaults.filter(client_hold=False, server_hold=False)
                for vault in candidates.order_by("-number")[:missing]:
                    act(vault)

    def _checkpoint(self) -> None:
        # Writes publish checkpoints at most every few seconds: cover the demo's last changes now.
        try:
            checkpoint = checkpoints.publish()
        except ImproperlyConfigured as exc:
            self.stderr.write(f"no checkpoint published: {exc}")
            return
        self.stdout.write(f"log       {checkpoint.size} entries, signed checkpoint published")

    @transaction.atomic
    def _admin(self) -> tuple[str, TOTPDevice]:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username="admin", defaults={"email": "admin@registry.example"}
        )
        user.is_staff = user.is_superuser = True
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        user.set_password(password)
        user.save()
        device = TOTPDevice.objects.filter(user=user, name="demo").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="demo", confirmed=True)
        return password, device

    def _member(self, username: str, organisation) -> tuple[str, str, TOTPDevice]:
        """A portal administrator of ``organisation``, invited by the demo admin the first time
        (the services' way), with a new password and a confirmed TOTP device on every run."""
        user_model = get_user_model()
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        user = user_model.objects.filter(username=username).first()
        if user is None:
            admin = user_model.objects.get(username="admin")
            _invitation, token = accounts.portal_user_invite(
                actor=Actor.for_user(admin),
                organisation=organisation,
                email=f"{username}@demo.example",
                role=Role.ADMINISTRATOR,
            )
            user = accounts.portal_invitation_accept(
                token=token, username=username, password=password, full_name="Demo Admin"
            )
        user.set_password(password)
        user.save()
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="portal", confirmed=True)
        return username, password, device

    def _print_members(self, base_url, members) -> None:
        w = self.stdout.write
        w(f"Portal ({base_url}/portal/): user name, password AND a TOTP code from the URI")
        for username, password, device in members:
            w(f"  user:      {username}\n  password:  {password}")
            w(f"  TOTP URI:  {device.config_url}")
        w("")

    def _token(self, actor, owner) -> str:
        # Tokens are shown once: revoke the previous demo token and print a new one.
        for old in ApiToken.objects.filter(
            **{type(owner).__name__.lower(): owner}, name="demo", revoked_at__isnull=True
        ):
            tokens.token_revoke(actor=actor, token=old)
        _token, value = tokens.token_create(
            actor=actor, owner=owner, name="demo", expires_in_days=30
        )
        return value

    # --- output -----------------------------------------------------------------------------

    def _print(self, base_url, password, device, issuer_token, provider_token, provider) -> None:
        sample = Vault.objects.filter(
            provider=provider, status=VaultStatus.ACTIVE, client_hold=False, server_hold=False
        ).order_by("number")
        candidates = list(sample.values_list("number", flat=True)[:50])
        checkpoints.publish()  # sign what was loaded: lookups answer the signed state
        deliverable = next(
            n for n in candidates if (proven.lookup(n).fields or {}).get("deliverable")
        )
        held = (
            Vault.objects.filter(client_hold=True, status=VaultStatus.ACTIVE)
            .values_list("number", flat=True)
            .first()
        )
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("Demo federation ready."))
        w("")
        w("Admin (http://127.0.0.1:8000/admin/): needs the password AND a TOTP code")
        w(f"  user:      admin\n  password:  {password}")
        w(f"  TOTP URI:  {device.config_url}")
        w("  Scan this with an authenticator app (or paste the URI into one):")
        w(draw_qr(device.config_url))
        w("")
        w(f"Issuer token (scope lookup):     {issuer_token}")
        w(f"Provider token (scope provider): {provider_token}   ({provider.legal_name})")
        w("")
        w("Try:")
        display = quote(numbers.format_display(deliverable))
        w(f"  curl -s -H 'Authorization: Bearer {issuer_token}' {base_url}/api/v1/vaults/{display}")
        if held:
            w(
                f"  curl -s -H 'Authorization: Bearer {issuer_token}' "
                f"{base_url}/api/v1/vaults/{held.lower()}"
            )
        w(
            f"  curl -s -H 'Authorization: Bearer {provider_token}' "
            f"'{base_url}/api/v1/provider/vaults?page_size=5'"
        )
        w("")

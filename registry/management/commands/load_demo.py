"""Load a small demo federation (idempotent) and print how to use it."""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from stdnum import luhn

from directory import checkpoints, proven
from registry import numbers, x509
from registry.errors import DomainError
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
from registry.services import accounts, organisations, routing, tokens, transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from registry.serving import bind_url

ALL_TYPES = ["bank_statement", "payslip", "invoice"]
# (name, domain, certifications, document types its endpoint accepts)
PROVIDERS = [
    ("Coffre Numérique Atlantique SAS", "coffre-atlantique.example", ["NF Z42-020"], ALL_TYPES),
    ("Digiposte Démo SA", "digiposte-demo.example", ["NF Z42-020", "ISO 27001"], ALL_TYPES),
    ("Safe Box Provence SARL", "safebox-provence.example", [], ALL_TYPES),
    ("Archives Alpines SAS", "archives-alpines.example", ["NF Z42-020"], ALL_TYPES),
    # No bank statements: a plan with purpose=bank_statement finds no_endpoint_for_purpose here.
    ("Lumière Vault SAS", "lumiere-vault.example", [], ["payslip", "invoice"]),
]
ISSUERS = [
    ("Banque Démo du Centre SA", ["bank_statement"]),
    ("Énergie Démo SAS", ["invoice"]),
]
VAULTS = 10_000
HELD, SERVER_HELD, CLOSED = 6, 2, 5
BATCH = 1000
# The README's example vault, FR97 VLT1 0123 4567 8901 with the default country and allocator:
# open, deliverable, hosted by the first provider (whose token is $PROVIDER in the README).
EXAMPLE_SERIAL = "012345678901"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def example_number() -> str:
    """The README's example number in this registry's country and allocator."""
    return numbers.make(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR, EXAMPLE_SERIAL).value


def default_base_url() -> str:
    """Where ``make run`` serves: the bind it passes (GUNICORN_BIND), else gunicorn's default."""
    return bind_url(os.environ.get("GUNICORN_BIND", "")) or DEFAULT_BASE_URL


def demo_siren(index: int) -> str:
    body = f"9{index:07d}0"[:8]
    return body + luhn.calc_check_digit(body)


class Command(BaseCommand):
    help = (
        "Create (or top up) a demo federation: 5 providers, 2 issuers, 10,000 vaults (the "
        "README's example vault among them), an admin with a TOTP device; print credentials, "
        "tokens of an issuer and two providers, and curl commands."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=None,
            help=f"where the server answers (default: from GUNICORN_BIND, else {DEFAULT_BASE_URL})",
        )
        parser.add_argument("--vaults", type=int, default=VAULTS)

    def handle(self, *args, base_url: str | None, vaults: int, **options):
        base_url = (base_url or default_base_url()).rstrip("/")
        actor = Actor.system("load_demo")
        providers = [self._provider(actor, i, *spec) for i, spec in enumerate(PROVIDERS)]
        issuers = [self._issuer(actor, i, *spec) for i, spec in enumerate(ISSUERS)]
        example = self._example_vault(actor, providers[0])
        self._vaults(actor, providers, vaults)
        self._holds_and_closures(actor, providers, spare=example)
        self._checkpoint()
        password, device = self._admin()
        issuer_token = self._token(actor, issuers[0])
        provider_tokens = [self._token(actor, provider) for provider in providers[:2]]
        members = [
            self._member("provider-admin", providers[0]),
            self._member("issuer-admin", issuers[0]),
        ]
        self._print(base_url, password, device, issuer_token, provider_tokens, providers, example)
        self._print_members(base_url, members)

    # --- records ----------------------------------------------------------------------------

    def _provider(self, actor, index, name, domain, certifications, document_types) -> Provider:
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
                document_types=document_types,
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
        """Top the federation up to ``target`` vaults; progress counts every vault in it (the
        README's example, allocated first, included)."""
        already = Vault.objects.filter(provider__in=providers).count()
        missing = target - already
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
                    self.stdout.write(f"\rvaults    {already + done:>6} allocated", ending="")
                    self.stdout.flush()
                elif done - reported >= step or missing <= 0:
                    self.stdout.write(f"vaults    {already + done:>6} allocated")
                    reported = done
                if missing <= 0:
                    break
        if done and live:
            self.stdout.write("")
        self.stdout.write(
            f"vaults    {Vault.objects.filter(provider__in=providers).count()} "
            "in the demo federation"
        )

    def _example_vault(self, actor, provider) -> str:
        """The README's example vault: allocated to the first provider once, then put back as
        the README describes it (no hold, moves allowed) when its examples changed it; a
        closed or moved example cannot be undone and is reported."""
        number = example_number()
        vault = Vault.objects.filter(number=number).first()
        if vault is None:
            vault = vaults.vault_allocate(actor=actor, provider=provider, number=number)
        if vault.status == VaultStatus.CLOSED or vault.provider_id != provider.pk:
            self.stderr.write(
                f"the README's example vault {numbers.format_display(number)} was "
                + ("closed" if vault.status == VaultStatus.CLOSED else "moved to another provider")
                + " by its examples: they no longer answer as the README says (start over: "
                "remove var/registry.sqlite3)"
            )
            return number
        try:
            for kind in HoldKind:
                if getattr(vault, kind):
                    vault = vaults.vault_release(actor=actor, vault=vault, kind=kind)
            if vault.client_transfer_prohibited:
                vault = transfers.vault_set_transfer_prohibited(
                    actor=actor, provider=provider, vault=vault, prohibited=False
                )
        except DomainError as exc:  # a registry lock: reported, kept
            self.stderr.write(f"the README's example vault stays as it is: {exc.detail}")
        if vault.pending_transfer:
            self.stderr.write(
                "a transfer of the README's example vault is pending (its portability "
                "examples): lookups show pending_transfer until it is answered"
            )
        return number

    def _holds_and_closures(self, actor, providers, spare: str) -> None:
        open_vaults = Vault.objects.filter(
            provider__in=providers, status=VaultStatus.ACTIVE
        ).exclude(number=spare)
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

    def _print(
        self, base_url, password, device, issuer_token, provider_tokens, providers, example
    ) -> None:
        checkpoints.publish()  # sign what was loaded: lookups answer the signed state
        answer = proven.lookup(example)
        if not (answer.fields or {}).get("deliverable"):  # the README's examples were run
            example = self._deliverable(providers[0])
        held = (
            Vault.objects.filter(client_hold=True, status=VaultStatus.ACTIVE)
            .values_list("number", flat=True)
            .first()
        )
        api = f"{base_url}/api/v1"
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("Demo federation ready."))
        w("")
        w(f"Admin ({base_url}/admin/): needs the password AND a TOTP code")
        w(f"  user:      admin\n  password:  {password}")
        w(f"  TOTP URI:  {device.config_url}")
        w("  Scan this with an authenticator app (or paste the URI into one):")
        w(draw_qr(device.config_url))
        w("")
        w(f"Issuer token (scope lookup):     {issuer_token}")
        w(f"Provider token (scope provider): {provider_tokens[0]}   ({providers[0].legal_name})")
        w(f"Second provider token:           {provider_tokens[1]}   ({providers[1].legal_name})")
        w("")
        w("For the README's examples ($PROVIDER hosts the example vault, $PROVIDER2 gains it):")
        w(f"  export R={api} REG={base_url}")
        w(
            f"  export ISSUER={issuer_token} PROVIDER={provider_tokens[0]} "
            f"PROVIDER2={provider_tokens[1]}"
        )
        w('  export LOSING="$PROVIDER" GAINING="$PROVIDER2"')
        w("")
        w("Try:")
        display = quote(numbers.format_display(example))
        w(f"  curl -s -H 'Authorization: Bearer {issuer_token}' {api}/vaults/{display}")
        if held:
            w(f"  curl -s -H 'Authorization: Bearer {issuer_token}' {api}/vaults/{held.lower()}")
        w(
            f"  curl -s -H 'Authorization: Bearer {provider_tokens[0]}' "
            f"'{api}/provider/vaults?page_size=5'"
        )
        w("")

    def _deliverable(self, provider) -> str:
        """A deliverable vault of ``provider``, when the README's example no longer is one."""
        candidates = (
            Vault.objects.filter(
                provider=provider, status=VaultStatus.ACTIVE, client_hold=False, server_hold=False
            )
            .order_by("number")
            .values_list("number", flat=True)[:50]
        )
        return next(n for n in candidates if (proven.lookup(n).fields or {}).get("deliverable"))

"""factory_boy factories for records whose creation is not what a test is about."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone
from stdnum import luhn

from registry import numbers, x509
from registry.models import (
    ApiToken,
    Certificate,
    CertificateUse,
    Endpoint,
    Issuer,
    OrganisationStatus,
    Provider,
    TokenScope,
    Vault,
)
from registry.services.common import state_snapshot
from registry.services.tokens import hash_token


def random_siren() -> str:
    body = f"{random.randrange(10**8):08d}"
    return body + luhn.calc_check_digit(body)


def _logged(instance):
    """Factories write rows behind the services' back; the log (hence the state map that
    answers lookups) learns the record as a migrated registry's would: a snapshot entry."""
    if isinstance(instance, Vault):
        state_snapshot(vaults=[instance], at=timezone.now())
    else:
        provider_id = instance.pk if isinstance(instance, Provider) else instance.provider_id
        state_snapshot(providers=[provider_id], at=timezone.now())
    return instance


class _LoggedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return _logged(super()._create(model_class, *args, **kwargs))


class ProviderFactory(_LoggedFactory):
    class Meta:
        model = Provider

    legal_name = factory.Sequence(lambda n: f"Provider {n} SAS")
    legal_id = factory.LazyFunction(random_siren)
    technical_email = "tech@provider.example"
    security_email = "security@provider.example"
    status = OrganisationStatus.ACTIVE


class IssuerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issuer

    legal_name = factory.Sequence(lambda n: f"Issuer {n} SA")
    legal_id = factory.LazyFunction(random_siren)
    technical_email = "tech@issuer.example"
    security_email = "security@issuer.example"
    status = OrganisationStatus.ACTIVE
    purposes = ["bank_statement"]


class EndpointFactory(_LoggedFactory):
    class Meta:
        model = Endpoint

    provider = factory.SubFactory(ProviderFactory)
    transport_profile = "vault-pivot-https/1"
    url = factory.Sequence(lambda n: f"https://deliver{n}.provider.example/v1")
    document_types = ["bank_statement"]
    activates_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class CertificateFactory(_LoggedFactory):
    """A real self-signed encryption certificate, inspected as the upload service would."""

    class Meta:
        model = Certificate

    provider = factory.SubFactory(ProviderFactory)
    use = CertificateUse.ENCRYPTION

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        pem, _key = x509.generate_certificate(
            f"{kwargs['provider'].legal_name} documents", kwargs["use"]
        )
        info = x509.inspect_certificate(pem, kwargs["use"])
        for name, value in dataclasses.asdict(info).items():
            kwargs.setdefault(name, value)
        return super()._create(model_class, *args, **kwargs)


def deliverable_provider(**fields) -> Provider:
    """An active provider that can be delivered to: one endpoint, one encryption certificate."""
    provider = ProviderFactory(**fields)
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    return provider


class VaultFactory(_LoggedFactory):
    class Meta:
        model = Vault

    number = factory.LazyFunction(
        lambda: numbers.draw(settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR).value
    )
    provider = factory.SubFactory(ProviderFactory)


def make_token(owner, *, value: str | None = None, **fields) -> tuple[ApiToken, str]:
    """A token for ``owner`` with a known value (tests need the value; the registry does not)."""
    value = value or f"vr_test_{random.randrange(10**30)}"
    is_provider = isinstance(owner, Provider)
    token = ApiToken.objects.create(
        provider=owner if is_provider else None,
        issuer=None if is_provider else owner,
        scope=TokenScope.PROVIDER if is_provider else TokenScope.LOOKUP,
        name="test",
        prefix=value[:10],
        key_hash=hash_token(value),
        expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=30)),
        **fields,
    )
    return token, value

"""The admin in French: the registry's own labels (models, fields, choices, actions, the work
queue) are translated, so that a French page is not half English."""

from __future__ import annotations

import html
import re

import pytest
from django.utils import translation
from django.utils.functional import Promise

from registry.admin.site import admin_site
from tests.factories import VaultFactory
from tests.registry.conftest import run_action

pytestmark = pytest.mark.django_db

REGISTRY_MODELS = [m for m in admin_site._registry if m._meta.app_label == "registry"]


@pytest.fixture
def french(otp_client):
    otp_client.cookies["django_language"] = "fr"
    return otp_client


def test_every_label_of_the_registrys_models_is_translatable():
    # the admin shows these: each is a lazy translation, never a bare English string
    for model in REGISTRY_MODELS:
        meta = model._meta
        assert isinstance(meta.verbose_name, Promise), meta.label
        assert isinstance(meta.verbose_name_plural, Promise), meta.label
        for field in meta.get_fields():
            if field.auto_created or not field.concrete:
                continue
            assert isinstance(field.verbose_name, Promise), f"{meta.label}.{field.name}"
            for _value, label in field.choices or []:
                assert isinstance(label, Promise) or label.isupper(), (meta.label, label)


def test_the_admin_index_names_the_registrys_models_in_french(french):
    page = french.get("/admin/").content.decode()
    for name in (
        "Coffres",
        "Prestataires",
        "Émetteurs",
        "Transferts",
        "Codes de transfert",
        "Entrées du journal",
        "Événements d&#x27;audit",
        "Jetons d&#x27;API",
        "Adresses de dépôt",
        "Certificats",
        "Usage des émetteurs",
        "Registre des coffres",  # the app
        "Applications d&#x27;authentification (TOTP)",
    ):
        assert f">{name}</a>" in page, name
    assert "Travail en attente" in page
    assert "Log entries" not in page and "Transfer codes" not in page


def test_every_registry_changelist_is_titled_in_french(french):
    for model in REGISTRY_MODELS:
        meta = model._meta
        with translation.override("fr"):
            name = str(meta.verbose_name)
        with translation.override("en"):
            english = str(meta.verbose_name)
        page = french.get(f"/admin/registry/{meta.model_name}/").content.decode()
        title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
        # "Sélectionnez l'objet coffre à afficher | …"
        assert f"objet {html.escape(name)} à afficher" in title, (meta.label, title)
        assert name != english or name in ("message", "webhook"), meta.label


def test_the_vault_changelist_speaks_french(french, provider):
    VaultFactory(provider=provider)
    page = french.get("/admin/registry/vault/").content.decode()
    for header in (
        "Numéro",
        "Prestataire",
        "Statut",
        "Blocage par le registre",
        "Verrou du registre",
    ):
        assert header in page, header
    assert "Fermer : pierre tombale, jamais réattribué" in page  # an action
    assert "actif" in page  # a status choice
    for english in ("Server hold", "Registry lock", "Close: tombstone", "Created at"):
        assert english not in page, english


def test_a_confirmation_page_speaks_french(french, provider):
    vault = VaultFactory(provider=provider)
    page = run_action(french, "vault", "server_hold", [vault.pk]).content.decode()
    assert "Ce que fera l&#x27;action" in page or "Ce que fera l'action" in page
    assert "1 coffre joignable aujourd&#x27;hui devient injoignable." in page
    assert "1 coffre sélectionné" in page
    assert "Conservé dans la piste d&#x27;audit avec votre nom." in page


def test_the_same_pages_in_english(otp_client, provider):
    VaultFactory(provider=provider)
    page = otp_client.get("/admin/registry/vault/").content.decode()
    assert "Server hold" in page and "Blocage par le registre" not in page

"""The transparency and status pages show what the log and its keys are now."""

from __future__ import annotations

import html
import re

import pytest
from django.db import DatabaseError, connections

from directory import checkpoints, keys
from directory.models import Checkpoint
from tests.factories import VaultFactory

pytestmark = pytest.mark.django_db


def text_of(page: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}"[^>]*>(.*?)<', page, re.S).group(1).strip()


def test_the_transparency_page_shows_the_checkpoint_served_and_every_public_key(
    client, provider, settings
):
    # given a log with entries and a checkpoint over them
    VaultFactory.create_batch(2, provider=provider)
    checkpoint = checkpoints.publish(force=True)
    page = client.get("/transparency/").content.decode()
    # then its size, the log's size and origin, and the signed note itself are shown
    assert int(text_of(page, "checkpoint-size")) == checkpoint.size == checkpoints.log_size()
    assert int(text_of(page, "log-size")) == checkpoint.size
    assert text_of(page, "log-origin") == settings.VAULT_LOG_ORIGIN
    note = html.unescape(text_of(page, "checkpoint-note"))
    assert note == checkpoint.note.strip()
    assert note.splitlines()[:2] == [settings.VAULT_LOG_ORIGIN, str(checkpoint.size)]
    # and each public key, by what it signs, in French
    manifest = keys.public_manifest()
    for purpose in ("log", "receipt"):
        listed = re.search(rf'id="keys-{purpose}">(.*?)</ul>', page, re.S).group(1)
        for key in manifest[purpose]:
            assert key["public_key"] in listed
    assert "Points de contrôle du journal" in page
    assert "Reçus des réponses" in page


def test_the_transparency_page_before_any_checkpoint_or_key(client, settings, tmp_path):
    settings.VAULT_KEY_DIR = tmp_path / "no-keys"
    keys.reset()
    Checkpoint.objects.all().delete()
    checkpoints.clear_cache()
    page = client.get("/transparency/").content.decode()
    assert "Aucun point de contrôle signé pour l'instant." in page
    assert "Aucune clé publiée pour l'instant." in page


def test_the_transparency_page_in_english(client, checkpoint):
    client.cookies["django_language"] = "en"
    page = client.get("/transparency/").content.decode()
    assert f"{checkpoint.size}</span> entries, signed" in page


def test_the_status_page_says_the_registry_answers_with_its_latest_checkpoint(client, provider):
    VaultFactory(provider=provider)
    checkpoint = checkpoints.publish(force=True)
    answer = client.get("/status/")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "Le registre répond." in page
    assert int(text_of(page, "checkpoint-size")) == checkpoint.size


def test_the_status_page_says_when_the_database_does_not_answer(client, monkeypatch):
    def refuse():
        raise DatabaseError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    answer = client.get("/status/")
    assert answer.status_code == 503
    assert "La base de données du registre ne répond pas." in answer.content.decode()

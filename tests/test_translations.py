"""The French catalogue is complete: every string the code marks has a translation, none is a
fuzzy guess (Babel compiles those too), and placeholders match."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

CATALOGUE = Path(__file__).resolve().parents[1] / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def load():
    with CATALOGUE.open("rb") as f:
        return read_po(f, locale="fr")


def test_every_string_is_translated_and_none_is_fuzzy():
    catalogue = load()
    missing, fuzzy = [], []
    for message in catalogue:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            missing.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert not missing, missing
    assert not fuzzy, fuzzy


def test_placeholders_match():
    problems = [
        (message.id, [str(error) for error in errors]) for message, errors in load().check()
    ]
    assert not problems, problems

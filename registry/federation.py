"""The federation's view of vault numbers: the parser with the federation's known allocators.

Once a federation document is installed (``directory.federation``), the allocators known are
every member's; before that, ``VAULT_ALLOCATOR`` and ``VAULT_OTHER_ALLOCATORS``.
"""

from __future__ import annotations

from django.conf import settings

from registry import numbers


def known_allocators() -> frozenset[str]:
    from directory.federation import members

    document = members.current()
    if document is not None:
        return document.allocators()
    return frozenset([settings.VAULT_ALLOCATOR, *settings.VAULT_OTHER_ALLOCATORS])


def country() -> str:
    """The federation's country: every number of the federation starts with it."""
    return settings.VAULT_COUNTRY


def parse_number(raw: str) -> numbers.VaultNumber:
    """Parse any input form of a number; unknown allocator codes are refused as typos, and a
    number of another country (``invalid_country``), whatever its check digits.

    The fast path accepts exactly what ``numbers.parse`` accepts (tested); only a refused number
    goes through ``parse``, which says why.
    """
    allocators, ours = known_allocators(), country()
    valid = numbers.normalise_fast(raw, allocators, ours)
    if valid is not None:
        return numbers.VaultNumber(valid)
    return numbers.parse(raw, allocators=allocators, country=ours)

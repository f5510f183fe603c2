"""Public pages of the read side: the number checker, the transparency page, the status page.

The checker says whether a number is well formed and which registry allocated it; it never
says where the vault is (that is for issuers, with a token and a purpose).
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from directory import checkpoints, keys
from registry import numbers
from registry.federation import parse_number
from registry.portal.errors import explain
from registry.portal.forms import NumberCheckForm


def number_check(request):
    form = NumberCheckForm(request.GET or None)
    result = None
    if form.is_valid():
        try:
            number = parse_number(form.cleaned_data["number"])
        except numbers.InvalidNumber as exc:
            form.add_error("number", explain(exc))
        else:
            ours = number.allocator == settings.VAULT_ALLOCATOR
            result = {
                "display": number.display,
                "allocator": number.allocator,
                "registry": _("this registry") if ours else _("another registry of the federation"),
            }
    return render(request, "public/check.html", {"form": form, "result": result})


KEY_PURPOSES = [
    (keys.Purpose.LOG, gettext_lazy("Checkpoints of the log (C2SP signed notes, Ed25519)")),
    (keys.Purpose.RECEIPT, gettext_lazy("Receipts of answers (JWS, Ed25519)")),
    (keys.Purpose.PEER, gettext_lazy("Requests to other registries (RFC 9421, Ed25519)")),
]


def transparency(request):
    checkpoint = checkpoints.serving()
    try:
        manifest = keys.public_manifest()
    except (OSError, ValueError):  # keys not generated yet: the page still explains the log
        manifest = {}
    return render(
        request,
        "public/transparency.html",
        {
            "checkpoint": checkpoint,
            "log_size": checkpoints.log_size(),
            "key_groups": [
                (purpose, label, manifest[purpose])
                for purpose, label in KEY_PURPOSES
                if manifest.get(purpose)
            ],
            "origin": settings.VAULT_LOG_ORIGIN,
            "quorum": settings.VAULT_WITNESS_QUORUM,
        },
    )


def status(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = True
    except DatabaseError:
        database = False
    checkpoint = checkpoints.serving() if database else None
    return render(
        request,
        "public/status.html",
        {"database": database, "checkpoint": checkpoint},
        status=200 if database else 503,
    )

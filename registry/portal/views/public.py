"""Public pages of the write side: the home page and applications to join, with a status page
reachable from a signed link given in the confirmation (no account needed)."""

from __future__ import annotations

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _

from registry.errors import DomainError
from registry.models import Issuer, Provider
from registry.portal.errors import explain
from registry.portal.forms import IssuerApplicationForm, ProviderApplicationForm
from registry.services import organisations
from registry.services.common import Actor

SALT = "portal.application"


def home(request):
    """What the registry is, for a provider, an issuer and a holder."""
    return render(request, "public/home.html")


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: send them the SVG icon."""
    return redirect(static("favicon.svg"), permanent=True)


def _remote(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def apply(request, kind: str):
    form_class = ProviderApplicationForm if kind == "provider" else IssuerApplicationForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        common = {
            "actor": Actor.public(_remote(request)),
            "legal_name": data["legal_name"],
            "legal_id": data["legal_id"],
            "contact_name": data["contact_name"],
            "technical_email": data["technical_email"],
            "security_email": data["security_email"],
        }
        try:
            if kind == "provider":
                certifications = [c.strip() for c in data["certifications"].split(",") if c.strip()]
                org = organisations.provider_apply(**common, certifications=certifications)
            else:
                org = organisations.issuer_apply(**common, purposes=data["purposes"])
        except DomainError as exc:
            field = "legal_id" if exc.code in ("duplicate_legal_id", "validation_error") else None
            form.add_error(field, explain(exc))
        except ValidationError as exc:  # full_clean's, field by field, already translated
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            token = signing.dumps({"k": kind, "id": str(org.pk)}, salt=SALT)
            return redirect(reverse("application-status", args=[token]) + "?new=1")
    return render(request, "public/apply.html", {"form": form, "kind": kind})


def application_status(request, token: str):
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise Http404(_("Unknown application.")) from exc
    model = Provider if data["k"] == "provider" else Issuer
    org = model.objects.filter(pk=data["id"]).first()
    if org is None:
        raise Http404(_("Unknown application."))
    return render(
        request,
        "public/application_status.html",
        {
            "org": org,
            "kind": data["k"],
            "new": request.GET.get("new") == "1",
            "link": request.build_absolute_uri(request.path),
            "history": org.status_changes.all(),
        },
    )

"""The issuer portal: allowed purposes, routing plans from a file, downloads of the result.

A plan from the portal is built and recorded exactly as the API's (``build_plan`` and
``routing_plan_record``); its answer is kept for the person to download for
``PORTAL_PLAN_KEEP_SECONDS``, then deleted: the registry's own record keeps hashes only.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import orjson
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from directory.models import RoutingPlan
from directory.plans import build_plan, read_numbers, routing_plan_record
from registry.errors import DomainError
from registry.portal.access import member_view, refuse
from registry.portal.errors import explain, explain_reason
from registry.portal.forms import PlanForm
from registry.portal.models import Role

ISSUER = "issuer"


def home(request):
    issuer = request.organisation
    return render(
        request,
        "portal/issuer/home.html",
        {
            "issuer": issuer,
            "purposes": [label for value, label in _purpose_labels() if value in issuer.purposes],
            "plans": RoutingPlan.objects.filter(issuer=issuer)[:5],
        },
    )


def _purpose_labels():
    from registry.models import Purpose

    return Purpose.choices


def _plan_dir() -> Path:
    return Path(settings.PORTAL_PLAN_DIR)


def _answer_path(plan_id) -> Path:
    return _plan_dir() / f"{plan_id}.json"


def _purge_old() -> None:
    """Remove answers kept longer than PORTAL_PLAN_KEEP_SECONDS."""
    limit = time.time() - settings.PORTAL_PLAN_KEEP_SECONDS
    for path in _plan_dir().glob("*.json"):
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)


@member_view(kind=ISSUER)
def plans(request):
    issuer = request.organisation
    form = PlanForm(request.POST or None, request.FILES or None, purposes=issuer.purposes)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        if form.is_valid():
            upload = form.cleaned_data["file"]
            body = upload.read(settings.VAULT_PLAN_MAX_BODY + 1)
            try:
                if len(body) > settings.VAULT_PLAN_MAX_BODY:
                    raise DomainError("too_many_numbers", "too large", status=413)
                asked = read_numbers(body, "text/plain", settings.VAULT_PLAN_MAX_NUMBERS)
            except DomainError as exc:
                form.add_error("file", _unreadable(exc))
            else:
                purpose = form.cleaned_data.get("purpose") or ""
                plan = build_plan(asked, purpose=purpose)
                answer = plan.as_json()
                record = routing_plan_record(
                    plan=plan,
                    issuer=issuer,
                    token=None,
                    purpose=purpose,
                    request_body=body,
                    answer=answer,
                )
                _plan_dir().mkdir(parents=True, exist_ok=True)
                _purge_old()
                _answer_path(record.id).write_bytes(answer)
                return redirect("portal:plan", pk=record.id)
    return render(
        request,
        "portal/issuer/plans.html",
        {"form": form, "plans": RoutingPlan.objects.filter(issuer=issuer)[:100]},
    )


def _unreadable(error: DomainError) -> str:
    """Why a file gives no plan: too many numbers, or not a list of numbers at all."""
    if error.code == "bad_request":
        return _("This file holds no vault number, or is not UTF-8 text: send one per line.")
    return explain(error)


@member_view(kind=ISSUER)
def plan_detail(request, pk):
    record = get_object_or_404(RoutingPlan, pk=pk, issuer=request.organisation)
    path = _answer_path(record.id)
    unroutable = []
    if path.exists():
        unroutable = [
            {**item, "why": explain_reason(item["reason"])}
            for item in orjson.loads(path.read_bytes())["unroutable"][:200]
        ]
    by_reason = [
        (reason, explain_reason(reason), count)
        for reason, count in record.unroutable_by_reason.items()
    ]
    return render(
        request,
        "portal/issuer/plan.html",
        {
            "plan": record,
            "available": path.exists(),
            "unroutable": unroutable,
            "by_reason": by_reason,
            "purpose": dict(_purpose_labels()).get(record.purpose, record.purpose),
        },
    )


@member_view(kind=ISSUER)
def plan_download(request, pk, fmt):
    record = get_object_or_404(RoutingPlan, pk=pk, issuer=request.organisation)
    path = _answer_path(record.id)
    if not path.exists():
        raise Http404(_("This plan's answer is no longer kept."))
    if fmt == "json":
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"plan-{record.id}.json",
            content_type="application/json",
        )
    answer = orjson.loads(path.read_bytes())
    out = io.StringIO()
    writer = csv.writer(out)
    # The codes for software; the last column says why in the reader's language.
    writer.writerow(
        ["number", "routable", "provider", "provider_id", "endpoint", "reason", "explanation"]
    )
    for group in answer["groups"]:
        endpoint = group["endpoints"][0]["url"] if group["endpoints"] else ""
        for number in group["numbers"]:
            writer.writerow(
                [
                    number,
                    "yes",
                    group["provider"]["legal_name"],
                    group["provider"]["id"],
                    endpoint,
                    "",
                    "",
                ]
            )
    for item in answer["unroutable"]:
        reason = item["reason"]
        writer.writerow([item["number"], "no", "", "", "", reason, explain_reason(reason)])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="plan-{record.id}.csv"'
    return response

"""The issuer portal through its pages: purposes, a file of numbers resolved as a routing plan
(recorded as the API records it), its list with counts and hashes, the CSV and JSON downloads
with the unroutable numbers and why; roles and organisations kept apart."""

from __future__ import annotations

import csv
import hashlib
import io
import re

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from directory.models import RoutingPlan
from registry import numbers
from registry.services import vaults
from registry.services.common import Actor
from tests.factories import IssuerFactory, ProviderFactory, VaultFactory
from tests.portal.conftest import make_member, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plan_dir(settings, tmp_path):
    """Plan answers are kept under a throwaway directory."""
    settings.PORTAL_PLAN_DIR = tmp_path / "plans"


@pytest.fixture
def issuer_operator(issuer):
    issuer.purposes = ["bank_statement", "payslip"]
    issuer.save(update_fields=["purposes"])
    return make_member(issuer, "operator")


@pytest.fixture
def statement_run(provider):
    """Three deliverable vaults, one closed, one unknown number, one mistyped."""
    good = [VaultFactory(provider=provider).number for _ in range(3)]
    closed = VaultFactory(provider=provider)
    vaults.vault_close(actor=Actor.system("tests"), vault=closed)
    unknown = numbers.draw("FR", "VLT1").value
    typo = good[0][:-1] + str((int(good[0][-1]) + 1) % 10)
    lines = [numbers.format_display(good[0]), good[1].lower(), f'"{good[2]}",']
    lines += [closed.number, unknown, typo]
    return {
        "good": good,
        "closed": closed.number,
        "unknown": unknown,
        "typo": typo,
        "body": ("\r\n".join(lines) + "\r\n").encode(),
    }


def upload(client, body: bytes, purpose: str = "bank_statement", name: str = "run.csv"):
    return client.post(
        "/portal/plans/",
        {"file": SimpleUploadedFile(name, body, content_type="text/csv"), "purpose": purpose},
    )


def test_the_start_page_shows_purposes_and_latest_plans(issuer_operator, statement_run):
    client = signed_in(issuer_operator)
    page = client.get("/portal/").content.decode()
    assert "relevés bancaires" in page and "bulletins de paie" in page
    assert "Aucun pour l'instant." in page  # no plan yet
    upload(client, statement_run["body"])
    plan = RoutingPlan.objects.get()
    page = client.get("/portal/").content.decode()
    assert f"/portal/plans/{plan.pk}/" in page and "— 6" in page


def test_a_file_is_resolved_recorded_and_shown_with_counts_hashes_and_reasons(
    issuer, issuer_operator, statement_run
):
    client = signed_in(issuer_operator)
    # when an operator sends a CSV file of six numbers
    answer = upload(client, statement_run["body"])
    # then the plan is recorded as the API records it, hashes of the bytes sent and answered
    plan = RoutingPlan.objects.get(issuer=issuer)
    assert answer.status_code == 302 and answer["Location"] == f"/portal/plans/{plan.pk}/"
    assert (plan.asked, plan.routable, plan.unroutable, plan.providers) == (6, 3, 3, 1)
    assert plan.purpose == "bank_statement"
    assert plan.request_sha256 == hashlib.sha256(statement_run["body"]).hexdigest()
    assert plan.unroutable_by_reason == {
        "closed": 1,
        "invalid:invalid_check_digits": 1,
        "unknown": 1,
    }
    # and its page shows the counts, both hashes and why numbers cannot be delivered
    page = client.get(answer["Location"]).content.decode()
    assert re.search(r'id="plan-asked">6<', page)
    assert re.search(r'id="plan-routable">3<', page)
    assert re.search(r'id="plan-unroutable">3<', page)
    assert plan.request_sha256 in page and plan.answer_sha256 in page
    assert "relevés bancaires" in page
    assert "le coffre est fermé" in page
    assert "aucun coffre n&#x27;a ce numéro" in page
    assert "ce n&#x27;est pas un numéro de coffre : la clé ne correspond pas" in page
    for number in (statement_run["closed"], statement_run["unknown"], statement_run["typo"]):
        assert number in page


def test_the_plans_list_shows_counts_and_hashes(issuer_operator, statement_run):
    client = signed_in(issuer_operator)
    upload(client, statement_run["body"])
    upload(client, "\n".join(statement_run["good"]).encode(), purpose="payslip")
    page = client.get("/portal/plans/").content.decode()
    rows = re.findall(r"<tr><td><a href=\"/portal/plans/([0-9a-f-]+)/\">.*?</tr>", page)
    assert len(rows) == 2
    for plan in RoutingPlan.objects.all():
        row = re.search(rf"/portal/plans/{plan.pk}/.*?</tr>", page).group(0)
        cells = re.findall(r"<td>(.*?)</td>", row)
        # the first cell (the time, a link) is cut by the search: asked, routable, unroutable
        assert cells[0:3] == [str(plan.asked), str(plan.routable), str(plan.unroutable)]
        assert plan.answer_sha256[:19] in cells[3]


def test_the_downloads_hold_every_number_with_its_route_or_reason(
    provider, issuer_operator, statement_run
):
    client = signed_in(issuer_operator)
    plan_url = upload(client, statement_run["body"])["Location"]
    # the JSON download is the answer the registry hashed
    json_download = client.get(f"{plan_url}download.json")
    assert json_download["Content-Type"] == "application/json"
    assert "attachment" in json_download["Content-Disposition"]
    body = b"".join(json_download.streaming_content)
    plan = RoutingPlan.objects.get()
    assert hashlib.sha256(body).hexdigest() == plan.answer_sha256
    answer = orjson.loads(body)
    assert sorted(answer["groups"][0]["numbers"]) == sorted(statement_run["good"])
    assert {item["number"]: item["reason"] for item in answer["unroutable"]} == {
        statement_run["closed"]: "closed",
        statement_run["unknown"]: "unknown",
        statement_run["typo"]: "invalid:invalid_check_digits",
    }
    # the CSV has one row per number: the route, or the reason and its explanation
    csv_download = client.get(f"{plan_url}download.csv")
    assert csv_download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_download.content.decode())))
    assert len(rows) == 6
    routed = {row["number"]: row for row in rows if row["routable"] == "yes"}
    assert sorted(routed) == sorted(statement_run["good"])
    assert {row["provider_id"] for row in routed.values()} == {str(provider.pk)}
    assert {row["endpoint"] for row in routed.values()} == {provider.endpoints.get().url}
    refused = {row["number"]: row for row in rows if row["routable"] == "no"}
    assert refused[statement_run["closed"]]["reason"] == "closed"
    assert refused[statement_run["closed"]]["explanation"] == "le coffre est fermé"
    assert refused[statement_run["typo"]]["reason"] == "invalid:invalid_check_digits"


def test_an_answer_no_longer_kept_leaves_the_record_and_its_hashes(
    settings, issuer_operator, statement_run
):
    client = signed_in(issuer_operator)
    plan_url = upload(client, statement_run["body"])["Location"]
    plan = RoutingPlan.objects.get()
    (settings.PORTAL_PLAN_DIR / f"{plan.pk}.json").unlink()
    page = client.get(plan_url).content.decode()
    assert "n'est plus conservée" in page and plan.answer_sha256 in page
    assert 'id="download-csv"' not in page
    assert client.get(f"{plan_url}download.csv").status_code == 404


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "Le fichier soumis est vide."),
        (b"\n \n", "ne contient aucun numéro de coffre"),
        (b"\xff\xfe\x00garbage", "ne contient aucun numéro de coffre"),
    ],
)
def test_an_unreadable_file_is_refused_on_the_field(issuer_operator, body, error):
    answer = upload(signed_in(issuer_operator), body)
    assert answer.status_code == 200
    assert error in answer.content.decode()
    assert not RoutingPlan.objects.exists()


def test_too_many_numbers_are_refused_and_nothing_recorded(issuer_operator, settings):
    settings.VAULT_PLAN_MAX_NUMBERS = 3
    answer = upload(signed_in(issuer_operator), b"a\nb\nc\nd\n")
    assert "Trop de numéros dans un seul fichier." in answer.content.decode()
    assert not RoutingPlan.objects.exists()


def test_a_purpose_the_issuer_is_not_allowed_is_refused(issuer_operator, statement_run):
    answer = upload(signed_in(issuer_operator), statement_run["body"], purpose="tax_notice")
    assert answer.status_code == 200
    assert "Sélectionnez un choix valide" in answer.content.decode()
    assert not RoutingPlan.objects.exists()


def test_a_viewer_reads_plans_but_cannot_resolve(issuer, statement_run):
    viewer = make_member(issuer, "viewer")
    client = signed_in(viewer)
    page = client.get("/portal/plans/").content.decode()
    assert 'type="file"' not in page
    assert upload(client, statement_run["body"]).status_code == 403
    assert not RoutingPlan.objects.exists()


def test_another_issuers_plan_is_not_found(issuer_operator, statement_run):
    plan_url = upload(signed_in(issuer_operator), statement_run["body"])["Location"]
    stranger = signed_in(make_member(IssuerFactory(), "administrator"))
    assert stranger.get(plan_url).status_code == 404
    assert stranger.get(f"{plan_url}download.json").status_code == 404
    assert plan_url not in stranger.get("/portal/plans/").content.decode()


def test_a_provider_member_has_no_plan_pages():
    client = signed_in(make_member(ProviderFactory(), "administrator"))
    assert client.get("/portal/plans/").status_code == 403

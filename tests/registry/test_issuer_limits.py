"""An issuer's own rate limits, set by a federation admin from the issuer's admin page: checked,
audited with the reason, and what the issuer's tokens get."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.errors import InvalidInput
from registry.models import AuditEvent
from registry.services import organisations
from registry.services.common import Actor
from tests.registry.helpers import assert_problem

pytestmark = pytest.mark.django_db


def limits_url(issuer) -> str:
    return f"/admin/registry/issuer/{issuer.pk}/limits/"


def audited(issuer) -> list[dict]:
    return [
        e.data
        for e in AuditEvent.objects.filter(
            action="limits:changed", target_type="issuer", target_id=str(issuer.pk)
        ).order_by("id")
    ]


def test_the_issuer_page_shows_the_limits_in_force_and_links_to_the_form(otp_client, issuer):
    page = otp_client.get(f"/admin/registry/issuer/{issuer.pk}/change/")

    content = page.content.decode()
    assert page.status_code == 200
    assert "1200 (default) lookups, 300000 (default) plan numbers" in content
    assert limits_url(issuer) in content


def test_the_admin_sets_limits_with_a_reason_and_the_change_is_audited(
    otp_client, issuer, admin_user
):
    # when the admin sets 50 lookups a minute and turns the plan limit off
    response = otp_client.post(
        limits_url(issuer),
        {
            "rate_lookups_per_minute": "50",
            "rate_plan_numbers_per_minute": "0",
            "reason": "  contract of 3 March  ",
        },
        follow=True,
    )

    # then back on the issuer's page, with the limits in force
    assert response.redirect_chain[-1][0] == f"/admin/registry/issuer/{issuer.pk}/change/"
    assert "Limits set: 50 lookups, no limit plan numbers" in response.content.decode()
    issuer.refresh_from_db()
    assert (issuer.rate_lookups_per_minute, issuer.rate_plan_numbers_per_minute) == (50, 0)
    # and the audit trail says who, before, after and why
    event = AuditEvent.objects.get(action="limits:changed")
    assert event.actor_user == admin_user
    assert event.data == {
        "before": {"rate_lookups_per_minute": None, "rate_plan_numbers_per_minute": None},
        "after": {"rate_lookups_per_minute": 50, "rate_plan_numbers_per_minute": 0},
        "reason": "contract of 3 March",
    }


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"rate_lookups_per_minute": "-1"}, "rate_lookups_per_minute"),
        ({"rate_lookups_per_minute": "ten"}, "rate_lookups_per_minute"),
        ({"rate_plan_numbers_per_minute": "2147483648"}, "rate_plan_numbers_per_minute"),
        ({"rate_lookups_per_minute": "10", "reason": "   "}, "reason"),
    ],
    ids=["negative", "not-a-number", "above-the-column", "no-reason"],
)
def test_bad_input_is_shown_again_and_changes_nothing(otp_client, issuer, form, field):
    response = otp_client.post(limits_url(issuer), {"reason": "because", **form})

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    issuer.refresh_from_db()
    assert issuer.rate_lookups_per_minute is None and issuer.rate_plan_numbers_per_minute is None
    assert audited(issuer) == []


def test_a_plan_limit_below_the_largest_plan_is_warned_about(otp_client, issuer, settings):
    settings.VAULT_PLAN_MAX_NUMBERS = 100_000

    response = otp_client.post(
        limits_url(issuer),
        {"rate_plan_numbers_per_minute": "5000", "reason": "small sender"},
        follow=True,
    )

    assert "plans of more than 5000 numbers are now always refused" in response.content.decode()


def test_the_same_limits_again_write_nothing(otp_client, issuer):
    otp_client.post(limits_url(issuer), {"rate_lookups_per_minute": "7", "reason": "first"})

    response = otp_client.post(
        limits_url(issuer), {"rate_lookups_per_minute": "7", "reason": "again"}, follow=True
    )

    assert "nothing changed" in response.content.decode()
    assert [e["reason"] for e in audited(issuer)] == ["first"]


def test_the_new_limit_is_what_the_issuers_tokens_get(otp_client, issuer, lookup_client, vault):
    # given the admin lowers the issuer's lookups to 1 a minute
    otp_client.post(limits_url(issuer), {"rate_lookups_per_minute": "1", "reason": "abuse"})

    # when the issuer looks up twice (the workers' token cache is emptied between tests)
    first = lookup_client.get(f"/api/v1/vaults/{vault.number}")
    second = lookup_client.get(f"/api/v1/vaults/{vault.number}")

    # then
    assert first["RateLimit-Limit"] == "1"
    assert_problem(second, 429, "rate_limited")


def test_staff_without_the_change_permission_cannot_open_the_form(client, issuer):
    # given a staff member who passed the second factor but holds no permission
    user = User.objects.create_user("viewer", password="x" * 20, is_staff=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    response = client.post(limits_url(issuer), {"rate_lookups_per_minute": "1", "reason": "x"})

    assert response.status_code == 403
    issuer.refresh_from_db()
    assert issuer.rate_lookups_per_minute is None


def test_an_unknown_issuer_is_404(otp_client):
    assert (
        otp_client.get(
            "/admin/registry/issuer/00000000-0000-0000-0000-000000000000/limits/"
        ).status_code
        == 404
    )


@pytest.mark.parametrize("value", [-5, 2**31, 1.5, True, "12"])
def test_the_service_refuses_what_is_not_a_limit(issuer, value):
    with pytest.raises(InvalidInput) as refused:
        organisations.issuer_set_limits(
            actor=Actor.system("t"),
            issuer=issuer,
            lookups_per_minute=value,
            plan_numbers_per_minute=None,
            reason="r",
        )
    assert refused.value.extra["errors"] == [
        {"field": "rate_lookups_per_minute", "code": "invalid_rate_limit"}
    ]
    assert audited(issuer) == []


def test_the_service_goes_back_to_the_defaults_with_none(issuer):
    actor = Actor.system("t")
    organisations.issuer_set_limits(
        actor=actor, issuer=issuer, lookups_per_minute=3, plan_numbers_per_minute=9, reason="a"
    )

    back = organisations.issuer_set_limits(
        actor=actor,
        issuer=issuer,
        lookups_per_minute=None,
        plan_numbers_per_minute=None,
        reason="b",
    )

    assert (back.rate_lookups_per_minute, back.rate_plan_numbers_per_minute) == (None, None)
    assert [e["after"] for e in audited(issuer)][-1] == {
        "rate_lookups_per_minute": None,
        "rate_plan_numbers_per_minute": None,
    }

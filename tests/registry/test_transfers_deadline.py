"""Deadlines: working days with French public holidays, process_transfers, settling when read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from registry import workdays
from registry.models import AuditEvent, Message, Transfer, Vault
from registry.services import transfers
from tests.registry.conftest import bearer
from tests.registry.helpers import changes

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


# --- Working days (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "due"),
    [
        # Monday → Thursday
        (paris(2025, 3, 10, 9, 30), paris(2025, 3, 13, 9, 30)),
        # Friday → Wednesday; Saturday and Sunday count from Monday
        (paris(2025, 3, 14, 15, 0), paris(2025, 3, 19, 15, 0)),
        (paris(2025, 3, 15, 11, 0), paris(2025, 3, 19, 11, 0)),
        (paris(2025, 3, 16, 11, 0), paris(2025, 3, 19, 11, 0)),
        # Easter Monday (21 April 2025); Good Friday is not a holiday in metropolitan France
        (paris(2025, 4, 17, 10, 0), paris(2025, 4, 23, 10, 0)),
        # 1 May (Thursday) and 8 May (Thursday)
        (paris(2025, 4, 30, 10, 0), paris(2025, 5, 6, 10, 0)),
        (paris(2025, 5, 7, 10, 0), paris(2025, 5, 13, 10, 0)),
        # Ascension (29 May 2025) and Whit Monday (9 June 2025)
        (paris(2025, 5, 28, 10, 0), paris(2025, 6, 3, 10, 0)),
        (paris(2025, 6, 5, 10, 0), paris(2025, 6, 11, 10, 0)),
        # 14 July (Monday), 15 August (Friday), 1 and 11 November, Christmas and New Year
        (paris(2025, 7, 11, 10, 0), paris(2025, 7, 17, 10, 0)),
        (paris(2025, 8, 14, 10, 0), paris(2025, 8, 20, 10, 0)),
        (paris(2025, 11, 10, 10, 0), paris(2025, 11, 14, 10, 0)),
        (paris(2025, 12, 24, 10, 0), paris(2025, 12, 30, 10, 0)),
        (paris(2025, 12, 31, 10, 0), paris(2026, 1, 6, 10, 0)),
    ],
)
def test_three_working_days_skip_weekends_and_french_holidays(start, due):
    assert workdays.add_working_days(start, 3) == due.astimezone(UTC)


def test_the_hour_is_kept_across_a_daylight_saving_change():
    # Friday 28 March 2025 10:00 in Paris is 09:00 UTC; summer time starts on the Sunday
    due = workdays.add_working_days(paris(2025, 3, 28, 10, 0), 3)
    assert due == datetime(2025, 4, 2, 8, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris


def test_holidays_come_from_the_library_for_any_year():
    assert not workdays.is_working_day(date(2031, 4, 14))  # Easter Monday 2031
    assert not workdays.is_working_day(date(2031, 7, 14))
    assert workdays.is_working_day(date(2031, 7, 15))


def test_the_window_is_a_setting(settings):
    settings.TRANSFER_WINDOW_WORKING_DAYS = 5
    start = paris(2025, 3, 10, 9, 0)
    assert transfers.transfer_deadline(start) == paris(2025, 3, 17, 9, 0).astimezone(UTC)


# --- process_transfers ----------------------------------------------------------------------------


def run_process_transfers() -> str:
    out = StringIO()
    call_command("process_transfers", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_process_transfers_leaves_a_transfer_alone_before_its_deadline(clock, pending):
    clock.set(pending.deadline - timedelta(seconds=1))

    output = run_process_transfers()

    assert "Settled 0" in output
    pending.refresh_from_db()
    assert pending.state == "pending"


@pytest.mark.django_db
def test_process_transfers_approves_an_unanswered_transfer_once(
    clock, pending, provider, other_provider
):
    # given the losing provider never answered, and the deadline has passed
    clock.set(pending.deadline)

    # when the timer runs the command
    output = run_process_transfers()

    # then the registry approved the move
    assert "Settled 1" in output
    pending.refresh_from_db()
    assert (pending.state, pending.resolved_at) == ("server_approved", clock.now)
    assert pending.timeline()[-1]["by"] == "registry"
    vault = Vault.objects.get(pk=pending.vault_id)
    assert (vault.provider_id, vault.previous_provider_id) == (other_provider.pk, provider.pk)
    assert vault.pending_transfer is False
    assert AuditEvent.objects.get(action="transfer:server_approved").actor == (
        "system:process_transfers"
    )
    state = (
        changes().count(),
        Message.objects.count(),
        AuditEvent.objects.count(),
        list(Transfer.objects.values()),
        list(Vault.objects.values()),
    )
    completed = changes().filter(kind="transfer.completed").count()

    # when it runs again, later
    clock.advance(hours=1)
    output = run_process_transfers()

    # then nothing more changes
    assert "Settled 0" in output
    assert completed == 1
    assert state == (
        changes().count(),
        Message.objects.count(),
        AuditEvent.objects.count(),
        list(Transfer.objects.values()),
        list(Vault.objects.values()),
    )


@pytest.mark.django_db
def test_a_lookup_never_settles_an_overdue_transfer_the_timer_does(
    clock, pending, issuer, provider, other_provider
):
    # given the deadline passed and no timer ran
    clock.set(pending.deadline + timedelta(minutes=1))
    url = f"/api/v1/vaults/{pending.vault_id}"

    # when an issuer looks the vault up
    body = bearer(issuer).get(url).json()

    # then it answers the proven state (a read never writes): the move is not executed yet
    assert body["provider"]["id"] == str(provider.pk)
    assert "pending_transfer" in body["flags"]
    pending.refresh_from_db()
    assert pending.state == "pending"

    # when the timer runs, the next lookup routes to the gaining provider
    call_command("process_transfers", stdout=StringIO())
    body = bearer(issuer).get(url).json()
    assert body["provider"]["id"] == str(other_provider.pk)
    assert "pending_transfer" not in body["flags"]


@pytest.mark.django_db
def test_an_overdue_transfer_is_settled_when_a_provider_reads_it(
    clock, pending, losing_client, gaining_client
):
    clock.set(pending.deadline)

    detail = gaining_client.get(f"/api/v1/provider/transfers/{pending.pk}")
    assert detail.json()["state"] == "server_approved"


@pytest.mark.django_db
def test_an_overdue_transfer_is_settled_when_a_provider_lists_its_vaults(
    clock, pending, losing_client, gaining_client
):
    clock.set(pending.deadline)

    numbers = [v["number"] for v in gaining_client.get("/api/v1/provider/vaults").json()["results"]]
    assert pending.vault_id in numbers
    assert losing_client.get(f"/api/v1/provider/vaults/{pending.vault_id}").status_code == 404


@pytest.mark.django_db
def test_a_pending_transfer_is_not_settled_early_by_a_read(clock, pending, issuer):
    clock.set(pending.deadline - timedelta(minutes=1))
    body = bearer(issuer).get(f"/api/v1/vaults/{pending.vault_id}").json()
    assert body["provider"]["id"] == str(pending.losing_provider_id)
    assert "pending_transfer" in body["flags"]

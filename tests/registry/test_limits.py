"""Abuse limits and usage: per-token limits on lookups and plans, per-address limits on public
endpoints (X-Forwarded-For only from trusted proxies), usage counted without a write per lookup,
enumeration flagged. Counters live in the test settings' local cache; the database cache and
Redis (when one answers on 127.0.0.1:6379) are tested at the end."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.test import RequestFactory, override_settings

from registry import numbers, ratelimit, usage
from registry.models import AuditEvent, IssuerUsage
from registry.proxies import client_address
from tests.registry.helpers import assert_problem

PLANS = "/api/v1/routing-plans"
CHECKPOINT = "/api/v1/log/checkpoint"


def unknown_number() -> str:
    return numbers.draw("FR", "VLT1").value


def lookup(client, number: str):
    return client.get(f"/api/v1/vaults/{number}")


def test_lookups_carry_their_limit_and_the_one_over_it_is_429(
    lookup_client, issuer, vault, checkpoint
):
    # given an issuer allowed two lookups a minute per token
    issuer.rate_lookups_per_minute = 2
    issuer.save(update_fields=["rate_lookups_per_minute"])

    # when
    answers = [lookup(lookup_client, vault.number) for _ in range(3)]

    # then
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert [a["RateLimit-Remaining"] for a in answers[:2]] == ["1", "0"]
    assert answers[0]["RateLimit-Limit"] == "2"
    assert 0 < int(answers[0]["RateLimit-Reset"]) <= 60
    refused = answers[2]
    assert_problem(refused, 429, "rate_limited")
    assert refused["RateLimit-Limit"] == "2"
    assert refused["RateLimit-Remaining"] == "0"
    assert 0 < int(refused["Retry-After"]) <= 60


def test_the_settings_default_applies_to_an_issuer_without_its_own_limit(
    lookup_client, settings, checkpoint
):
    # given
    settings.VAULT_RATE_LOOKUP_PER_MINUTE = 1

    # when
    first, second = (lookup(lookup_client, unknown_number()) for _ in range(2))

    # then
    assert (first.status_code, first["RateLimit-Limit"]) == (404, "1")
    assert_problem(second, 429, "rate_limited")


def test_a_plan_costs_its_number_count(lookup_client, issuer, checkpoint):
    # given an issuer allowed three plan numbers a minute per token
    issuer.rate_plan_numbers_per_minute = 3
    issuer.save(update_fields=["rate_plan_numbers_per_minute"])
    two = [unknown_number(), unknown_number()]

    # when
    first = lookup_client.post(PLANS, two, format="json")
    second = lookup_client.post(PLANS, two, format="json")
    third = lookup_client.post(PLANS, [unknown_number()], format="json")

    # then: the refused plan was given back, so one number still fits
    assert (first.status_code, first["RateLimit-Remaining"]) == (200, "1")
    assert_problem(second, 429, "rate_limited")
    assert (third.status_code, third["RateLimit-Remaining"]) == (200, "0")


def test_x_forwarded_for_from_an_untrusted_address_is_ignored(anon_client, settings, checkpoint):
    # given one public request a minute per address, and no trusted proxy
    settings.VAULT_RATE_PUBLIC_PER_MINUTE = 1
    settings.TRUSTED_PROXIES = []

    # when the same client names a new address each time
    first = anon_client.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.1")
    second = anon_client.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.2")

    # then
    assert first.status_code == 200
    assert_problem(second, 429, "rate_limited")
    assert int(second["Retry-After"]) > 0


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(anon_client, settings, checkpoint):
    # given
    settings.VAULT_RATE_PUBLIC_PER_MINUTE = 1
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}

    # when two clients come through the proxy, then the first again
    one = anon_client.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.1", **via_proxy)
    other = anon_client.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.2", **via_proxy)
    again = anon_client.get(CHECKPOINT, HTTP_X_FORWARDED_FOR="203.0.113.1", **via_proxy)

    # then
    assert (one.status_code, other.status_code) == (200, 200)
    assert_problem(again, 429, "rate_limited")


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not a proxy: header ignored
        ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", "203.0.113.9"),  # forged left part
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not-an-address", "not-an-address"),
        ("10.0.0.2", "10.0.0.7, 10.0.0.3", "10.0.0.7"),  # only proxies: the left-most
    ],
)
def test_the_client_address_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    settings, remote, forwarded, client
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == client


def test_provider_applications_are_limited_per_address(anon_client, settings):
    # given
    settings.VAULT_RATE_APPLICATIONS_PER_HOUR = 1

    # when
    first = anon_client.post("/api/v1/provider-applications", {}, format="json")
    second = anon_client.post("/api/v1/provider-applications", {}, format="json")

    # then the first is judged on its content, the second refused before
    assert first.status_code == 400
    assert_problem(second, 429, "rate_limited")


def test_usage_is_counted_in_memory_and_flushed_in_one_row_per_minute(
    lookup_client, issuer, vault, checkpoint, settings
):
    # given no flush during the lookups
    settings.VAULT_USAGE_FLUSH_SECONDS = 3600
    lookup(lookup_client, vault.number)
    lookup(lookup_client, vault.number)
    lookup(lookup_client, unknown_number())
    lookup_client.post(
        f"{PLANS}?purpose=bank_statement", [vault.number, unknown_number()], format="json"
    )
    assert not IssuerUsage.objects.exists()  # no write per lookup

    # when
    out = StringIO()
    call_command("flush_usage", stdout=out)

    # then
    rows = {
        row.purpose: (row.lookups, row.numbers, row.unknown)
        for row in IssuerUsage.objects.filter(issuer=issuer)
    }
    assert rows == {"": (3, 3, 1), "bank_statement": (1, 2, 1)}
    assert "Flushed 2" in out.getvalue()


def test_an_issuer_asking_mostly_unknown_numbers_is_flagged_once(
    lookup_client, issuer, checkpoint, settings
):
    # given
    settings.VAULT_ENUMERATION_MIN_NUMBERS = 5
    settings.VAULT_ENUMERATION_UNKNOWN_PERCENT = 50
    lookup_client.post(PLANS, [unknown_number() for _ in range(6)], format="json")

    # when
    usage.flush()
    lookup_client.post(PLANS, [unknown_number() for _ in range(6)], format="json")
    usage.flush()

    # then
    issuer.refresh_from_db()
    assert issuer.enumeration_suspected_at is not None
    events = AuditEvent.objects.filter(action="usage:enumeration_suspected")
    assert [(e.target_id, e.data["numbers"], e.data["unknown"]) for e in events] == [
        (str(issuer.pk), 6, 6)
    ]


def test_an_issuer_asking_known_numbers_is_not_flagged(
    lookup_client, issuer, vault, checkpoint, settings
):
    # given
    settings.VAULT_ENUMERATION_MIN_NUMBERS = 5
    lookup_client.post(PLANS, [vault.number] * 4 + [unknown_number()], format="json")

    # when
    usage.flush()

    # then
    issuer.refresh_from_db()
    assert issuer.enumeration_suspected_at is None
    assert not AuditEvent.objects.filter(action="usage:enumeration_suspected").exists()


DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "vault_registry_cache",
    }
}


def test_the_database_cache_shares_the_counters_without_redis(db):
    # given the cache of `make run` (a table every worker reads)
    with override_settings(CACHES=DATABASE_CACHE, REDIS_URL=""):
        call_command("createcachetable")
        caches["default"].clear()

        # when
        windows = [ratelimit.hit("test:db", 2, 5, now=120.0) for _ in range(3)]

    # then the refused third hit was given back
    assert [(w.used, w.allowed) for w in windows] == [(2, True), (4, True), (6, False)]
    with override_settings(CACHES=DATABASE_CACHE, REDIS_URL=""):
        assert ratelimit.hit("test:db", 1, 5, now=121.0).used == 5


def _redis_url() -> str | None:
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
    except redis.RedisError:
        return None
    return url


@pytest.fixture
def redis_cache():
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    config = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}}
    with override_settings(CACHES=config, REDIS_URL=url):
        client = ratelimit.redis_client()
        client.flushdb()
        yield client
        client.flushdb()


def test_with_redis_a_lookup_is_one_pipeline_and_usage_rides_along(
    redis_cache, lookup_client, issuer, vault, checkpoint
):
    # given
    issuer.rate_lookups_per_minute = 5

    issuer.save(update_fields=["rate_lookups_per_minute"])

    # when: the second lookup's pipeline carries the first one's usage to Redis
    first = lookup(lookup_client, vault.number)
    second = lookup(lookup_client, unknown_number())
    assert redis_cache.scard(usage.PENDING) == 1
    call_command("flush_usage", stdout=StringIO())

    # then
    assert (first["RateLimit-Remaining"], second["RateLimit-Remaining"]) == ("4", "3")
    row = IssuerUsage.objects.get(issuer=issuer)
    assert (row.lookups, row.numbers, row.unknown) == (2, 2, 1)
    assert redis_cache.scard(usage.PENDING) == 0


def test_the_admin_lists_usage_and_filters_flagged_issuers(otp_client, issuer, settings):
    # given an issuer flagged for enumeration, with its usage flushed
    from tests.factories import IssuerFactory

    settings.VAULT_ENUMERATION_MIN_NUMBERS = 1
    quiet = IssuerFactory(legal_name="Quiet issuer")
    usage.record(issuer.pk, "invoice", numbers=3, unknown=3)
    usage.flush()

    # when
    listed = otp_client.get("/admin/registry/issuerusage/")
    flagged = otp_client.get("/admin/registry/issuer/?enumeration=yes")

    # then
    assert listed.status_code == 200
    assert "invoice" in listed.content.decode()
    page = flagged.content.decode()
    assert issuer.legal_name in page
    assert quiet.legal_name not in page


def test_with_redis_and_the_limit_off_usage_is_still_sent_to_redis(
    redis_cache, lookup_client, issuer, vault, checkpoint, settings
):
    # given no limiter to carry the counts, and counts due at once
    settings.VAULT_RATE_LOOKUP_PER_MINUTE = 0
    settings.VAULT_USAGE_FLUSH_SECONDS = 0

    # when
    answer = lookup(lookup_client, vault.number)
    assert redis_cache.scard(usage.PENDING) == 1
    call_command("flush_usage", stdout=StringIO())

    # then
    assert "RateLimit-Limit" not in answer
    row = IssuerUsage.objects.get(issuer=issuer)
    assert (row.lookups, row.numbers, row.unknown) == (1, 1, 0)


def _workers(count: int, monkeypatch):
    """Leases of ``count`` worker processes, taken in turn (each process has its own)."""
    leases = [{} for _ in range(count)]

    def as_worker(index):
        monkeypatch.setattr(ratelimit, "_leases", leases[index])

    return as_worker


def test_with_redis_a_high_limit_is_counted_by_leases_and_never_exceeded(redis_cache, monkeypatch):
    # given a token allowed 2,560 lookups a minute (leases of 10), seen by three workers
    as_worker = _workers(3, monkeypatch)
    trips = []
    real_pipeline = redis_cache.pipeline
    monkeypatch.setattr(
        type(redis_cache), "pipeline", lambda self, **kw: trips.append(1) or real_pipeline(**kw)
    )
    now = 1_800_000_000.0  # the start of a minute: every hit in one window

    def hit(index):
        as_worker(index % 3)
        return ratelimit.hit("lookup:lease-test", 1, 2560, now=now).allowed

    # when they ask 2,000 lookups in turn within the minute
    allowed = sum(hit(index) for index in range(2000))
    # then all are served, Redis asked about once per lease (of 11 units), not per lookup
    assert allowed == 2000
    assert len(trips) < 2000 / 5
    # and when they ask 1,000 more, no more than the limit is served in all, and at most the
    # workers' unspent leases less
    allowed += sum(hit(index) for index in range(1000))
    assert 2560 - 3 * 10 <= allowed <= 2560
    counted = int(redis_cache.get(f"{ratelimit.KEY_PREFIX}lookup:lease-test:60:{int(now // 60)}"))
    assert counted <= 2560


def test_with_redis_a_lease_expires_and_a_small_limit_is_counted_exactly(redis_cache, monkeypatch):
    as_worker = _workers(1, monkeypatch)
    as_worker(0)
    now = 1_800_000_060.0
    # a small limit takes no lease: the third of 2 is refused, and given back
    results = [ratelimit.hit("lookup:small", 1, 2, now=now).allowed for _ in range(3)]
    assert results == [True, True, False]
    assert ratelimit._leases == {}
    # a high limit's lease is spent locally, then dropped once stale
    first = ratelimit.hit("lookup:stale", 1, 25_600, now=now)
    assert first.used == 1 and ratelimit._leases  # 64 units reserved ahead
    clock = ratelimit.time.monotonic()
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock + ratelimit.LEASE_SECONDS + 1)
    second = ratelimit.hit("lookup:stale", 1, 25_600, now=now)
    # the stale lease's units stay counted (1 + 64), and this hit takes a new one
    assert second.used == 1 + 64 + 1

"""Liveness and readiness for load balancers and orchestrators (issue 12).

``/healthz`` says the process answers: no database, no file, nothing that can hang. ``/readyz``
says this instance can serve the federation: the database answers a fresh connection within
DATABASE_CONNECT_TIMEOUT (PostgreSQL), both signing keys load, and no migration is waiting. A
load balancer takes an instance out of rotation on its 503 (problem+json, code ``not_ready``,
with the check that failed) instead of sending it traffic that would end in 500s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from registry.api.errors import problem_response
from registry.errors import ErrorCode

# Once every migration is applied, it stays so for the life of the process (new migrations come
# with new code, hence a restart): the migration graph is only read until then.
_migrations_applied = False


def database_settings() -> dict[str, Any]:
    """The settings the check connects with: the default database's (tests override this)."""
    return connections[DEFAULT_DB_ALIAS].settings_dict


def check_database() -> str:
    """Open a new connection and run ``SELECT 1``: the requests' own connection may be alive
    while no new one can be made (a restarted or saturated server)."""
    params = database_settings()
    wrapper = load_backend(params["ENGINE"]).DatabaseWrapper(params, "readyz")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error: the database is not usable
        return f"unreachable ({type(exc).__name__})"
    finally:
        wrapper.close()
    return "ok"


def check_keys() -> str:
    from directory import keys

    try:
        for purpose in keys.Purpose:
            keys.signing_key(purpose)
    except Exception as exc:  # missing directory, file, or manifest entry; unreadable PEM
        return f"not loaded ({type(exc).__name__}: {exc})"
    return "ok"


def check_migrations() -> str:
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # the database went away between two checks
        return f"unknown ({type(exc).__name__})"
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        return f"{len(plan)} not applied ({names})"
    _migrations_applied = True
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "keys": check_keys,
    "migrations": check_migrations,
}


@never_cache
@require_safe
def healthz(request):
    """200 as long as the process answers."""
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
def readyz(request):
    """200 when every check passes; 503 problem+json naming the ones that failed."""
    results = {"database": CHECKS["database"]()}
    results["keys"] = CHECKS["keys"]()
    # Without a database the migration state cannot be read: do not wait on it twice.
    results["migrations"] = (
        CHECKS["migrations"]() if results["database"] == "ok" else "unknown (no database)"
    )
    failed = [name for name, result in results.items() if result != "ok"]
    if not failed:
        return JsonResponse({"status": "ready", "checks": results})
    return problem_response(
        503,
        ErrorCode.NOT_READY,
        f"Not ready: {', '.join(failed)}.",
        instance=request.path,
        headers={"Retry-After": str(settings.VAULT_READY_RETRY_AFTER)},
        checks=results,
    )

"""A real federation: three registries as gunicorn processes with their own databases and keys
(the ``real_federation`` fixture, set up as ``make federation`` does), used through HTTP and
the project's verifying client (``vault-registry``), as an issuer of registry-a would.

Each test leaves the three as it found them (a registry killed is started again, a row
tampered with is restored), so they run in any order.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.federation import FEDERATION_KEY_NAME, Node, is_postgres
from directory.client import cli
from directory.client.errors import BadCheckpoint, ProofMismatch
from directory.federation.signatures import sign_as
from directory.transparency import federation as fed
from registry.numbers import check_digits


def _client(federation, *args: str, url: str | None = None) -> tuple[int, str, str]:
    """``vault-registry --url registry-a --federation-key … ARGS``: exit code, stdout, stderr."""
    a = federation.nodes[0]
    out, err = StringIO(), StringIO()
    code = cli.main(
        ["--url", url or a.url, "--token", a.token, "--federation-key", federation.vkey, *args],
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def _plan_file(tmp_path: Path, numbers: list[str]) -> str:
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(numbers) + "\n")
    return str(path)


def _unknown(allocator: str, serial: int = 1) -> str:
    """A well-formed number of ``allocator`` that no vault has."""
    digits = f"{serial:012d}"
    return "FR" + check_digits("FR", allocator, digits) + allocator + digits


# --- a registry's database, behind its back -----------------------------------------------------


def _sql(node: Node, query: str, params: tuple = (), *, bypass: str = "") -> list[tuple]:
    """One statement on the registry's database; ``bypass``: a table whose append-only
    trigger (PostgreSQL) is switched off around it, as its owner could."""
    if is_postgres(node.database_url):
        import psycopg

        with psycopg.connect(node.database_url) as conn, conn.transaction():
            if bypass:
                conn.execute(f"ALTER TABLE {bypass} DISABLE TRIGGER USER")
            cursor = conn.execute(query.replace("?", "%s"), params)
            rows = cursor.fetchall() if cursor.description else []
            if bypass:
                conn.execute(f"ALTER TABLE {bypass} ENABLE TRIGGER USER")
            return rows
    with contextlib.closing(sqlite3.connect(node.database_url.removeprefix("sqlite:///"))) as db:
        rows = db.execute(query, params).fetchall()
        db.commit()
        return rows


@contextlib.contextmanager
def _repointed(node: Node, number: str):
    """The vault's current state record rewritten in the registry's database to name another
    of its providers (an insider's re-pointing), then restored: the signed map still holds
    the hash of the true record."""
    key = f"vault:{number}"
    ((version, record),) = _sql(
        node,
        "SELECT version, record FROM directory_staterecord WHERE key = ? "
        "ORDER BY version DESC LIMIT 1",
        (key,),
    )
    record = bytes(record)
    true_provider = json.loads(record)["provider"]
    other = next(
        str(uuid.UUID(str(pid)))
        for (pid,) in _sql(node, "SELECT id FROM registry_provider")
        if uuid.UUID(str(pid)) != uuid.UUID(true_provider)
    )
    forged = record.replace(true_provider.encode(), other.encode())
    assert forged != record
    update = "UPDATE directory_staterecord SET record = ? WHERE key = ? AND version = ?"
    _sql(node, update, (forged, key, version), bypass="directory_staterecord")
    try:
        yield
    finally:
        _sql(node, update, (record, key, version), bypass="directory_staterecord")


# --- foreign lookups and plans, verified by the client -------------------------------------------


def test_foreign_lookups_are_answered_by_their_home_registry_and_verified(real_federation):
    for node in real_federation.nodes[1:]:
        code, out, err = _client(real_federation, "lookup", node.numbers[0])

        assert code == 0, err
        assert f"answered by {node.name} ({node.url}), its home registry" in out
        assert ": deliverable" in out


def test_a_lookup_through_http_says_who_answered(real_federation):
    a, b = real_federation.nodes[0], real_federation.nodes[1]
    request = urllib.request.Request(
        f"{a.url}/api/v1/vaults/{b.numbers[1]}", headers={"Authorization": f"Bearer {a.token}"}
    )

    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())

    assert answer.headers["Vault-Federation-Answered-By"] == "registry-b"
    assert body["number"] == b.numbers[1]


def test_a_federated_plan_is_verified_part_by_part(real_federation, tmp_path):
    asked = [n for node in real_federation.nodes for n in node.numbers[2:6]]
    asked += [_unknown("VLT3"), "FR00 garbage"]
    out_file = tmp_path / "plan.json"

    code, _out, err = _client(
        real_federation, "plan", _plan_file(tmp_path, asked), "--out", str(out_file)
    )

    assert code == 0, err
    for node in real_federation.nodes:
        assert f"part of {node.name} verified" in err
    plan = json.loads(out_file.read_text())
    assert plan["summary"]["registries_unavailable"] == []
    parts = {part["registry"]: json.loads(part["answer"]) for part in plan["parts"]}
    assert parts["registry-b"]["summary"]["routable"] == 4
    assert parts["registry-c"]["unroutable"] == [{"number": _unknown("VLT3"), "reason": "unknown"}]
    assert parts["registry-a"]["summary"]["asked"] == 5  # its own four and the malformed one


def test_a_streamed_federated_plan_is_verified_and_recorded(real_federation, tmp_path):
    a = real_federation.nodes[0]
    asked = [n for node in real_federation.nodes for n in node.numbers[10:12]]

    code, _out, err = _client(
        real_federation, "plan", _plan_file(tmp_path, asked), "--ndjson", "--out", "-"
    )

    assert code == 0, err
    for node in real_federation.nodes:
        assert f"part of {node.name} verified: 2 numbers" in err
    request = urllib.request.Request(
        f"{a.url}/api/v1/routing-plans",
        data=json.dumps(asked).encode(),
        headers={
            "Authorization": f"Bearer {a.token}",
            "Content-Type": "application/json",
            "Accept": "application/x-ndjson",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        location, streamed = answer.headers["Location"], answer.read()
    end = json.loads(streamed.splitlines()[-1])
    shown = urllib.request.Request(a.url + location, headers={"Authorization": f"Bearer {a.token}"})
    with urllib.request.urlopen(shown, timeout=30) as answer:
        record = json.loads(answer.read())
    assert record["answer_sha256"] == end["answer_sha256"]
    assert (record["asked"], record["routable"]) == (6, 6)
    assert [(r["registry"], r["count"]) for r in record["registries"]] == [
        ("registry-a", 2),
        ("registry-b", 2),
        ("registry-c", 2),
    ]


# --- a peer killed in the middle of a plan ------------------------------------------------------


def _connections_to(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (the server side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


def test_a_peer_killed_mid_plan_costs_only_its_numbers(real_federation, tmp_path):
    a, b, c = real_federation.nodes
    asked = [*a.numbers[6:9], *b.numbers[6:9], *c.numbers[6:9]]
    out_file = tmp_path / "plan.json"
    result: dict = {}
    b.signal(signal.SIGSTOP)  # b's kernel still accepts the connection; b answers nothing
    try:
        asking = threading.Thread(
            target=lambda: result.update(
                answer=_client(
                    real_federation, "plan", _plan_file(tmp_path, asked), "--out", str(out_file)
                )
            )
        )
        asking.start()
        deadline = time.monotonic() + 30
        while _connections_to(b.port) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _connections_to(b.port) > 0, "registry-a never called registry-b"
        assert asking.is_alive()  # the plan is waiting for registry-b

        b.kill()
        asking.join(60)
    finally:
        b.kill()
        b.start()
        b.wait_ready()

    code, _out, err = result["answer"]
    assert code == 0, err
    assert "part of registry-a verified: 3 numbers" in err
    assert "part of registry-c verified: 3 numbers" in err
    assert "registry-b unavailable: 3 numbers not resolved" in err
    plan = json.loads(out_file.read_text())
    assert plan["summary"]["registries_unavailable"] == ["registry-b"]
    assert sorted(plan["unavailable"], key=lambda item: item["number"]) == [
        {"number": n, "reason": "registry_unavailable:registry-b"} for n in sorted(b.numbers[6:9])
    ]


# --- a peer that lies -----------------------------------------------------------------------------


def test_a_lookup_answered_from_a_tampered_database_is_refused(real_federation):
    b = real_federation.nodes[1]
    number = b.numbers[-1]

    with _repointed(b, number):
        code, _out, err = _client(real_federation, "lookup", number)

    assert code == ProofMismatch.exit_code, err
    assert "REFUSED" in err
    assert _client(real_federation, "lookup", number)[0] == 0  # restored: verified again


def test_a_plan_part_from_a_tampered_database_is_refused(real_federation, tmp_path):
    a, _b, c = real_federation.nodes
    number = c.numbers[-1]

    with _repointed(c, number):
        code, _out, err = _client(
            real_federation, "plan", _plan_file(tmp_path, [a.numbers[9], number]), "--out", "-"
        )

    assert code == ProofMismatch.exit_code, err
    assert "REFUSED" in err


# --- the bootstrap ------------------------------------------------------------------------------


class _ServesDocument(BaseHTTPRequestHandler):
    document = ""

    def do_GET(self):
        body = self.document.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_client_refuses_a_bootstrap_not_signed_by_the_pinned_key(real_federation):
    """A registry serving a newer document signed by someone else's key: refused (exit 7)."""
    forged = dict(
        real_federation.setup["document"], serial=real_federation.setup["document"]["serial"] + 1
    )
    handler = type(
        "Forged",
        (_ServesDocument,),
        {"document": fed.sign(forged, FEDERATION_KEY_NAME, Ed25519PrivateKey.generate())},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, _out, err = _client(
            real_federation,
            "lookup",
            real_federation.nodes[1].numbers[0],
            url=f"http://127.0.0.1:{server.server_address[1]}",
        )
    finally:
        server.shutdown()
        server.server_close()

    assert code == BadCheckpoint.exit_code, err
    assert "the federation document is refused" in err


def _install(node: Node, note: str, tmp_path: Path) -> tuple[int, str]:
    """``manage.py federation install`` on a running registry's database, as its operator."""
    import subprocess
    import sys

    from deploy.federation import ROOT

    path = tmp_path / "candidate.note"
    path.write_text(note)
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "federation", "install", str(path)],
        env=node.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stderr


def _served_serial(node: Node) -> int:
    with urllib.request.urlopen(f"{node.url}/.well-known/vault-federation", timeout=10) as answer:
        return fed.parse(json.loads(answer.read().decode().split("\n")[1])).serial


def test_a_registry_refuses_an_old_or_forged_bootstrap(real_federation, tmp_path):
    a = real_federation.nodes[0]
    document = real_federation.setup["document"]
    old = fed.sign(
        dict(document, serial=document["serial"] - 1),
        FEDERATION_KEY_NAME,
        real_federation.setup["private_key"],
    )
    forged = fed.sign(
        dict(document, serial=document["serial"] + 1),
        FEDERATION_KEY_NAME,
        Ed25519PrivateKey.generate(),
    )

    old_code, old_err = _install(a, old, tmp_path)
    forged_code, forged_err = _install(a, forged, tmp_path)

    assert old_code != 0 and "federation_document_refused" in old_err
    assert forged_code != 0 and "federation_document_refused" in forged_err
    assert _served_serial(a) == document["serial"]


# --- registry-to-registry requests ---------------------------------------------------------------


def _peer_key(node: Node) -> Ed25519PrivateKey:
    return serialization.load_pem_private_key((node.key_dir / "peer.key").read_bytes(), None)


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_registry_to_registry_requests_unsigned_replayed_stale_or_foreign_are_refused(
    real_federation,
):
    a, b = real_federation.nodes[0], real_federation.nodes[1]
    url = f"{b.url}/api/v1/routing-plans"
    body = json.dumps([b.numbers[0]]).encode()
    plain = {"Content-Type": "application/json", "Accept": "application/json"}
    signed = sign_as("registry-a", _peer_key(a), "POST", url, plain, body, "issuer-1")
    stale = sign_as(
        "registry-a",
        _peer_key(a),
        "POST",
        url,
        plain,
        body,
        "issuer-1",
        created=datetime.now(UTC) - timedelta(seconds=120),
    )
    foreign = sign_as("registry-z", Ed25519PrivateKey.generate(), "POST", url, plain, body, "i")

    first = _post(url, signed, body)
    replayed = _post(url, signed, body)
    unsigned = _post(url, {**plain, "Vault-Federation-Issuer": "issuer-1"}, body)

    assert first[0] == 200 and first[1]["summary"]["routable"] == 1
    assert replayed[0] == 401 and replayed[1]["code"] == "replayed_request"
    assert unsigned[0] == 401 and unsigned[1]["code"] == "unsigned_request"
    assert _post(url, stale, body)[1]["code"] == "stale_request"
    status, problem = _post(url, foreign, body)
    assert status == 403 and problem["code"] == "not_a_federation_member"

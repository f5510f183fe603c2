"""The witness (c2sp.org/tlog-witness) against a fake registry built from the pure modules, and
the registry's side that asks witnesses for cosignatures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from io import BytesIO
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory import witnessing
from directory.transparency import cosignature as cosig
from directory.transparency import merkle, note, records, statemap, tiles
from directory.witness import app, cli

ORIGIN = "registry.test/log"
BASE = "https://registry.test"
T0 = 1_700_000_000
W_NAME = "witness.test/w1"
W_KEY = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
W_PUBLIC = W_KEY.public_key().public_bytes_raw()
_TILE = re.compile(r"((?:x\d{3}/)*)(\d{3})(?:\.p/(\d+))?")


# --- A fake registry: log entries with records, the RFC 9162 tree, the state map -------------


def vault(number: str, provider: str, status: str = "active") -> dict[str, Any]:
    return {"type": "vault", "number": number, "provider": provider, "status": status}


def provider(pid: str, status: str = "active") -> dict[str, Any]:
    return {"type": "provider", "id": pid, "status": status, "legal_name": f"P {pid}"}


class FakeRegistry:
    """Serves entry tiles (GET) and state proofs (POST) and signs checkpoints, from memory."""

    def __init__(self, key: Ed25519PrivateKey | None = None, base: str = BASE):
        self.key = key or Ed25519PrivateKey.generate()
        self.base = base
        self.entries: list[bytes] = []
        self.rewritten: dict[int, bytes] = {}  # entries served other than as logged
        self.proof_requests: list[dict[str, Any]] = []
        self.down = False
        self.delay = 0.0
        self.lie_in_proofs = False

    @property
    def vkey(self) -> str:
        return note.verifier_key(ORIGIN, self.key.public_key().public_bytes_raw())

    def append(self, *recs: dict[str, Any], kind: str = "change") -> None:
        entry: dict[str, Any] = {"kind": kind, "seq": len(self.entries)}
        if recs:
            entry["records"] = list(recs)
        self.entries.append(rfc8785.dumps(entry))

    def grow(self, count: int) -> None:
        """``count`` entries: new vaults, a vault moving, a provider change, a record-less one."""
        for _ in range(count):
            i = len(self.entries)
            if i % 5 == 4:
                self.append(kind="note")
            elif i % 5 == 3:
                self.append(vault(f"FR{i // 2:04d}", "p2"), provider("p2", "suspended"))
            else:
                self.append(vault(f"FR{i:04d}", "p1"), provider("p1"))

    def leaf_hashes(self) -> list[bytes]:
        return [merkle.leaf_hash(e) for e in self.entries]

    def root(self, size: int) -> bytes:
        return merkle.root_from_leaf_hashes(self.leaf_hashes()[:size])

    def state(self, size: int) -> dict[str, records.Record]:
        return records.replay(json.loads(e) for e in self.entries[:size])

    def map_root(self, size: int) -> bytes:
        items = [(statemap.path_of(k), records.value_of(r)) for k, r in self.state(size).items()]
        return statemap.root_of(items)

    def checkpoint(
        self,
        size: int,
        *,
        root: bytes | None = None,
        map_root: bytes | None = None,
        at: int = T0,
        key: Ed25519PrivateKey | None = None,
        origin: str = ORIGIN,
    ) -> str:
        root = self.root(size) if root is None else root
        map_root = self.map_root(size) if map_root is None else map_root
        b64 = base64.b64encode
        text = f"{origin}\n{size}\n{b64(root).decode()}\nmap {b64(map_root).decode()}\ntime {at}\n"
        return note.sign(text, ORIGIN, key or self.key)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(self.leaf_hashes(), old, new)

    def body(self, old: int, size: int, **checkpoint: Any) -> bytes:
        proof = self.consistency(old, size) if 0 < old < size else []
        return cosig.add_checkpoint_body(old, proof, self.checkpoint(size, **checkpoint))

    # The transports the witness is given.

    def get(self, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.down:
            raise OSError("connection refused")
        time.sleep(self.delay)
        prefix = f"{self.base}/api/v1/log/tile/entries/"
        match = _TILE.fullmatch(url.removeprefix(prefix))
        assert url.startswith(prefix) and match, url
        index = int("".join(re.findall(r"\d{3}", match.group(1))) + match.group(2))
        width = int(match.group(3) or tiles.TILE_WIDTH)
        start = index * tiles.TILE_WIDTH
        if start + width > len(self.entries):
            return 404, b'{"code": "tile_not_found"}'
        bodies = [self.rewritten.get(i, self.entries[i]) for i in range(start, start + width)]
        return 200, tiles.join_bundle(bodies)

    def post(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.down:
            raise OSError("connection refused")
        assert url == f"{self.base}/api/v1/state/proofs"
        assert headers["Content-Type"] == "application/json"
        request = json.loads(body)
        self.proof_requests.append(request)
        size, keys = request["size"], request["keys"]
        state = self.state(size)
        if self.lie_in_proofs:  # the old map with one record changed
            first = sorted(state)[0]
            state[first] = {**state[first], "status": "closed"}
        items = [(statemap.path_of(k), records.value_of(r)) for k, r in state.items()]
        root, nodes = statemap.build(items)
        table = {n.node_id: n for n in nodes}
        paths = [statemap.path_of(k) for k in keys]
        tree = statemap.PartialTree.load(
            paths, lambda ids: {i: table[i] for i in ids if i in table}
        )
        answer = {
            "size": size,
            "map_root": base64.b64encode(root).decode(),
            "proof": base64.b64encode(tree.encode(paths)).decode(),
            "records": {k: state.get(k) for k in keys},
        }
        return 200, json.dumps(answer).encode()


# --- Driving the WSGI app ----------------------------------------------------------------------


class Clock:
    def __init__(self, now: int = T0 + 60):
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(
    wsgi: Any, body: bytes = b"", *, method: str = "POST", path: str = "/add-checkpoint"
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD=method, PATH_INFO=path, CONTENT_LENGTH=str(len(body)))
    environ["wsgi.input"] = BytesIO(body)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(wsgi(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], out


def make_witness(
    tmp_path: Path, registry: FakeRegistry, name: str = W_NAME, key: Ed25519PrivateKey = W_KEY
) -> app.Witness:
    folder = tmp_path / name.replace("/", "_")
    folder.mkdir()
    app.add_log(folder / "state.db", ORIGIN, registry.vkey, registry.base)
    return app.Witness(
        folder / "state.db",
        name,
        key,
        folder / "evidence",
        get=registry.get,
        post=registry.post,
        clock=Clock(),
    )


def stored(witness: app.Witness) -> tuple[int, bytes, bytes, str]:
    db = sqlite3.connect(witness.state_path)
    row = db.execute("SELECT size, root, map_root, note FROM logs").fetchone()
    db.close()
    return row[0], bytes(row[1]), bytes(row[2]), row[3]


def evidence(witness: app.Witness) -> list[Path]:
    folder = witness.evidence_dir
    return sorted(folder.iterdir()) if folder.exists() else []


def cosigned(witness: app.Witness, signed: str, answer: bytes) -> dict[str, int]:
    return cosig.verify_cosignatures(signed + answer.decode(), {witness.name: [W_PUBLIC]})


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def witness(tmp_path: Path, registry: FakeRegistry) -> app.Witness:
    return make_witness(tmp_path, registry)


def cosign(witness: app.Witness, registry: FakeRegistry, old: int, size: int) -> None:
    status, _headers, answer = call(witness, registry.body(old, size))
    assert status == 200, answer


# --- Cosigning -----------------------------------------------------------------------------------


def test_the_first_checkpoint_is_replayed_from_size_zero_and_cosigned(witness, registry):
    registry.grow(7)
    signed = registry.checkpoint(7)

    status, headers, answer = call(witness, cosig.add_checkpoint_body(0, [], signed))

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert answer.startswith(f"\u2014 {W_NAME} ".encode()) and answer.count(b"\n") == 1
    assert cosigned(witness, signed, answer) == {W_NAME: T0 + 60}
    assert stored(witness) == (7, registry.root(7), registry.map_root(7), signed + answer.decode())
    assert registry.proof_requests == []  # the map at size 0 is empty: nothing to prove


def test_honest_growth_across_a_tile_boundary_is_cosigned(witness, registry):
    registry.grow(250)
    cosign(witness, registry, 0, 250)
    registry.grow(60)  # updates vaults and providers already in the map, adds new ones
    signed = registry.checkpoint(310, at=T0 + 30)
    body = cosig.add_checkpoint_body(250, registry.consistency(250, 310), signed)
    witness.clock.now = T0 + 90

    status, _headers, answer = call(witness, body)

    assert status == 200, answer
    assert cosigned(witness, signed, answer) == {W_NAME: T0 + 90}
    assert stored(witness)[:3] == (310, registry.root(310), registry.map_root(310))
    [request] = registry.proof_requests
    assert request["size"] == 250
    assert set(request["keys"]) == set(
        records.replay(json.loads(e) for e in registry.entries[250:])
    )
    assert "provider:p1" in request["keys"]  # a key already in the old map


def test_entries_without_records_leave_the_map_as_it_was(witness, registry):
    registry.grow(3)
    cosign(witness, registry, 0, 3)
    registry.append(kind="note")
    registry.append(kind="note")

    status, _headers, answer = call(witness, registry.body(3, 5))

    assert status == 200, answer
    assert registry.map_root(5) == registry.map_root(3) == stored(witness)[2]
    assert registry.proof_requests == []


def test_the_same_checkpoint_again_is_cosigned_again(witness, registry):
    registry.grow(5)
    body = registry.body(0, 5)
    cosign(witness, registry, 0, 5)
    witness.clock.now += 100

    status, _headers, answer = call(witness, registry.body(5, 5, at=T0 + 50))

    assert status == 200
    assert cosigned(witness, registry.checkpoint(5, at=T0 + 50), answer) == {W_NAME: T0 + 160}
    assert stored(witness)[0] == 5
    # The first request, from size 0, is now out of date.
    status, headers, answer = call(witness, body)
    assert (status, headers["Content-Type"], answer) == (409, "text/x.tlog.size", b"5\n")


# --- Refusals ------------------------------------------------------------------------------------


def test_a_wrong_old_size_gets_409_with_the_witness_size(witness, registry):
    registry.grow(5)
    cosign(witness, registry, 0, 3)

    status, headers, answer = call(witness, registry.body(2, 5))

    assert (status, headers["Content-Type"], answer) == (409, "text/x.tlog.size", b"3\n")
    assert evidence(witness) == []


def test_a_bad_consistency_proof_gets_422_and_is_kept(witness, registry):
    registry.grow(5)
    cosign(witness, registry, 0, 3)
    proof = registry.consistency(3, 5)
    proof[0] = bytes(32)
    body = cosig.add_checkpoint_body(3, proof, registry.checkpoint(5))

    status, _headers, answer = call(witness, body)

    assert status == 422 and b"consistency" in answer
    assert stored(witness)[0] == 3
    assert [p.suffix for p in evidence(witness)] == [".cosigned", ".refused"]


def test_a_lie_about_the_map_root_gets_422_and_evidence(witness, registry):
    registry.grow(3)
    cosign(witness, registry, 0, 3)
    cosigned_note = stored(witness)[3]
    registry.grow(2)
    # The registry re-points a vault in its map without logging it: the map line is not the
    # root the logged records build.
    state = {**registry.state(5), "vault:FR0000": vault("FR0000", "attacker")}
    lie = statemap.root_of((statemap.path_of(k), records.value_of(r)) for k, r in state.items())
    body = registry.body(3, 5, map_root=lie)

    status, _headers, answer = call(witness, body)

    assert status == 422 and b"map" in answer
    cosigned_file, refused_file = evidence(witness)
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()[:16]
    assert cosigned_file.name.startswith(f"{origin_hash}-3-5-") and "-map-" in cosigned_file.name
    assert cosigned_file.read_text() == cosigned_note
    assert refused_file.read_bytes() == body
    assert stored(witness)[0] == 3
    # The same refused body again is refused again, and kept once.
    assert call(witness, body)[0] == 422
    assert len(evidence(witness)) == 2


def test_a_rewritten_entry_gets_422_and_evidence(witness, registry):
    registry.grow(3)
    cosign(witness, registry, 0, 3)
    registry.grow(3)
    # The signed root covers the logged entry 4; the tiles serve another one.
    registry.rewritten[4] = rfc8785.dumps({"kind": "change", "records": [vault("FR0004", "x")]})

    status, _headers, answer = call(witness, registry.body(3, 6))

    assert status == 422 and b"root" in answer
    assert "-entries-" in evidence(witness)[0].name
    assert stored(witness)[0] == 3


def test_another_root_for_a_size_already_cosigned_gets_409_and_evidence(witness, registry):
    registry.grow(4)
    cosign(witness, registry, 0, 4)
    fork = FakeRegistry(key=registry.key)
    fork.grow(3)
    fork.append(vault("FR0003", "attacker"))

    status, headers, answer = call(witness, fork.body(4, 4))

    assert (status, headers["Content-Type"], answer) == (409, "text/x.tlog.size", b"4\n")
    assert "-fork-" in evidence(witness)[0].name


def test_a_bad_map_proof_gets_422_without_evidence(witness, registry):
    registry.grow(3)
    cosign(witness, registry, 0, 3)
    registry.grow(2)
    registry.lie_in_proofs = True

    status, _headers, answer = call(witness, registry.body(3, 5))

    assert status == 422 and b"map proof" in answer
    assert evidence(witness) == []  # an unsigned answer proves nothing about the log


def test_an_unknown_key_gets_403(witness, registry):
    registry.grow(3)
    body = registry.body(0, 3, key=Ed25519PrivateKey.generate())
    assert call(witness, body)[0] == 403


def test_a_bad_signature_by_the_log_key_gets_403(witness, registry):
    registry.grow(3)
    signed = registry.checkpoint(3).replace(f"time {T0}", f"time {T0 + 1}")
    assert call(witness, cosig.add_checkpoint_body(0, [], signed))[0] == 403


def test_an_unknown_origin_gets_404(witness, registry):
    registry.grow(3)
    assert call(witness, registry.body(0, 3, origin="other.test/log"))[0] == 404


@pytest.mark.parametrize(
    "body",
    [b"", b"old 0\n", b"old 00\n\nx\n\n\xe2\x80\x94 a b\n", b"hello\n\nworld\n"],
)
def test_a_malformed_body_gets_400(witness, body):
    assert call(witness, body)[0] == 400


def test_an_old_size_above_the_checkpoint_gets_400(witness, registry):
    registry.grow(3)
    signed = registry.checkpoint(3)
    assert call(witness, cosig.add_checkpoint_body(5, [bytes(32)], signed))[0] == 400


def test_a_signed_checkpoint_without_a_map_line_gets_400(witness, registry):
    registry.grow(3)
    text = f"{ORIGIN}\n3\n{base64.b64encode(registry.root(3)).decode()}\n"
    signed = note.sign(text, ORIGIN, registry.key)
    assert call(witness, cosig.add_checkpoint_body(0, [], signed))[0] == 400


def test_an_unreachable_registry_gets_502_and_nothing_changes(witness, registry):
    registry.grow(3)
    registry.down = True

    status, _headers, _answer = call(witness, registry.body(0, 3))

    assert status == 502
    assert stored(witness)[0] == 0 and evidence(witness) == []
    registry.down = False
    cosign(witness, registry, 0, 3)


def test_other_methods_paths_and_bodies(witness):
    assert call(witness, method="GET")[0] == 405
    assert call(witness, path="/")[0] == 404
    assert call(witness, b"x" * (app.MAX_BODY + 1))[0] == 413


def test_concurrent_requests_are_serialised(witness, registry):
    registry.grow(5)
    registry.delay = 0.1
    bodies = [registry.body(0, 3), registry.body(0, 5)]
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda b=b: statuses.append(call(witness, b)[0])) for b in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]


# --- Over HTTP, and the CLI ----------------------------------------------------------------------


def test_the_witness_serves_add_checkpoint_over_http(witness, registry):
    registry.grow(3)
    server = app.make_witness_server(witness, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/add-checkpoint"
        post = app.urllib_post(timeout=10)
        status, answer = post(url, {}, registry.body(0, 3))
        assert status == 200 and cosigned(witness, registry.checkpoint(3), answer)
        assert post(url, {}, registry.body(0, 3)) == (409, b"3\n")
    finally:
        server.shutdown()
        server.server_close()


def test_keygen_writes_a_private_key_file_and_prints_the_vkey(tmp_path, capsys):
    key = tmp_path / "w.pem"

    assert cli.main(["keygen", "--key", str(key), "--name", W_NAME]) == 0

    assert os.stat(key).st_mode & 0o777 == 0o600
    vkey = capsys.readouterr().out.strip()
    public = app.load_private_key(key).public_key().public_bytes_raw()
    assert cosig.parse_vkey(vkey) == (W_NAME, public)
    assert cli.main(["keygen", "--key", str(key), "--name", W_NAME]) == 1  # never overwritten


def test_add_log_adds_then_updates_only_the_key_and_url(tmp_path, registry, capsys):
    state = tmp_path / "state.db"
    args = ["add-log", "--state", str(state), "--origin", ORIGIN, "--vkey", registry.vkey]
    assert cli.main([*args, "--url", BASE]) == 0
    assert cli.main([*args, "--url", BASE + "/v2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"added {ORIGIN}",
        f"updated key and URL of {ORIGIN}",
    ]
    assert cli.main([*args[:-1], "not-a-vkey", "--url", BASE]) == 1


# --- The registry's side: request_cosignatures ---------------------------------------------------


class Witnesses:
    """Three witnesses over one fake network: the POST transport request_cosignatures uses."""

    def __init__(self, tmp_path: Path, registry: FakeRegistry):
        self.keys = {
            f"w{i}.test": Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (1, 2, 3)
        }
        self.apps = {
            name: make_witness(tmp_path, registry, name, key) for name, key in self.keys.items()
        }
        self.down: set[str] = set()
        self.requests: list[tuple[str, int]] = []

    def config(self) -> list[dict[str, str]]:
        return [
            {"name": n, "vkey": w.vkey, "url": f"https://{n}/witness"} for n, w in self.apps.items()
        ]

    def post(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        name = urllib.parse.urlsplit(url).hostname
        assert url == f"https://{name}/witness/add-checkpoint"
        if name in self.down:
            raise OSError("connection refused")
        self.requests.append((name, int(body.split(b"\n", 1)[0][4:])))
        status, _headers, answer = call(self.apps[name], body)
        return status, answer

    def policy(self, quorum: int) -> cosig.WitnessPolicy:
        return cosig.WitnessPolicy.from_vkeys([w.vkey for w in self.apps.values()], quorum)


def test_request_cosignatures_collects_the_valid_ones_and_skips_failures(tmp_path, registry):
    network = Witnesses(tmp_path, registry)
    network.down.add("w3.test")
    registry.grow(3)
    signed = registry.checkpoint(3)
    sizes: dict[str, int] = {}

    lines = witnessing.request_cosignatures(
        signed, registry.consistency, network.config(), post=network.post, timeout=5, sizes=sizes
    )

    assert len(lines) == 2
    assert network.policy(2).check(signed + "".join(lines), now=T0 + 60, max_age=600) == [
        "w1.test",
        "w2.test",
    ]
    assert sizes == {"w1.test": 3, "w2.test": 3}


def test_a_409_is_retried_once_from_the_witness_size(tmp_path, registry):
    network = Witnesses(tmp_path, registry)
    registry.grow(8)
    cosign(network.apps["w1.test"], registry, 0, 5)  # w1 cosigned 5 for another registry process
    signed = registry.checkpoint(8)

    lines = witnessing.request_cosignatures(
        signed, registry.consistency, network.config(), post=network.post, timeout=5, sizes={}
    )

    assert len(lines) == 3
    assert sorted(network.requests) == [
        ("w1.test", 0),
        ("w1.test", 5),
        ("w2.test", 0),
        ("w3.test", 0),
    ]


def test_an_invalid_cosignature_is_dropped(tmp_path, registry):
    network = Witnesses(tmp_path, registry)
    registry.grow(3)
    signed = registry.checkpoint(3)
    impostor = Ed25519PrivateKey.generate()

    def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if "w2.test" in url:  # w2's name, another key: a line to ignore
            return 200, cosig.sign_cosignature(
                signed.split("\n\n")[0] + "\n", "w2.test", impostor, T0
            ).encode()
        return network.post(url, headers, body)

    lines = witnessing.request_cosignatures(
        signed, registry.consistency, network.config(), post=post, timeout=5, sizes={}
    )

    assert {line.split(" ")[1] for line in lines} == {"w1.test", "w3.test"}


def test_a_slow_witness_is_given_up_after_the_timeout(tmp_path, registry):
    network = Witnesses(tmp_path, registry)
    registry.grow(3)
    release = threading.Event()

    def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if "w3.test" in url:
            release.wait(10)
        return network.post(url, headers, body)

    started = time.monotonic()
    lines = witnessing.request_cosignatures(
        registry.checkpoint(3),
        registry.consistency,
        network.config(),
        post=post,
        timeout=0.5,
        sizes={},
    )
    release.set()

    assert time.monotonic() - started < 3
    assert {line.split(" ")[1] for line in lines} == {"w1.test", "w2.test"}


def test_a_lying_witness_alone_cannot_make_a_quorum_for_a_fork(tmp_path, registry):
    network = Witnesses(tmp_path, registry)
    registry.grow(5)
    honest = registry.checkpoint(5)
    honest_lines = witnessing.request_cosignatures(
        honest, registry.consistency, network.config()[:2], post=network.post, timeout=5, sizes={}
    )
    # The registry shows another history of size 5 to some clients; w3 has only seen that one.
    fork = FakeRegistry(key=registry.key)
    fork.grow(4)
    fork.append(vault("FR0000", "attacker"))
    forked = fork.checkpoint(5)
    for name in ("w1.test", "w2.test"):
        network.apps[name].get, network.apps[name].post = fork.get, fork.post
    network.apps["w3.test"].get, network.apps["w3.test"].post = fork.get, fork.post

    fork_lines = witnessing.request_cosignatures(
        forked, fork.consistency, network.config(), post=network.post, timeout=5, sizes={}
    )

    assert [line.split(" ")[1] for line in fork_lines] == ["w3.test"]  # w1 and w2 refuse it
    assert all(evidence(network.apps[n]) for n in ("w1.test", "w2.test"))
    policy = network.policy(2)
    assert policy.check(honest + "".join(honest_lines), now=T0 + 60, max_age=600)
    with pytest.raises(cosig.NoQuorum):
        policy.check(forked + "".join(fork_lines), now=T0 + 60, max_age=600)

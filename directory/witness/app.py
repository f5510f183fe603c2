"""The witness: ``POST /add-checkpoint`` (c2sp.org/tlog-witness) as a WSGI app over SQLite state.

For each log (by origin) the state holds the log's verifier key, the registry's base URL and what
was last cosigned: size, log root, map root, the tree's frontier and the note. A checkpoint is
cosigned only after the witness has replayed it: the new entries, fetched from the registry's
entry tiles, extend the stored frontier to exactly the new root, and their records, applied to a
multiproof of the old map, give exactly the new ``map`` line. All checks and the state update run
in one ``BEGIN IMMEDIATE`` transaction, so concurrent requests serialise (tlog-witness requires
the size check and the update to be atomic). A checkpoint signed by the log but refused for what
it claims is kept as evidence: the previously cosigned note and the refused request body.

Status codes follow tlog-witness: 400 malformed, 403 no valid log signature, 404 unknown origin,
409 old size is not ours (body: our size, ``text/x.tlog.size``) or same size with another root,
422 proof, entries or map do not check out. Where the spec is silent: 502 when the registry's
tiles or map proofs cannot be fetched (nothing is wrong with the checkpoint as far as we know),
405/411/413 for the wrong method, a missing or an oversized body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import socketserver
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.client import http as registry_http
from directory.client.errors import RegistryError
from directory.transparency import cosignature as cosig
from directory.transparency import merkle, note, records, statemap, tiles
from directory.transparency.note import Checkpoint

logger = logging.getLogger("directory.witness")

MAX_BODY = 256 * 1024  # 63 proof lines and a note with a few dozen signatures fit easily
SIZE_CONTENT_TYPE = "text/x.tlog.size"
STATE_PROOFS_PATH = "/api/v1/state/proofs"

Get = registry_http.Transport
Post = Callable[[str, dict[str, str], bytes], tuple[int, bytes]]
"""``post(url, headers, body) -> (status, body)``: one POST; tests inject a fake registry."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    vkey TEXT NOT NULL,
    url TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    map_root BLOB NOT NULL,
    frontier BLOB NOT NULL,
    note TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"""


def urllib_post(timeout: float = 30.0) -> Post:
    """A POST over HTTP(S) with the standard library; raises OSError when unreachable."""

    def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if not url.startswith(("https://", "http://")):
            raise OSError(f"not an HTTP URL: {url}")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return post


# --- State -------------------------------------------------------------------------------------


@dataclass(slots=True)
class LogState:
    """What the witness last cosigned for one log."""

    origin: str
    vkey: str
    url: str
    size: int
    root: bytes
    map_root: bytes
    frontier: merkle.Frontier
    note: str


def _pack_frontier(frontier: merkle.Frontier) -> bytes:
    return b"".join(bytes([height]) + digest for height, digest in frontier)


def _unpack_frontier(blob: bytes) -> merkle.Frontier:
    return [(blob[i], bytes(blob[i + 1 : i + 33])) for i in range(0, len(blob), 33)]


def connect(path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """The state database, autocommit (transactions are explicit), waiting on other writers."""
    db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
    if create:
        db.executescript(SCHEMA)
    return db


def add_log(path: str | Path, origin: str, vkey: str, url: str) -> bool:
    """Witness the log ``origin``: its Ed25519 note verifier key and the registry's base URL.

    A new log starts at size 0 (empty tree, empty map). For a known log only the key and the
    URL change (key rotation, a move): what was cosigned stays. Returns True for a new log.
    """
    cosig.parse_vkey(vkey, cosig.ALG_ED25519)
    if not origin or "\n" in origin:
        raise ValueError("invalid origin")
    if not url.startswith(("https://", "http://")):
        raise ValueError("the registry URL must be http(s)")
    db = connect(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        known = db.execute("SELECT 1 FROM logs WHERE origin = ?", (origin,)).fetchone()
        if known:
            db.execute("UPDATE logs SET vkey = ?, url = ? WHERE origin = ?", (vkey, url, origin))
        else:
            db.execute(
                "INSERT INTO logs VALUES (?, ?, ?, 0, ?, ?, ?, '', ?)",
                (origin, vkey, url, merkle.EMPTY_ROOT, statemap.EMPTY, b"", int(time.time())),
            )
        db.execute("COMMIT")
    finally:
        db.close()
    return not known


def _load(db: sqlite3.Connection, origin: str) -> LogState | None:
    row = db.execute(
        "SELECT origin, vkey, url, size, root, map_root, frontier, note FROM logs WHERE origin = ?",
        (origin,),
    ).fetchone()
    if row is None:
        return None
    origin, vkey, url, size, root, map_root, frontier, signed = row
    return LogState(
        origin, vkey, url, size, bytes(root), bytes(map_root), _unpack_frontier(frontier), signed
    )


def _store(db: sqlite3.Connection, state: LogState, now: int) -> None:
    db.execute(
        "UPDATE logs SET size = ?, root = ?, map_root = ?, frontier = ?, note = ?, "
        "updated_at = ? WHERE origin = ?",
        (
            state.size,
            state.root,
            state.map_root,
            _pack_frontier(state.frontier),
            state.note,
            now,
            state.origin,
        ),
    )


# --- Answers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, content type and body."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, message: str) -> Reply:
        return cls(status, (message.rstrip("\n") + "\n").encode())

    @classmethod
    def size(cls, size: int) -> Reply:
        return cls(HTTPStatus.CONFLICT, f"{size}\n".encode(), SIZE_CONTENT_TYPE)


class Evidence(StrEnum):
    """Why a checkpoint the log signed was refused: the name of its evidence files."""

    INCONSISTENT = "inconsistent"  # the consistency proof does not verify
    FORK = "fork"  # another root for a size already cosigned
    ENTRIES = "entries"  # the served entries do not hash to the signed root
    UNREPLAYABLE = "unreplayable"  # a signed entry's records cannot be read
    MAP = "map"  # the map line is not the root the entries build


class _Refused(Exception):
    def __init__(self, reply: Reply, evidence: Evidence | None = None, reason: str = ""):
        super().__init__(reason or reply.body.decode(errors="replace").strip())
        self.reply = reply
        self.evidence = evidence


def _refused(status: int, message: str, evidence: Evidence | None = None) -> _Refused:
    return _Refused(Reply.text(status, message), evidence)


def _unprocessable(message: str, evidence: Evidence | None = None) -> _Refused:
    return _refused(HTTPStatus.UNPROCESSABLE_ENTITY, message, evidence)


def _upstream(message: str) -> _Refused:
    return _refused(HTTPStatus.BAD_GATEWAY, message)


# --- The witness -------------------------------------------------------------------------------


class Witness:
    """The add-checkpoint logic and its WSGI app (call the instance with environ, start_response).

    ``get`` fetches the registry's tiles (``directory.client.http.Transport``), ``post`` its map
    proofs; both default to urllib, tests inject a fake registry. ``clock`` gives the cosignature
    timestamps.
    """

    def __init__(
        self,
        state_path: str | Path,
        name: str,
        private_key: Ed25519PrivateKey,
        evidence_dir: str | Path,
        *,
        get: Get | None = None,
        post: Post | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.state_path = state_path
        self.name = name
        self.private_key = private_key
        self.evidence_dir = Path(evidence_dir)
        self.get = get or registry_http.urllib_transport(timeout=30.0)
        self.post = post or urllib_post(timeout=30.0)
        self.clock = clock
        self.vkey = cosig.verifier_key(name, private_key.public_key().public_bytes_raw())
        connect(state_path).close()

    # --- add-checkpoint --------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> Reply:
        """Check an add-checkpoint body and cosign it, or say why not (tlog-witness)."""
        try:
            old_size, proof, signed = cosig.parse_add_checkpoint(body)
        except cosig.CosignatureError as exc:
            return Reply.text(HTTPStatus.BAD_REQUEST, str(exc))
        db = connect(self.state_path, create=False)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                state = _load(db, signed.split("\n", 1)[0])
                if state is None:
                    raise _refused(HTTPStatus.NOT_FOUND, "unknown log origin")
                checkpoint = self._verified(state, signed)
                line = self._check_and_cosign(db, state, old_size, proof, checkpoint, signed)
            except _Refused as refused:
                db.execute("ROLLBACK")
                if refused.evidence is not None:
                    self._save_evidence(state, body, checkpoint, refused)
                else:
                    logger.info("refused a checkpoint: %s", refused)
                return refused.reply
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()
        logger.info("cosigned %s at size %d", state.origin, checkpoint.size)
        return Reply(HTTPStatus.OK, line.encode())

    def _verified(self, state: LogState, signed: str) -> Checkpoint:
        """The checkpoint, signed by the log's key (else 403) and with its map line (else 400)."""
        name, public = cosig.parse_vkey(state.vkey, cosig.ALG_ED25519)
        keys = {name: [public]}
        try:
            note.verify(signed, keys)
        except note.NoteError as exc:
            raise _refused(HTTPStatus.FORBIDDEN, f"not signed by the log: {exc}") from exc
        try:
            checkpoint = note.parse_checkpoint(signed, keys, state.origin)
        except note.NoteError as exc:
            raise _refused(HTTPStatus.BAD_REQUEST, f"malformed checkpoint: {exc}") from exc
        if checkpoint.map_root is None or checkpoint.time is None:
            raise _refused(HTTPStatus.BAD_REQUEST, "the checkpoint lacks its map or time line")
        return checkpoint

    def _check_and_cosign(
        self,
        db: sqlite3.Connection,
        state: LogState,
        old_size: int,
        proof: list[bytes],
        checkpoint: Checkpoint,
        signed: str,
    ) -> str:
        if old_size > checkpoint.size:
            raise _refused(HTTPStatus.BAD_REQUEST, "old size above checkpoint size")
        if old_size != state.size:
            raise _Refused(Reply.size(state.size), None, f"old size {old_size}, not {state.size}")
        if old_size == checkpoint.size:
            if checkpoint.root != state.root:
                raise _Refused(Reply.size(state.size), Evidence.FORK, "another root, same size")
            if proof:
                raise _unprocessable("the proof between equal sizes must be empty")
            if checkpoint.map_root != state.map_root:
                raise _unprocessable("another map line for a size already cosigned", Evidence.MAP)
            frontier, map_root = state.frontier, state.map_root
        else:
            if old_size > 0:
                try:
                    merkle.verify_consistency(
                        old_size, checkpoint.size, proof, state.root, checkpoint.root
                    )
                except merkle.ProofError as exc:
                    raise _unprocessable(f"consistency: {exc}", Evidence.INCONSISTENT) from exc
            frontier, touched = self._replay(state, checkpoint)
            map_root = self._map_root(state, touched)
            if map_root != checkpoint.map_root:
                raise _unprocessable(
                    "the map line is not the root of the state map the entries build", Evidence.MAP
                )
        timestamp = int(self.clock())
        line = cosig.sign_cosignature(checkpoint.text, self.name, self.private_key, timestamp)
        new_state = LogState(
            state.origin,
            state.vkey,
            state.url,
            checkpoint.size,
            checkpoint.root,
            map_root,
            frontier,
            signed + line,
        )
        _store(db, new_state, timestamp)
        return line

    # --- Replay ----------------------------------------------------------------------------

    def _entries(self, state: LogState, start: int, end: int) -> Iterable[tuple[int, bytes]]:
        """Entries ``[start, end)`` from the registry's entry tiles, with their indexes."""
        registry = registry_http.Registry(state.url, transport=self.get)
        width_all = tiles.TILE_WIDTH
        for tile in range(start // width_all, -(-end // width_all)):
            first = tile * width_all
            width = min(width_all, end - first)
            try:
                bundle = registry.entries(tile, width)
            except (RegistryError, OSError) as exc:
                raise _upstream(f"cannot fetch entry tile {tile}: {exc}") from exc
            try:
                bodies = tiles.split_bundle(bundle)
            except ValueError as exc:
                raise _unprocessable(f"entry tile {tile}: {exc}", Evidence.ENTRIES) from exc
            if len(bodies) != width:
                raise _unprocessable(f"entry tile {tile} does not hold {width}", Evidence.ENTRIES)
            for offset in range(max(start - first, 0), width):
                yield first + offset, bodies[offset]

    def _replay(
        self, state: LogState, checkpoint: Checkpoint
    ) -> tuple[merkle.Frontier, dict[str, bytes]]:
        """The new frontier and the map values the new entries set (key → value, log order)."""
        frontier = list(state.frontier)
        entries = []
        for index, body in self._entries(state, state.size, checkpoint.size):
            merkle.push_leaf(frontier, merkle.leaf_hash(body))
            entries.append((index, body))
        if merkle.root_from_frontier([digest for _h, digest in frontier]) != checkpoint.root:
            raise _unprocessable(
                "the registry's entries do not hash to the checkpoint's root", Evidence.ENTRIES
            )
        touched: dict[str, bytes] = {}
        for index, body in entries:
            try:
                entry = json.loads(body)
                if not isinstance(entry, dict):
                    raise ValueError("not a JSON object")
                for record in records.entry_records(entry):
                    touched[records.key_of(record)] = records.value_of(record)
            except ValueError as exc:
                raise _unprocessable(f"entry {index}: {exc}", Evidence.UNREPLAYABLE) from exc
        return frontier, touched

    def _map_root(self, state: LogState, touched: dict[str, bytes]) -> bytes:
        """The map root after setting ``touched`` on the map last cosigned."""
        if not touched:
            return state.map_root
        keys = sorted(touched)
        paths = [statemap.path_of(key) for key in keys]
        # The map at size 0 is empty: its multiproof for any paths is one EMPTY node.
        proof = bytes([statemap.TAG_EMPTY]) if state.size == 0 else self._map_proof(state, keys)
        try:
            tree = statemap.PartialTree.from_multiproof(state.map_root, paths, proof)
        except (statemap.MapProofError, ValueError) as exc:
            raise _unprocessable(f"the registry's map proof at size {state.size}: {exc}") from exc
        for key, path in zip(keys, paths, strict=True):
            tree.set(path, touched[key])
        return tree.root()

    def _map_proof(self, state: LogState, keys: list[str]) -> bytes:
        url = state.url.rstrip("/") + STATE_PROOFS_PATH
        request = json.dumps({"size": state.size, "keys": keys}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            status, body = self.post(url, headers, request)
        except OSError as exc:
            raise _upstream(f"cannot fetch map proofs: {exc}") from exc
        if status != 200:
            raise _upstream(f"map proofs: HTTP {status}")
        try:
            answer: Any = json.loads(body)
            if answer["size"] != state.size:
                raise ValueError(f"proof for size {answer['size']}")
            return base64.b64decode(answer["proof"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _upstream(f"malformed map proof answer: {exc}") from exc

    # --- Evidence --------------------------------------------------------------------------

    def _save_evidence(
        self, state: LogState, body: bytes, checkpoint: Checkpoint, refused: _Refused
    ) -> None:
        """Keep the note last cosigned and the refused body, once per distinct body."""
        origin_hash = hashlib.sha256(state.origin.encode()).hexdigest()[:16]
        digest = hashlib.sha256(body).hexdigest()[:16]
        stem = f"{origin_hash}-{state.size}-{checkpoint.size}"
        if any(self.evidence_dir.glob(f"{stem}-*-{digest}.refused")):
            logger.warning("refused %s again (%s): evidence already kept", state.origin, refused)
            return
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
        base = self.evidence_dir / f"{stem}-{stamp}-{refused.evidence}-{digest}"
        try:
            self.evidence_dir.mkdir(parents=True, exist_ok=True)
            base.with_name(base.name + ".cosigned").write_text(state.note, encoding="utf-8")
            base.with_name(base.name + ".refused").write_bytes(body)
        except OSError:
            logger.exception("EVIDENCE LOST: cannot write %s.{cosigned,refused}", base)
            return
        logger.error(
            "EVIDENCE: %s signed a checkpoint of size %d the witness refused (%s): %s; "
            "kept as %s.{cosigned,refused}",
            state.origin,
            checkpoint.size,
            refused.evidence,
            refused,
            base,
        )

    # --- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        extra: list[tuple[str, str]] = []
        if environ.get("PATH_INFO", "") != "/add-checkpoint":
            reply = Reply.text(HTTPStatus.NOT_FOUND, "not found")
        elif environ.get("REQUEST_METHOD") != "POST":
            reply = Reply.text(HTTPStatus.METHOD_NOT_ALLOWED, "use POST")
            extra.append(("Allow", "POST"))
        else:
            reply = self._handle_post(environ)
        status = HTTPStatus(reply.status)
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            *extra,
        ]
        start_response(f"{status.value} {status.phrase}", headers)
        return [reply.body]

    def _handle_post(self, environ: dict[str, Any]) -> Reply:
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if not raw_length.isdigit():
            return Reply.text(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        length = int(raw_length)
        if length > MAX_BODY:
            return Reply.text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        body = environ["wsgi.input"].read(length)
        try:
            return self.add_checkpoint(body)
        except Exception:
            logger.exception("add-checkpoint failed")
            return Reply.text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


# --- Serving -----------------------------------------------------------------------------------


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The witness's Ed25519 key from a PKCS#8 PEM file."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def make_witness_server(witness: Witness, host: str, port: int) -> WSGIServer:
    """An HTTP server for the witness, one thread per request (port 0: any free port)."""
    return make_server(
        host, port, witness, server_class=_ThreadingServer, handler_class=_QuietHandler
    )


def serve(witness: Witness, host: str, port: int) -> None:
    """Serve the witness over HTTP until interrupted."""
    with make_witness_server(witness, host, port) as server:
        logger.info("witness %s listening on %s:%d", witness.name, host, server.server_port)
        server.serve_forever()

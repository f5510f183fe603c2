"""``vault-registry``: verified lookups and routing plans, a verified local mirror, a monitor.

Configuration from flags or the environment: VAULT_REGISTRY_URL, VAULT_REGISTRY_TOKEN,
VAULT_REGISTRY_KEYS (the pinned /.well-known/vault-registry JSON), VAULT_REGISTRY_MIRROR (the
SQLite mirror file) and VAULT_REGISTRY_STATE (the last checkpoint a lookup saw).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from directory.client import federation, http, plans
from directory.client.errors import ClientError, ProofMismatch
from directory.client.mirror import Mirror, read_numbers, watched_key
from directory.client.verify import (
    DEFAULT_MAX_AGE,
    PinnedKeys,
    StateFile,
    Trust,
    verify_lookup,
)
from directory.transparency.cosignature import WitnessPolicy


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="vault-registry", description="Verifying client of the Vault Registry."
    )
    parser.add_argument("--url", default=env("VAULT_REGISTRY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=env("VAULT_REGISTRY_TOKEN", ""))
    parser.add_argument(
        "--keys",
        default=env("VAULT_REGISTRY_KEYS", ""),
        help="pinned public keys: a saved copy of /.well-known/vault-registry",
    )
    parser.add_argument(
        "--federation-key",
        action="append",
        default=[k for k in env("VAULT_REGISTRY_FEDERATION_KEYS", "").split() if k],
        help="the federation's key (note verifier key), repeated: each registry's keys are "
        "then learnt from the signed federation document instead of --keys",
    )
    parser.add_argument(
        "--mirror", default=env("VAULT_REGISTRY_MIRROR", "vault-registry-mirror.sqlite3")
    )
    parser.add_argument(
        "--state",
        default=env("VAULT_REGISTRY_STATE", ""),
        help="file keeping the last checkpoint seen, so a rollback or a rewritten log is refused "
        "(the conflicting signed checkpoints are kept in <state>.evidence/)",
    )
    parser.add_argument(
        "--witness",
        action="append",
        default=[w for w in env("VAULT_REGISTRY_WITNESSES", "").split() if w],
        help="a witness's verifier key (name+hash+base64), repeated: the witness policy",
    )
    parser.add_argument(
        "--quorum",
        type=int,
        default=int(env("VAULT_REGISTRY_QUORUM", "0") or 0),
        help="how many of the --witness keys must cosign a checkpoint (default: all of them)",
    )
    parser.add_argument(
        "--max-age",
        type=int,
        default=int(env("VAULT_REGISTRY_MAX_AGE", str(DEFAULT_MAX_AGE))),
        help=f"refuse checkpoints older than this many seconds (default {DEFAULT_MAX_AGE})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    lookup = commands.add_parser("lookup", help="resolve one number and verify the answer")
    lookup.add_argument("number")
    lookup.add_argument("--at", help="ISO 8601 time: where the vault routed then")
    lookup.add_argument(
        "--purpose", help="what you deliver, e.g. payslip: only endpoints accepting it"
    )
    lookup.add_argument("--json", action="store_true", help="print the verified answer as JSON")
    mirror = commands.add_parser("mirror", help="the local, verified mirror of the log")
    actions = mirror.add_subparsers(dest="action", required=True)
    actions.add_parser("sync", help="follow the log up to its latest checkpoint")
    resolve = actions.add_parser("resolve", help="resolve a file of numbers offline")
    resolve.add_argument("file", help="one number per line ('-' for standard input)")
    resolve.add_argument("--purpose", help="what you deliver: only endpoints accepting it")
    plan = commands.add_parser("plan", help="send a file of numbers as a routing plan")
    plan.add_argument("file", help="one number per line, or a JSON array")
    plan.add_argument("--out", default="-", help="where to write the plan ('-': stdout)")
    plan.add_argument("--ndjson", action="store_true", help="ask for one JSON object per line")
    plan.add_argument("--purpose", help="why the run is sent, e.g. bank_statement")
    monitor = commands.add_parser(
        "monitor", help="log entries touching a provider or a vault since the last run"
    )
    watched = monitor.add_mutually_exclusive_group(required=True)
    watched.add_argument("--provider", help="the provider's id (UUID)")
    watched.add_argument("--vault", help="a vault number (for its holder)")
    monitor.add_argument("--no-sync", action="store_true", help="do not sync the mirror first")
    return parser


def _keys(args) -> PinnedKeys:
    if not args.keys:
        raise ClientError("no pinned keys: set --keys or VAULT_REGISTRY_KEYS")
    return PinnedKeys.from_file(args.keys)


def _trust(args, keys: PinnedKeys | None = None) -> Trust:
    witnesses = None
    if args.witness:
        quorum = args.quorum or len(args.witness)
        witnesses = WitnessPolicy.from_vkeys(args.witness, quorum)
    return Trust(keys or _keys(args), witnesses, args.max_age)


def _witness_line(cosigners: list[str], trust: Trust) -> str:
    if trust.witnesses is None:
        return "no witness required (pass --witness to require cosignatures)"
    return f"cosigned by {', '.join(cosigners)} ({trust.witnesses.quorum} required)"


class ProgressBar:
    """A one-line progress bar on stderr."""

    def __init__(self, stream: TextIO, label: str):
        self.stream, self.label = stream, label

    def __call__(self, done: int, total: int) -> None:
        filled = int(30 * done / total) if total else 30
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _lookup(args, registry: http.Registry, out: TextIO) -> int:
    home = None
    if args.federation_key:  # the keys of the number's home registry, from the federation
        document = federation.fetch_document(registry, args.federation_key)
        home, keys = federation.home_keys(document, args.number)
        trust = _trust(args, keys)
        if trust.witnesses is None:  # the federation's quorum of the other members' witnesses
            trust.witnesses = federation.witness_policy(document, home)
    else:
        trust = _trust(args)
    status, body = registry.lookup(args.number, args.at, args.purpose)
    verified = verify_lookup(args.number, args.at, status, body, trust, purpose=args.purpose)
    if home is not None:
        out.write(f"answered by {home.name} ({home.url}), its home registry\n")
    if args.state and (home is None or home.url == registry.base_url):
        # The state file follows the log of the registry asked; another registry's
        # checkpoints are not kept there (its proofs would come from the wrong log).
        state = StateFile(args.state)
        if args.at:  # proven by the checkpoint in force then: older, and must be consistent
            state.check_older(verified.checkpoint, registry.consistency_proof)
        else:
            state.advance(verified.checkpoint, registry.consistency_proof)
    if args.json:  # what was verified, never the raw body
        out.write(json.dumps(verified.as_dict(), indent=2, ensure_ascii=False) + "\n")
        return 0
    signed = datetime.fromtimestamp(verified.checkpoint.time or 0, UTC).isoformat()
    out.write(
        f"verified against checkpoint {verified.checkpoint.size} (log and map signed "
        f"{signed}); {_witness_line(verified.cosigners, trust)}\n"
    )
    if verified.status == 404:
        out.write(f"{verified.number}: no vault has this number (proven absent)\n")
        return 0
    if verified.status == 410:
        out.write(f"{verified.number}: closed (proven); do not deliver\n")
        return 0
    fields = verified.fields
    provider = fields["provider"]
    state = "deliverable" if fields["deliverable"] else "NOT deliverable"
    out.write(f"{fields['number']}: {state} {' '.join(fields['reasons'])}".rstrip() + "\n")
    out.write(f"  provider  {provider['legal_name']} ({provider['id']}, {provider['status']})\n")
    for endpoint in fields["endpoints"]:
        out.write(f"  endpoint  {endpoint['url']} ({endpoint['transport_profile']})\n")
    for certificate in fields["encryption_certificates"]:
        out.write(f"  cert      sha256:{certificate['fingerprint_sha256']} (PEM checked)\n")
    if fields["previous_provider"]:
        out.write(f"  moved     from {fields['previous_provider']['id']}\n")
    return 0


def _mirror(args, registry: http.Registry, out: TextIO, err: TextIO) -> int:
    mirror = Mirror(args.mirror)
    try:
        if args.action == "sync":
            old, new = mirror.sync(registry, _trust(args), ProgressBar(err, "mirror sync"))
            out.write(f"mirror at checkpoint {new} ({new - old} new entries)\n")
            return 0
        if args.file == "-":
            numbers = read_numbers(sys.stdin)
        else:
            numbers = read_numbers(Path(args.file).read_text().splitlines())
        for number in numbers:
            answer = mirror.resolve(number, purpose=args.purpose)
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        return 0
    finally:
        mirror.close()


def _plan(
    args, registry: http.Registry, out: TextIO, err: TextIO, poster: plans.Poster | None
) -> int:
    body, content_type = plans.read_plan_file(args.file)
    answer, receipt = plans.send_plan(
        args.url,
        args.token,
        body,
        content_type,
        ndjson=args.ndjson,
        purpose=args.purpose,
        poster=poster,
        sent=ProgressBar(err, "upload  "),
        received=ProgressBar(err, "download"),
    )
    federated = args.federation_key and federation.is_federated(answer)
    if args.federation_key:
        _verify_federated(args, registry, body, answer, receipt, err, poster)
    elif args.keys:
        trust = _trust(args)
        verified = _verify_plan(args, trust, receipt, body, answer, poster)
        err.write(
            f"plan verified: {verified.numbers} numbers placed as checkpoint "
            f"{verified.checkpoint.size} signs; {_witness_line(verified.cosigners, trust)}\n"
        )
    else:
        err.write("plan NOT verified: pin the registry's keys with --keys\n")
    if args.out == "-":
        out.write(answer.decode())
    else:
        Path(args.out).write_bytes(answer)
    if federated:  # each part has its own summary, reported above
        return 0
    summary = (
        json.loads(answer.split(b"\n", 1)[0])["summary"]
        if args.ndjson
        else json.loads(answer)["summary"]
    )
    err.write(
        f"{summary['asked']} asked, {summary['routable']} routable to "
        f"{summary['providers']} providers, {summary['unroutable']} unroutable\n"
    )
    return 0


def _verify_plan(args, trust, receipt, body: bytes, answer: bytes, poster):
    """A plan of one registry verified with ``trust``: its receipt, and every placement against
    that registry's state proofs at the plan's checkpoint."""
    return plans.verify_plan(
        receipt, trust, body, answer, plans.state_fetcher(args.url, poster), purpose=args.purpose
    )


def _verify_federated(
    args, registry: http.Registry, body: bytes, answer: bytes, receipt, err: TextIO, poster
) -> None:
    """Verify a plan against the federation: each registry's part with that registry's keys."""
    document = federation.fetch_document(registry, args.federation_key)
    asked = next((m for m in document.members if m.url == registry.base_url), None)
    if asked is None:
        raise ClientError(f"{args.url} is not a member of the federation")
    if not federation.is_federated(answer):  # every number was the registry's own
        trust = _trust(args, federation.member_keys(document, asked))
        verified = _verify_plan(args, trust, receipt, body, answer, poster)
        err.write(f"plan verified: {verified.numbers} numbers, all of {asked.name}\n")
        return
    result = federation.verify_federated_plan(
        receipt,
        document,
        asked,
        _trust(args, federation.member_keys(document, asked)),
        body,
        answer,
        lambda member: plans.state_fetcher(member.url, poster),
        purpose=args.purpose,
    )
    for name, part in sorted(result.parts.items()):
        err.write(
            f"part of {name} verified: {part.numbers} numbers placed as its checkpoint "
            f"{part.checkpoint.size} signs\n"
        )
    for name, lost in sorted(result.unavailable.items()):
        err.write(f"{name} unavailable: {len(lost)} numbers not resolved (registry_unavailable)\n")


def _monitor(
    args, registry: http.Registry, out: TextIO, err: TextIO, poster: plans.Poster | None
) -> int:
    """Report every change touching a provider or a vault since the last run, then compare
    what the registry answers online for it with the mirror's own replay of the log."""
    mirror = Mirror(args.mirror)
    key = watched_key(provider=args.provider, vault=args.vault)
    try:
        if not args.no_sync:
            mirror.sync(registry, _trust(args), ProgressBar(err, "mirror sync"))
        entries = mirror.monitor(key)
        for index, entry in entries:
            out.write(f"{index}\t{entry.get('at')}\t{entry.get('kind')}\t")
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        err.write(f"{len(entries)} entries touching {key} since the last run\n")
        alerts = mirror.contradictions(key, plans.state_fetcher(args.url, poster))
        for alert in alerts:
            err.write(f"ALERT: {alert}\n")
        if alerts:
            raise ProofMismatch("the registry's online answer contradicts its own log")
        return 0
    finally:
        mirror.close()


def main(
    argv: list[str] | None = None,
    *,
    transport: http.Transport | None = None,
    poster: plans.Poster | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (distinct per refusal reason, see errors.py)."""
    out, err = out or sys.stdout, err or sys.stderr
    args = _parser().parse_args(argv)
    registry = http.Registry(args.url, args.token, transport)
    try:
        if args.command == "lookup":
            return _lookup(args, registry, out)
        if args.command == "mirror":
            return _mirror(args, registry, out, err)
        if args.command == "plan":
            return _plan(args, registry, out, err, poster)
        return _monitor(args, registry, out, err, poster)
    except ClientError as exc:
        err.write(f"vault-registry: {exc}\n")
        return exc.exit_code
    except (OSError, ValueError, KeyError) as exc:
        err.write(f"vault-registry: error: {exc}\n")
        return 1

"""The verifying client's side of `make bench`: a routing plan verified as `vault-registry plan`
verifies it, and a sample of lookups verified as `vault-registry lookup` does.

    python benchmarks/client_bench.py plan URL TOKEN NUMBERS_JSON [--repeat 3]
    python benchmarks/client_bench.py lookups URL TOKEN NUMBERS_JSON

Run by run_bench.py in its own process (no Django: the client's code only), against the bench
gunicorn; prints one JSON object.

``plan``: sends the plan (``send_plan``), then times ``verify_plan`` end to end with the
registry's state proofs fetched by ``state_fetcher`` through a poster that times the
``POST /api/v1/state/proofs`` round trip and counts its bytes (proof and records apart); the
client's own verification is the end-to-end time less that round trip. The multiproof check
alone (``statemap.verify_multiproof`` over the same keys) and with the records' hashes
(``verify.verify_records``) are timed again on the same answer. Median of ``--repeat``.

``lookups``: GETs each number and checks the answer with ``verify.verify_lookup``; any failure
is an error. Counts answers by status.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from directory.client import plans
from directory.client.http import Registry
from directory.client.verify import PinnedKeys, Trust, verify_lookup, verify_records
from directory.transparency import records as rec
from directory.transparency import statemap


def trust(base: str) -> Trust:
    return Trust(PinnedKeys.from_document(Registry(base).well_known()))


def plan(base: str, token: str, asked: list[str], repeat: int) -> dict:
    pinned = trust(base)
    request = json.dumps(asked).encode()
    runs = []
    for _ in range(repeat):
        answer, receipt = plans.send_plan(base, token, request, "application/json")
        calls: list[dict] = []
        http = plans.http_poster()

        def poster(url, headers, body, sent, received, calls=calls, http=http):
            started = time.perf_counter()
            status, answer_headers, raw = http(url, headers, body, sent, received)
            took = time.perf_counter() - started
            proof_b64 = json.loads(raw).get("proof", "")
            start = raw.index(b'"records":') + len(b'"records":')
            calls.append(
                {
                    "seconds": took,
                    "request_bytes": len(body),
                    "answer_bytes": len(raw),
                    "proof_bytes": len(base64.b64decode(proof_b64)),
                    "proof_b64_bytes": len(proof_b64),
                    "records_bytes": len(raw) - start - 1,
                    "raw": raw,
                }
            )
            return status, answer_headers, raw

        started = time.perf_counter()
        verified = plans.verify_plan(
            receipt, pinned, request, answer, plans.state_fetcher(base, poster=poster)
        )
        total = time.perf_counter() - started
        if len(calls) != 1:
            raise SystemExit(f"verify_plan made {len(calls)} state-proof calls, not one")
        call = calls[0]
        fetched = json.loads(call.pop("raw"))
        records = fetched["records"]
        root = verified.checkpoint.map_root
        proof = base64.b64decode(fetched["proof"])
        paths = [statemap.path_of(key) for key in records]
        started = time.perf_counter()
        statemap.verify_multiproof(root, paths, proof)
        multiproof = time.perf_counter() - started
        started = time.perf_counter()
        verify_records(root, fetched["proof"], records)
        with_records = time.perf_counter() - started
        vaults = sum(key.startswith(rec.VAULT + ":") for key in records)
        runs.append(
            {
                **call,
                "keys": len(records),
                "vault_keys": vaults,
                "present": sum(value is not None for value in records.values()),
                "numbers": verified.numbers,
                "plan_bytes": len(answer),
                "verify_total_s": total,
                "verify_client_s": total - call["seconds"],
                "multiproof_s": multiproof,
                "verify_records_s": with_records,
            }
        )
    result = {k: runs[0][k] for k in runs[0]}
    for key in ("seconds", "verify_total_s", "verify_client_s", "multiproof_s", "verify_records_s"):
        result[key] = statistics.median(run[key] for run in runs)
        result[key + "_all"] = [round(run[key], 3) for run in runs]
    return result


def lookups(base: str, token: str, numbers: list[str]) -> dict:
    pinned = trust(base)
    registry = Registry(base, token)
    statuses: dict[str, int] = {}
    proof_bytes: dict[str, list[int]] = {}
    for number in numbers:
        status, body = registry.lookup(number)
        verify_lookup(number, None, status, body, pinned)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        vault_proof = base64.b64decode(body["proof"]["vault"]["proof"])
        proof_bytes.setdefault(str(status), []).append(len(vault_proof))
    return {
        "verified": len(numbers),
        "by_status": statuses,
        "vault_proof_bytes": {
            status: {
                "n": len(sizes),
                "median": statistics.median(sizes),
                "p99": sorted(sizes)[int(len(sizes) * 0.99) - 1 if len(sizes) >= 100 else -1],
                "max": max(sizes),
                "over_1kib": sum(size > 1024 for size in sizes),
            }
            for status, sizes in proof_bytes.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["plan", "lookups"])
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("numbers", help="a JSON file: the numbers asked")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asked = json.loads(Path(args.numbers).read_text())
    if args.what == "plan":
        result = plan(args.url, args.token, asked, args.repeat)
    else:
        result = lookups(args.url, args.token, asked)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

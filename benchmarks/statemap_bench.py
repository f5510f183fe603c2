"""State map micro-benchmark: build, load, encode and verify multiproofs (pure Python, no Django).

    .venv/bin/python benchmarks/statemap_bench.py                 # 200,000 paths
    .venv/bin/python benchmarks/statemap_bench.py --size 1000000

It builds a random map of ``--size`` paths, keeps its stored nodes in a dict (standing in for the
node table), then for one present path and for ``--paths`` present paths plus ``--paths / 20``
absent ones: loads a PartialTree through a fetch callback over the dict (counting the calls and
the ids asked for), encodes the multiproof and times ``verify_multiproof``. Times are wall clock,
with the process's CPU time beside them (this machine is shared).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from directory.transparency.statemap import (
    PartialTree,
    StoredNode,
    build,
    verify_multiproof,
)


class CountingStore:
    """The stored nodes in a dict, with a fetch that counts its calls and the ids it was given."""

    def __init__(self, nodes: list[StoredNode]) -> None:
        self.rows = {node.node_id: node for node in nodes}
        self.calls = 0
        self.ids = 0

    def fetch(self, ids: list[bytes]) -> dict[bytes, StoredNode]:
        self.calls += 1
        self.ids += len(ids)
        rows = self.rows
        return {i: rows[i] for i in ids if i in rows}


def measure(store: CountingStore, root: bytes, paths: list[bytes], lookahead: int) -> None:
    store.calls = store.ids = 0
    started, cpu = time.perf_counter(), time.process_time()
    tree = PartialTree.load(paths, store.fetch, lookahead=lookahead)
    loaded, loaded_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert tree.root() == root
    started = time.perf_counter()
    proof = tree.encode()
    encoded = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    values = verify_multiproof(root, paths, proof)
    verified, verified_cpu = time.perf_counter() - started, time.process_time() - cpu
    present = sum(value is not None for value in values.values())
    print(
        f"{len(paths):>9,} paths ({present:,} present): "
        f"load {loaded:.3f} s (CPU {loaded_cpu:.3f} s) in {store.calls} fetch calls "
        f"({store.ids:,} ids), encode {encoded:.3f} s, proof {len(proof):,} bytes "
        f"({len(proof) / len(paths):,.0f} bytes/path), "
        f"verify {verified:.3f} s (CPU {verified_cpu:.3f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000, help="paths in the map")
    parser.add_argument("--paths", type=int, default=100_000, help="present paths to prove")
    parser.add_argument("--lookahead", type=int, default=8, help="depths per fetch call")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    items = [(rng.randbytes(32), rng.randbytes(32)) for _ in range(args.size)]
    started, cpu = time.perf_counter(), time.process_time()
    root, nodes = build(items)
    built, cpu = time.perf_counter() - started, time.process_time() - cpu
    leaves = sum(node.leaf_path is not None for node in nodes)
    depths = sorted(node.depth for node in nodes if node.leaf_path is not None)
    print(
        f"map of {args.size:,} paths: build {built:.2f} s (CPU {cpu:.2f} s), {len(nodes):,} nodes "
        f"({leaves:,} leaves, {len(nodes) - leaves:,} internal), leaf depth median "
        f"{depths[len(depths) // 2]}, max {depths[-1]}"
    )
    store = CountingStore(nodes)
    del nodes

    measure(store, root, [items[0][0]], args.lookahead)
    measure(store, root, [rng.randbytes(32)], args.lookahead)
    count = min(args.paths, args.size)
    paths = [path for path, _ in rng.sample(items, count)]
    paths += [rng.randbytes(32) for _ in range(count // 20)]
    measure(store, root, paths, args.lookahead)


if __name__ == "__main__":
    main()

"""c2sp.org/tlog-tiles: tile geometry, tile index paths and entry bundles.

Pure Python (no Django): the registry serves tiles with it and the verifying client reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


def tile_path(index: int) -> str:
    """The tile index encoding: 1234067 → x001/x234/067."""
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def join_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length, then its bytes."""
    return b"".join(len(entry).to_bytes(2, "big") + bytes(entry) for entry in entries)


def split_bundle(bundle: bytes) -> list[bytes]:
    """The entries of an entry bundle: each a big-endian uint16 length, then its bytes."""
    entries, offset = [], 0
    while offset < len(bundle):
        if offset + 2 > len(bundle):
            raise ValueError("truncated entry bundle")
        length = int.from_bytes(bundle[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(bundle):
            raise ValueError("truncated entry bundle")
        entries.append(bundle[offset : offset + length])
        offset += length
    return entries

"""c2sp.org/tlog-tiles helpers shared by the registry and the verifying client."""

from __future__ import annotations

import pytest

from directory.transparency.tiles import TILE_WIDTH, join_bundle, split_bundle


def test_a_tile_is_256_wide():
    assert TILE_WIDTH == 256


@pytest.mark.parametrize("entries", [[], [b""], [b"a", b"", b"x" * 300, bytes(range(256))]])
def test_entry_bundles_round_trip(entries):
    bundle = join_bundle(entries)
    assert bundle == b"".join(len(e).to_bytes(2, "big") + e for e in entries)
    assert split_bundle(bundle) == entries


@pytest.mark.parametrize("bundle", [b"\x00", b"\x00\x02a", b"\x00\x01a\x00"])
def test_a_truncated_bundle_is_refused(bundle):
    with pytest.raises(ValueError, match="truncated entry bundle"):
        split_bundle(bundle)

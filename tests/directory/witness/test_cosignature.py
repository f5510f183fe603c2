"""cosignature/v1 lines, the add-checkpoint body and the client's witness quorum (pure)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.transparency import cosignature as cosig
from directory.transparency import note

TEXT = (
    "registry.test/log\n"
    "5\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "map AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "time 1700000000\n"
)
NOW = 1_700_000_100


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


LOG = _key(1)
SIGNED = note.sign(TEXT, "registry.test/log", LOG)
W1, W2, W3 = _key(11), _key(12), _key(13)


def _cosigned(*witnesses: tuple[str, Ed25519PrivateKey, int], text: str = TEXT) -> str:
    signed = note.sign(text, "registry.test/log", LOG)
    return signed + "".join(cosig.sign_cosignature(text, n, k, t) for n, k, t in witnesses)


# --- Key IDs and vkeys ---------------------------------------------------------------------------


def test_the_key_id_of_a_cosigner_uses_signature_type_0x04():
    public = _public(W1)
    expected = hashlib.sha256(b"w1.test\n\x04" + public).digest()[:4]
    assert cosig.key_hash("w1.test", public) == expected
    assert cosig.key_hash("w1.test", public) != note.key_hash("w1.test", public)


def test_a_vkey_round_trips_and_is_checked():
    vkey = cosig.verifier_key("w1.test", _public(W1))
    name, hexid, encoded = vkey.split("+", 2)
    assert name == "w1.test"
    assert hexid == cosig.key_hash("w1.test", _public(W1)).hex()
    assert base64.b64decode(encoded) == b"\x04" + _public(W1)
    assert cosig.parse_vkey(vkey) == ("w1.test", _public(W1))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.replace("+", "", 1),  # no separator
        lambda v: "other.test+" + v.split("+", 1)[1],  # key ID of another name
        lambda v: v[:-4] + "AAA=",  # another key
        lambda v: v.split("+", 2)[0] + "+zzzzzzzz+" + v.split("+", 2)[2],  # not hex
        lambda v: "w 1+" + v.split("+", 1)[1],  # a space in the name
    ],
)
def test_a_malformed_or_inconsistent_vkey_is_refused(mutate):
    vkey = cosig.verifier_key("w1.test", _public(W1))
    with pytest.raises(cosig.CosignatureError):
        cosig.parse_vkey(mutate(vkey))


def test_a_log_vkey_is_not_a_cosigner_vkey():
    log_vkey = note.verifier_key("registry.test/log", _public(LOG))
    assert cosig.parse_vkey(log_vkey, cosig.ALG_ED25519)[1] == _public(LOG)
    with pytest.raises(cosig.CosignatureError, match="type"):
        cosig.parse_vkey(log_vkey)


# --- Signing and verifying -----------------------------------------------------------------------


def test_a_cosignature_is_key_id_timestamp_and_signature_over_the_spec_message():
    line = cosig.sign_cosignature(TEXT, "w1.test", W1, 1679315147)

    assert line.startswith("\u2014 w1.test ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    assert len(blob) == 4 + 8 + 64
    assert blob[:4] == cosig.key_hash("w1.test", _public(W1))
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    message = b"cosignature/v1\ntime 1679315147\n" + TEXT.encode()
    W1.public_key().verify(blob[12:], message)  # raises if not


def test_verify_cosignatures_returns_each_known_witness_and_its_time():
    signed = _cosigned(("w1.test", W1, NOW - 5), ("w2.test", W2, NOW - 1))

    found = cosig.verify_cosignatures(signed, {"w1.test": [_public(W1)], "w2.test": [_public(W2)]})

    assert found == {"w1.test": NOW - 5, "w2.test": NOW - 1}


def test_unknown_names_and_unknown_keys_are_ignored():
    signed = _cosigned(("w1.test", W1, NOW), ("w3.test", W3, NOW))
    # w2.test is unknown here; w1.test is configured with another key: both lines are ignored.
    assert cosig.verify_cosignatures(signed, {"w1.test": [_public(W2)]}) == {}
    assert cosig.verify_cosignatures(signed, {"w3.test": [_public(W3)]}) == {"w3.test": NOW}


def test_the_logs_own_signature_is_not_a_cosignature_even_under_its_name():
    assert cosig.verify_cosignatures(SIGNED, {"registry.test/log": [_public(LOG)]}) == {}


def test_a_bad_signature_by_a_known_key_refuses_the_note():
    line = cosig.sign_cosignature(TEXT, "w1.test", W1, NOW)
    tampered_text = TEXT.replace("\n5\n", "\n6\n")
    forged = note.sign(tampered_text, "registry.test/log", LOG) + line
    with pytest.raises(cosig.CosignatureError, match=r"invalid cosignature by w1\.test"):
        cosig.verify_cosignatures(forged, {"w1.test": [_public(W1)]})


def test_a_moved_timestamp_breaks_the_signature():
    line = cosig.sign_cosignature(TEXT, "w1.test", W1, NOW)
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[11] ^= 1
    moved = f"\u2014 w1.test {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(cosig.CosignatureError):
        cosig.verify_cosignatures(SIGNED + moved, {"w1.test": [_public(W1)]})


def test_a_cosignature_of_the_wrong_length_by_a_known_key_is_refused():
    key_id = cosig.key_hash("w1.test", _public(W1))
    short = f"\u2014 w1.test {base64.b64encode(key_id + bytes(70)).decode()}\n"
    with pytest.raises(cosig.CosignatureError, match="malformed"):
        cosig.verify_cosignatures(SIGNED + short, {"w1.test": [_public(W1)]})


@pytest.mark.parametrize(
    "bad",
    [
        TEXT,  # no signature
        TEXT + "\n",  # no signature line after the blank line
        TEXT + "\n\u2014 w1.test !!!\n",  # not base64
        TEXT + "\n- w1.test AAAAAAAA\n",  # not an em dash
        TEXT.replace("5", "5\x07") + "\n\u2014 w1.test AAAAAAAA\n",  # control character
    ],
)
def test_malformed_notes_are_refused(bad):
    with pytest.raises(cosig.CosignatureError):
        cosig.verify_cosignatures(bad, {"w1.test": [_public(W1)]})


def test_signing_refuses_bad_names_timestamps_and_texts():
    with pytest.raises(cosig.CosignatureError):
        cosig.sign_cosignature(TEXT, "w1+test", W1, NOW)
    with pytest.raises(cosig.CosignatureError):
        cosig.sign_cosignature(TEXT, "w1.test", W1, 1 << 63)
    with pytest.raises(cosig.CosignatureError):
        cosig.sign_cosignature(TEXT.rstrip("\n"), "w1.test", W1, NOW)


# --- The add-checkpoint body ---------------------------------------------------------------------


def test_the_add_checkpoint_body_round_trips():
    proof = [bytes([i]) * 32 for i in range(3)]

    body = cosig.add_checkpoint_body(3, proof, SIGNED)

    lines = body.decode().split("\n")
    assert lines[0] == "old 3"
    assert lines[1] == base64.b64encode(proof[0]).decode()
    assert lines[4] == ""
    assert body.decode().endswith("\n\n" + SIGNED)
    assert cosig.parse_add_checkpoint(body) == (3, proof, SIGNED)


def test_an_add_checkpoint_body_from_size_zero_has_no_proof_lines():
    body = cosig.add_checkpoint_body(0, [], SIGNED)
    assert body == b"old 0\n\n" + SIGNED.encode()
    assert cosig.parse_add_checkpoint(body) == (0, [], SIGNED)
    with pytest.raises(cosig.CosignatureError):
        cosig.add_checkpoint_body(0, [bytes(32)], SIGNED)


HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 3\n" + SIGNED.encode(),  # no blank line
        b"old 3\n\n",  # no checkpoint
        b"old 03\n\n" + SIGNED.encode(),  # leading zero
        b"old -1\n\n" + SIGNED.encode(),
        b"old  3\n\n" + SIGNED.encode(),
        b"Old 3\n\n" + SIGNED.encode(),
        b"old 3\nnot base64!\n\n" + SIGNED.encode(),
        b"old 3\n" + base64.b64encode(bytes(31)) + b"\n\n" + SIGNED.encode(),  # 31 bytes
        b"old 3\n" + HASH.encode() + b" \n\n" + SIGNED.encode(),  # trailing space
        b"old 0\n" + HASH.encode() + b"\n\n" + SIGNED.encode(),  # a proof from 0
        b"old 3\n" + (HASH + "\n").encode() * 64 + b"\n" + SIGNED.encode(),  # 64 lines
        b"old 3\n\n" + TEXT.encode(),  # an unsigned checkpoint
        b"old 3\n\n\xff" + SIGNED.encode(),  # not UTF-8
    ],
)
def test_malformed_add_checkpoint_bodies_are_refused(body):
    with pytest.raises(cosig.CosignatureError):
        cosig.parse_add_checkpoint(body)


def test_63_proof_lines_are_accepted():
    proof = [bytes(32)] * 63
    assert cosig.parse_add_checkpoint(cosig.add_checkpoint_body(9, proof, SIGNED))[1] == proof


# --- The client's quorum -------------------------------------------------------------------------


def _policy(quorum: int) -> cosig.WitnessPolicy:
    return cosig.WitnessPolicy.from_vkeys(
        [
            cosig.verifier_key("w1.test", _public(W1)),
            cosig.verifier_key("w2.test", _public(W2)),
            cosig.verifier_key("w3.test", _public(W3)),
        ],
        quorum,
    )


def test_two_of_three_cosignatures_make_a_quorum_of_two():
    signed = _cosigned(("w1.test", W1, NOW - 10), ("w3.test", W3, NOW - 20))
    assert _policy(2).check(signed, now=NOW, max_age=3600) == ["w1.test", "w3.test"]


def test_one_of_three_is_refused():
    signed = _cosigned(("w2.test", W2, NOW))
    with pytest.raises(cosig.NoQuorum, match="1 fresh cosignatures"):
        _policy(2).check(signed, now=NOW, max_age=3600)


def test_a_lying_witness_cosigning_a_fork_alone_does_not_make_a_quorum():
    fork = TEXT.replace("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", HASH)
    # The same witness signing twice counts once; an untrusted one does not count.
    liar = _key(99)
    signed = _cosigned(
        ("w2.test", W2, NOW), ("w2.test", W2, NOW - 1), ("w9.test", liar, NOW), text=fork
    )
    with pytest.raises(cosig.NoQuorum):
        _policy(2).check(signed, now=NOW, max_age=3600)


def test_stale_and_future_cosignatures_do_not_count():
    signed = _cosigned(("w1.test", W1, NOW - 7200), ("w2.test", W2, NOW + 3600))
    with pytest.raises(cosig.NoQuorum, match="0 fresh"):
        _policy(1).check(signed, now=NOW, max_age=3600)
    assert _policy(1).check(signed, now=NOW, max_age=86400) == ["w1.test"]


def test_a_quorum_larger_than_the_witnesses_is_a_configuration_error():
    with pytest.raises(ValueError):
        cosig.WitnessPolicy(witnesses={"w1.test": _public(W1)}, quorum=2)

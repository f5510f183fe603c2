"""``records.record_bytes``: its orjson short cut gives RFC 8785's bytes exactly, or steps aside."""

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from directory.transparency import records as rec

_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=12)  # any Unicode: escapes, controls, non-ASCII, surrogate-free
    | st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _values, max_size=8))
def test_record_bytes_are_rfc8785_bytes_for_any_value(record):
    assert rec.record_bytes(record) == rfc8785.dumps(record)


def test_a_real_record_takes_the_short_cut_and_matches(monkeypatch):
    record = {
        "type": "vault",
        "number": "FR76VLT100000000000042",
        "provider": "7f1c",
        "status": "active",
        "client_hold": False,
        "previous_provider": None,
        "endpoints": [{"url": "https://a.example/x?y=1", "document_types": ["payslip"]}],
    }
    expected = rfc8785.dumps(record)
    calls = []
    monkeypatch.setattr(rec.rfc8785, "dumps", lambda value: calls.append(value) or b"")
    assert rec.record_bytes(record) == expected
    assert calls == []  # the short cut answered


def test_non_ascii_escapes_and_floats_fall_back_to_rfc8785():
    for record in ({"legal_name": "Société Générale"}, {"x": 'a"b\n'}, {"n": 1.0}, {"n": -0.0}):
        assert rec.record_bytes(record) == rfc8785.dumps(record)


def test_an_integer_outside_the_safe_domain_is_refused_as_rfc8785_refuses_it():
    with pytest.raises(rfc8785.IntegerDomainError):
        rec.record_bytes({"n": 2**53})

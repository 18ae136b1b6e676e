"""`canonical_args` is json.dumps (sorted keys, compact, not ASCII-escaped) for every JSON value; strings
and ints take a shorter path that must write the same text."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.data.schema import canonical_args

SCALARS = (st.text() | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000)) | st.integers()
           | st.integers(min_value=-(2**80), max_value=2**80) | st.booleans() | st.none()
           | st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_canonical_args_is_json_dumps(value):
    assert canonical_args(value) == dumps(value)


def test_the_tricky_scalars_are_written_as_json_writes_them():
    for value in ["", 'a "quote"', "back\\slash", "\n\t\x00\x1f", "\u2028 é 東京 🙂", "\ud800", 0, -7, 10**30,
                  True, False, None, 1.0, float("nan")]:
        assert canonical_args(value) == dumps(value)
    assert canonical_args(True) != canonical_args(1) and canonical_args("1") != canonical_args(1)

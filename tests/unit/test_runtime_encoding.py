"""run()'s results encoded with the reference's values (``json.dumps``), and JSON nested too deep.

The reference (azmlinfsrv) answers ``json.dumps(result)``; modelport answers orjson's compact
text with the same values. These tests compare against ``json.dumps`` itself.
"""

from __future__ import annotations

import json
import math
import random
import struct

import numpy as np
import pandas as pd
import pytest

from modelport.runtime.protocol import NESTING_LIMIT, NestingError, decode_json, encode_json, query_to_json


def reference(value) -> bytes:
    """azmlinfsrv's body for run()'s return value (AMLResponse(json.dumps(value)))."""
    return json.dumps(value).encode()


def same_json(ours: bytes, theirs: bytes) -> bool:
    """Equal values, floats bit for bit (NaN == NaN, -0.0 != 0.0), as a Python client reads them back."""
    return _canonical(json.loads(ours)) == _canonical(json.loads(theirs))


def _canonical(value):
    if isinstance(value, float):
        return ("float", struct.pack(">d", value) if not math.isnan(value) else b"nan")
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


@pytest.mark.parametrize("value", [
    {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")},
    [1.0, float("nan"), None, "null", 2],
    {"nested": [{"deep": [float("inf")]}], "none": None},
    (float("-inf"), 0.5),
], ids=["dict", "list-with-null", "nested", "tuple"])
def test_non_finite_floats_are_written_as_json_dumps_writes_them(value):
    ours = encode_json(value)
    assert same_json(ours, reference(value))
    assert ours == json.dumps(value, separators=(",", ":")).encode()  # NaN/Infinity/-Infinity, not null


def test_the_issue_case_exactly():
    assert encode_json({"nan": float("nan"), "inf": float("inf")}) == b'{"nan":NaN,"inf":Infinity}'


@pytest.mark.parametrize("orient", ["dict", "records", "list"])
def test_pandas_to_dict_with_missing_values(orient):
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None], "c": [np.inf, -np.inf]})
    result = frame.to_dict(orient=orient)
    ours = encode_json(result)
    assert same_json(ours, reference(result))
    assert b"NaN" in ours and b"-Infinity" in ours and b"null" not in ours


def test_numpy_tolist_with_nan():
    result = {"scores": np.array([0.25, np.nan, np.inf]).tolist()}
    assert encode_json(result) == b'{"scores":[0.25,NaN,Infinity]}'


def test_none_and_the_string_null_stay_as_they_are():
    assert encode_json({"a": None, "b": "null", "c": 1.5}) == b'{"a":null,"b":"null","c":1.5}'
    assert encode_json(None) == b"{}"


@pytest.mark.parametrize("number", [0.1, 1.0, 1e16, 1e22, 0.30000000000000004, 100.0, 1e15, 12345.678, -0.0,
                                    5e-324, 1.7976931348623157e308, 2.5, 1e-4, 0.001, 123456789.123])
def test_float_text_equals_json_dumps(number):
    assert encode_json([number]) == f"[{json.dumps(number)}]".encode()


@pytest.mark.parametrize(("number", "ours"), [(1e-7, b"[1e-7]"), (1e-5, b"[0.00001]"), (2.5e-6, b"[2.5e-6]")])
def test_small_floats_keep_orjsons_notation_with_the_same_value(number, ours):
    # json.dumps writes 1e-07 / 1e-05 / 2.5e-06: the same doubles; see encode_json's docstring.
    assert encode_json([number]) == ours
    assert same_json(ours, reference([number]))


def test_every_float_has_the_same_value_as_json_dumps():
    rng = random.Random(7)
    numbers = []
    while len(numbers) < 50_000:
        value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        numbers.append(value)
    numbers += [rng.random() * 10 ** rng.randint(-12, 20) for _ in range(50_000)]
    assert same_json(encode_json(numbers), reference(numbers))  # includes NaN/Infinity bit patterns


def test_what_json_dumps_accepts_beyond_orjson():
    assert encode_json(2**70) == str(2**70).encode()
    assert encode_json({"big": 2**70, "nan": float("nan")}) == b'{"big":1180591620717411303424,"nan":NaN}'


def test_request_body_nested_too_deep_is_a_nesting_error():
    body = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(NestingError, match=f"nesting limit of {NESTING_LIMIT} levels"):
        decode_json(body)
    assert decode_json(b"[" * NESTING_LIMIT + b"]" * NESTING_LIMIT) is not None
    with pytest.raises(NestingError):
        decode_json(b"[" * 5000 + b"NaN" + b"]" * 5000)  # what only json.loads reads, nested too deep
    with pytest.raises(ValueError, match=r"Expecting value: line 1 column 11 \(char 10\)"):
        decode_json(b'{"data": [')  # other errors keep the standard message


def test_result_nested_too_deep_is_a_nesting_error():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(NestingError):
        encode_json(deep)
    with pytest.raises(NestingError):
        encode_json({"x": 2**70, "deep": deep})  # the json.dumps path too


def test_query_value_nested_too_deep_is_a_nesting_error():
    assert query_to_json(b"a=[[1]]") == {"a": [[1]]}
    with pytest.raises(NestingError):
        query_to_json(b"a=" + b"%5B" * 3000 + b"%5D" * 3000)

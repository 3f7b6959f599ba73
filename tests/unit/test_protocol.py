import datetime
import math

import pytest

from modelport.runtime.protocol import decode_json, encode_json, headers_dict, query_to_json


def test_encode_json_follows_the_reference():
    assert encode_json(None) == b"{}"
    assert encode_json("x") == b'"x"'
    assert encode_json({1: "a"}) == b'{"1":"a"}'
    assert encode_json(2**70) == str(2**70).encode()  # beyond orjson, within json.dumps
    assert encode_json((1, 2)) == b"[1,2]"
    assert encode_json(datetime.date(2026, 1, 2)) == b'"2026-01-02"'


def test_encode_json_refuses_what_json_cannot_encode():
    with pytest.raises(TypeError):
        encode_json(object())


def test_decode_json_matches_the_standard_library():
    assert decode_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert math.isnan(decode_json(b"NaN"))
    with pytest.raises(ValueError, match=r"Expecting value: line 1 column 11 \(char 10\)"):
        decode_json(b'{"data": [')


def test_query_string_values_are_json_when_they_parse():
    assert query_to_json(b"a=1&b=%5B1,2%5D&c=x&c=y&d=null&e=") == {
        "a": 1, "b": [1, 2], "c": ["x", "y"], "d": None, "e": ""}


def test_headers_dict_uses_flask_names_and_joins_repeats():
    raw = [(b"x-test", b"hello"), (b"content-type", b"application/json"), (b"x-test", b"again")]
    assert headers_dict(raw) == {"X-Test": "hello,again", "Content-Type": "application/json"}

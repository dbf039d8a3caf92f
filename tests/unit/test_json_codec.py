"""The job store's JSON: the standard library's compact text, faster, and nothing it took refused."""

from __future__ import annotations

import json

import pytest

from dropq.dropcontact import json_codec


def _stdlib(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        [{"email": "zoë@exämple.fr", "first_name": "Zoë", "custom_fields": {"ref": "1.a"}}],
        {"nested": [1, -2, None, True, False, "", '\u2028\t"\\']},
        ["日本語", "emoji 🎉", "\x00\x1f"],
    ],
)
def test_the_text_is_the_standard_librarys_compact_utf8(value: object) -> None:
    """Records, outcomes and control characters encode to the same bytes as json.dumps(compact, UTF-8)."""
    assert json_codec.dumps_bytes(value) == _stdlib(value)
    assert json_codec.loads(json_codec.dumps(value)) == value


def test_what_orjson_refuses_the_standard_library_still_takes() -> None:
    """An integer beyond 64 bits and a non-string key encode as before."""
    value = {"big": 2**70, 1: "one"}
    assert json_codec.dumps_bytes(value) == _stdlib(value)


def test_a_lone_surrogate_has_no_utf8_form_and_strict_decoding_refuses_nan() -> None:
    """Hostile text fails at once with the standard errors, never later in Redis or a file."""
    with pytest.raises(UnicodeEncodeError):
        json_codec.dumps_bytes({"name": "\ud800"})
    with pytest.raises(ValueError):
        json_codec.loads('{"x": NaN}')
    with pytest.raises(ValueError):
        json_codec.loads(b'["\\ud800"]')

"""The fast base64 decoder of the service accepts and refuses exactly what the reference rule does.

The rule (CONTRACT step 4): ASCII whitespace is ignored; the rest must be the
standard alphabet with at most two '=' of padding at the end, a multiple of 4
characters long. :func:`server.parsing.decode_base64` decodes unwrapped text
in one strict pass and falls back to the whitespace-removing path; the
reference here is the rule written out with a regular expression.
"""

import base64
import binascii
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import DECODER_ERROR, ApiError
from server.parsing import decode_base64


def reference(text):
    """The decoded bytes, or None when the rule refuses ``text``."""
    compact = re.sub(r"[ \t\r\n]+", "", text)
    if not compact.isascii():
        return None
    raw = compact.encode("ascii")
    if not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", raw) or len(raw) % 4:
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def decoded(text):
    try:
        return decode_base64(text)
    except ApiError as exc:
        assert exc.status == DECODER_ERROR
        return None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ABCab+/=0 \n\t\r-_.é", max_size=24))
def test_fast_decoder_agrees_with_the_rule_on_any_text(text):
    assert decoded(text) == reference(text)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), wrap=st.sampled_from([0, 4, 76]),
       extra=st.sampled_from(["", "=", "==", "===", "====", "A", " ", "\n"]))
def test_encoded_bytes_decode_back_and_broken_padding_is_refused(data, wrap, extra):
    text = base64.b64encode(data).decode("ascii")
    if wrap:
        text = "\n".join(text[i:i + wrap] for i in range(0, len(text), wrap))
    assert decoded(text) == data
    assert decoded(text + extra) == reference(text + extra)


@pytest.mark.parametrize("text", ["QUJD====", "QUJD=", "QQ==QQ==", "=QUJ", "QU=I", "QUJ"])
def test_padding_past_a_complete_group_is_refused(text):
    assert decoded(text) is None

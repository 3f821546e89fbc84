"""The display sanitiser: what a terminal would obey is shown escaped, the rest untouched."""

from __future__ import annotations

import pytest

from memgrid.core.display_text import has_control_characters, printable
from memgrid.core.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cat \x1b]52;c;aGk=\x07 mat", "cat \\x1b]52;c;aGk=\\x07 mat"),  # OSC 52: clipboard
        ("\x1b]0;title\x1b\\", "\\x1b]0;title\\x1b\\"),  # OSC 0 with ST
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1bP1$qm\x1b\\", "\\x1bP1$qm\\x1b\\"),  # DCS
        ("\x9b2J \x9d0;t\x9c", "\\x9b2J \\x9d0;t\\x9c"),  # 8-bit C1
        ("del\x7f nul\x00", "del\\x7f nul\\x00"),
        ("two\nlines\tand\rreturn", "two\\nlines\\tand\\rreturn"),
        ("\u202eevil.png\u202c", "\\u202eevil.png\\u202c"),  # bidi override
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),  # bidi isolate
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_controls_bidi_and_format_characters_are_escaped(text: str, expected: str) -> None:
    assert printable(text) == expected
    assert has_control_characters(text)


@pytest.mark.parametrize(
    "text",
    [
        "a cat on a mat",
        "Ölgemälde 油画 لوحة",
        "emoji 👩‍🎨 joined by ZWJ, क्‍ष with ZWNJ\u200c",
        "no-break\u00a0space and ideographic\u3000space",
        "C:\\paths\\x1b stay as typed",  # a literal backslash is printable
        "[/oops] [bold]markup is not a control character[/bold]",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert printable(text) == text
    assert not has_control_characters(text)


def test_error_messages_go_through_the_same_sanitiser() -> None:
    error = InputError("dir\x1b]0;x\x07/file\n.txt", "bad \u202e thing")
    assert str(error) == "dir\\x1b]0;x\\x07/file\\n.txt: bad \\u202e thing"

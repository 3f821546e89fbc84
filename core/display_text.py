"""What a terminal may be shown of a user's string: control characters escaped, never obeyed.

Prompts, model names, annotator names, notes and file names come from scraped datasets and
shared servers. A raw ESC in one is an instruction to the terminal (OSC 52 writes the
clipboard, OSC 0 the window title, CSI 2J clears the screen), and a bidi override reorders
what is read. `printable` shows such characters as Python escapes (`\\x1b`, `\\u202e`) and
leaves everything else as is; the stored text is never changed, only what is displayed.
"""

from __future__ import annotations

import re
import unicodedata

# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width and tag characters,
# soft hyphen, BOM), lone surrogates, and the line and paragraph separators.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Format characters that join letters in Arabic and Indic scripts and emoji sequences; they
# move no text and a terminal gives them no meaning.
JOINERS = frozenset({"\u200c", "\u200d"})
SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# A terminal's escape sequences: OSC (ESC ] ... BEL or ESC \\), CSI (ESC [ parameters, a
# final byte) and the two-character ones (ESC and one more).
TERMINAL_SEQUENCE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]"
)


def needs_escape(character: str) -> bool:
    return character not in JOINERS and unicodedata.category(character) in ESCAPED_CATEGORIES


def escape_character(character: str) -> str:
    """The character as Python writes it in a string literal: \\n, \\x1b, \\u202e, \\U000e0041."""
    if character in SHORT_ESCAPES:
        return SHORT_ESCAPES[character]
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` safe to write to a terminal, on one line: control and format characters escaped."""
    if text.isprintable():  # the common case: nothing to escape (isprintable is stricter)
        return text
    return "".join(escape_character(c) if needs_escape(c) else c for c in text)


def has_control_characters(text: str) -> bool:
    """True when `printable` would change the text (what import counts and reports)."""
    return not text.isprintable() and any(needs_escape(c) for c in text)


def without_terminal_sequences(text: str) -> str:
    """`text` as a reader of the words sees it: each escape sequence, with the payload a
    terminal would take (an OSC title), and each control or format character becomes a
    space, so positions in it are positions in `text`."""
    if text.isprintable():
        return text
    blanked = TERMINAL_SEQUENCE.sub(lambda found: " " * len(found.group()), text)
    return "".join(" " if needs_escape(c) else c for c in blanked)

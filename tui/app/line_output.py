"""A picture's lines, written two ways: as terminal output, or as Strips of styled cells.

A line is a list of pieces: styled text (a Segment) or a row of half-cell pixels (Cells:
'▀' with the upper pixel in front, the lower behind). On a real terminal the widget hands
Textual the line as the output it would write, made here in the worker (`RawWriter`): a
grid change is thousands of cells of different colours, and written by Textual segment by
segment (an escape sequence and a reset each) it is most of the frame's time on the UI
thread and most of its bytes; here a colour is written only when it changes. Snapshots,
screens under a modal and NO_COLOR need styled cells (`strip_line`), made on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.color import Color, ColorSystem
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.strip import Strip

UPPER_HALF = "▀"
# A no-op control code marks a Segment as raw terminal output: Rich and Textual pass it on
# unstyled and count it as no cells.
RAW_DATA = ((ControlType.CURSOR_FORWARD, 0),)
StyleCache = dict[tuple[int, ...], Style]


@dataclass(frozen=True)
class Cells:
    """A row of half-cell pixels: `upper` and `lower` are (columns, 3) RGB arrays."""

    upper: np.ndarray
    lower: np.ndarray


Piece = Segment | Cells


def strip_line(pieces: list[Piece], cell_length: int, styles: StyleCache) -> Strip:
    """The line as Strip segments; runs of one colour pair share a Segment."""
    segments: list[Segment] = []
    for piece in pieces:
        if isinstance(piece, Cells):
            segments.extend(cell_segments(piece, styles))
        else:
            segments.append(piece)
    return Strip(segments, cell_length)


def cell_segments(cells: Cells, styles: StyleCache) -> list[Segment]:
    segments: list[Segment] = []
    run_style, run_length = None, 0
    for upper, lower in zip(cells.upper.tolist(), cells.lower.tolist(), strict=True):
        key = (*upper, *lower)
        style = styles.get(key)
        if style is None:
            # Shared within one picture only: a process-wide cache would keep tens of
            # thousands of objects alive for the garbage collector to walk.
            style = styles[key] = Style(
                color=Color.from_rgb(*upper), bgcolor=Color.from_rgb(*lower)
            )
        if style is run_style:
            run_length += 1
            continue
        if run_style is not None:
            segments.append(Segment(UPPER_HALF * run_length, run_style))
        run_style, run_length = style, 1
    if run_style is not None:
        segments.append(Segment(UPPER_HALF * run_length, run_style))
    return segments


class RawWriter:
    """Writes lines as terminal output for one colour system (one per picture).

    A line is colour codes as raw Segments (no cells) and the characters as unstyled
    Segments between them: Textual writes both as they are, and where it cuts a line
    (another widget over part of it) each character still lands in its own cell.
    """

    def __init__(self, system: ColorSystem) -> None:
        self.system = system
        self._styles: dict[Style, tuple[str, str] | None] = {}
        self._colours: dict[tuple[int, ...], tuple[str, str]] = {}

    def line(self, pieces: list[Piece], cell_length: int) -> Strip:
        out = _Output()
        for piece in pieces:
            if isinstance(piece, Cells):
                self._cells(piece, out)
            else:
                self._segment(piece, out)
        out.code("\x1b[0m")
        return Strip(out.segments(), cell_length)

    def _segment(self, segment: Segment, out: _Output) -> None:
        text, style, control = segment
        if control or style is None:
            out.segment(segment)
            return
        if style not in self._styles:
            self._styles[style] = self._style_codes(style)
        pair = self._styles[style]
        if pair is None:  # bold or another attribute: Textual writes it whole, then resets
            out.code("\x1b[0m")
            out.segment(segment)
            out.colours = ("", "")
            return
        out.switch(*pair)
        out.text(text)

    def _cells(self, cells: Cells, out: _Output) -> None:
        truecolor = self.system == ColorSystem.TRUECOLOR
        for upper, lower in zip(cells.upper.tolist(), cells.lower.tolist(), strict=True):
            if truecolor:
                foreground = "38;2;{};{};{}".format(*upper)
                background = "48;2;{};{};{}".format(*lower)
            else:
                foreground, background = self._downgraded(*upper, *lower)
            out.switch(foreground, background)
            out.text(UPPER_HALF)

    def _downgraded(self, *key: int) -> tuple[str, str]:
        found = self._colours.get(key)
        if found is None:
            found = self._colours[key] = (
                self._codes(Color.from_rgb(*key[:3]), True),
                self._codes(Color.from_rgb(*key[3:]), False),
            )
        return found

    def _codes(self, colour: Color, foreground: bool) -> str:
        return ";".join(colour.downgrade(self.system).get_ansi_codes(foreground))

    def _style_codes(self, style: Style) -> tuple[str, str] | None:
        if style != Style(color=style.color, bgcolor=style.bgcolor):
            return None
        foreground = self._codes(style.color, True) if style.color else "39"
        background = self._codes(style.bgcolor, False) if style.bgcolor else "49"
        return foreground, background


class _Output:
    """A line being written: codes and characters gathered into runs of each."""

    def __init__(self) -> None:
        self.colours = ("", "")  # the foreground and background codes in force
        self._segments: list[Segment] = []
        self._codes: list[str] = []
        self._text: list[str] = []

    def switch(self, foreground: str, background: str) -> None:
        """Write the codes for these colours, only those that change."""
        now_foreground, now_background = self.colours
        if foreground != now_foreground and background != now_background:
            self.code(f"\x1b[{foreground};{background}m")
        elif foreground != now_foreground:
            self.code(f"\x1b[{foreground}m")
        elif background != now_background:
            self.code(f"\x1b[{background}m")
        self.colours = (foreground, background)

    def code(self, code: str) -> None:
        self._flush_text()
        self._codes.append(code)

    def text(self, text: str) -> None:
        self._flush_codes()
        self._text.append(text)

    def segment(self, segment: Segment) -> None:
        self._flush_codes()
        self._flush_text()
        self._segments.append(segment)

    def segments(self) -> list[Segment]:
        self._flush_codes()
        self._flush_text()
        return self._segments

    def _flush_codes(self) -> None:
        if self._codes:
            self._segments.append(Segment("".join(self._codes), None, RAW_DATA))
            self._codes.clear()

    def _flush_text(self) -> None:
        if self._text:
            self._segments.append(Segment("".join(self._text)))
            self._text.clear()

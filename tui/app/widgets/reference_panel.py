"""The training image a grid copies (from `memgrid match`), beside the seeds: its Webster
type, key, caption and url, and with the reference key the image itself (half cells).

Hidden on grids without a `reference` score, so projects without reference images look
as before. The picture is drawn from the thumbnail cache in a thread worker, never on the
UI thread (docs/design.md, "The annotation app").
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work

from memgrid.core.records import GridImage, Score
from memgrid.core.references.evidence import TYPE_WORDS, describe_reference
from memgrid.core.references.matching import REFERENCE_METRIC
from memgrid.tui.app.drawing import halfcell_rows
from memgrid.tui.app.thumbnails import ThumbnailCache
from memgrid.tui.app.widgets.text_panel import TextPanel
from memgrid.tui.display import shown

PICTURE_COLUMNS = 32  # cells; 32 x 16 cells hold a 32 x 32 pixel picture
PICTURE_ROWS = 16


def reference_of(scores: tuple[Score, ...]) -> dict[str, Any] | None:
    """The latest available `reference` score's values, or None."""
    found = [s for s in scores if s.metric == REFERENCE_METRIC and s.available]
    return found[-1].values if found else None


def describe_match(values: dict[str, Any]) -> Text:
    reference = values.get("reference") or {}
    webster = str(values.get("webster", "N"))
    if webster in TYPE_WORDS:
        head = Text.assemble(
            ("Copies ", "bold"),
            (TYPE_WORDS[webster], "bold red"),
            f"  {values.get('matched_seeds')}/{values.get('n_seeds')} seeds, "
            f"distance {float(reference.get('distance', 0.0)):.3f}",
        )
    elif reference:
        head = Text.assemble(
            ("No training image copied", "bold"),
            (f"  nearest at {float(reference.get('distance', 0.0)):.3f}", "dim"),
        )
    else:
        return Text.assemble(
            ("No training image copied", "bold"), (" (no candidate in the pool)", "dim")
        )
    lines = [head]
    if reference.get("caption"):
        lines.append(Text.assemble(("  caption ", "dim"), shown(reference["caption"])))
    if reference.get("url"):
        lines.append(Text.assemble(("  url ", "dim"), shown(reference["url"])))
    if reference.get("key"):
        lines.append(Text.assemble(("  key ", "dim"), shown(reference["key"])))
    if not (reference.get("caption") or reference.get("url") or reference.get("key")):
        lines.append(Text(f"  {shown(describe_reference(reference))}", "dim"))
    return Text("\n").join(lines)


class ReferencePanel(TextPanel):
    """The matched reference of the grid on screen; `picture_shown` adds the image."""

    DEFAULT_CSS = """
    ReferencePanel { height: auto; padding: 0 1; margin-bottom: 1; display: none; }
    ReferencePanel.-matched { display: block; }
    """

    def __init__(self, thumbnails: ThumbnailCache, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.thumbnails = thumbnails
        self.picture_shown = False
        self._values: dict[str, Any] | None = None
        self._text = Text()

    def show(self, scores: tuple[Score, ...]) -> None:
        self._values = reference_of(scores)
        self.set_class(self._values is not None, "-matched")
        if self._values is None:
            return
        self._text = describe_match(self._values)
        self.show_text(self._text)
        if self.picture_shown:
            self.draw_picture(self._values)

    def draw_picture(self, values: dict[str, Any]) -> None:
        # As wide as the panel lets it be: a wider one wraps every row.
        columns = max(8, min(PICTURE_COLUMNS, self.content_region.width or PICTURE_COLUMNS))
        self._draw_picture(values, columns)

    def toggle_picture(self) -> bool:
        """Show or hide the image; False when this grid matched no training image."""
        if not ((self._values or {}).get("reference") or {}).get("path"):
            return False  # no match run, or it found no training image: no picture
        self.picture_shown = not self.picture_shown
        if self.picture_shown:
            self.draw_picture(self._values)
        else:
            self.show_text(self._text)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="reference-picture")
    def _draw_picture(self, values: dict[str, Any], columns: int) -> None:
        reference = values.get("reference") or {}
        if not reference.get("path"):
            return
        image = GridImage(-1, reference["path"], reference["sha256"], 0, 0)
        rows_shown = max(4, PICTURE_ROWS * columns // PICTURE_COLUMNS)
        pixels = self.thumbnails.pixels(image, columns, rows_shown * 2)
        if pixels is None:
            picture = Text("  (the reference image is missing)", "dim")
        else:
            rows = halfcell_rows(pixels, columns, rows_shown)
            picture = Text("\n").join(
                Text.assemble(*((segment.text, segment.style) for segment in row)) for row in rows
            )
        text = Text("\n").join([self._text, picture])
        self.app.call_from_thread(self._show_if_current, values, text)

    def _show_if_current(self, values: dict[str, Any], text: Text) -> None:
        if values is self._values and self.picture_shown:
            self.show_text(text)
            self.scroll_visible()  # it sits below the proposal: bring it into view

"""Progress in one line: the project's grids with all their votes, a bar, what still needs
votes, this annotator's own labels and rate, skipped and flagged."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from memgrid.tui.app.progress import Progress
from memgrid.tui.display import shown


@dataclass(frozen=True)
class LineForm:
    """How roomy the line is: a narrower terminal gets a tighter form."""

    bar_width: int
    with_counts: bool = True  # skipped and flagged
    short_words: bool = False  # "to vote", "/h", "skip", "flag"
    roomy: bool = False  # two spaces around the dots

    @property
    def separator(self) -> str:
        return "  ·  " if self.roomy else " · "


# Widest first; the first that fits is shown: 160 columns get the first, 100 the second or
# third. The skipped and flagged counts go first, then the bar shrinks, then the words. The
# annotator's name stays, first: with several names in use on one account, it is whom the
# labels are stored under.
LINE_FORMS = (
    LineForm(24, roomy=True),
    LineForm(14),
    LineForm(12, with_counts=False),
    LineForm(8, with_counts=False),
    LineForm(8, with_counts=False, short_words=True),
)
# A long name is cut to this many characters on the line (it is stored whole).
NAME_SHOWN = 32


def describe_progress(progress: Progress, annotator: str, width: int | None = None) -> Text:
    """The project's grids with all their votes (the bar), then this annotator's own share,
    in the widest form that fits `width` cells (the narrowest when none does)."""
    lines = [progress_line(progress, annotator, form) for form in LINE_FORMS]
    if width is None:
        return lines[0]
    return next((line for line in lines if line.cell_len <= width), lines[-1])


def progress_line(progress: Progress, annotator: str, form: LineForm) -> Text:
    total = max(progress.total, 1)
    project_done = progress.done if progress.project_done is None else progress.project_done
    share = project_done / total
    filled = round(share * form.bar_width)
    words = ("to vote", "/h", "skip", "flag") if form.short_words else None
    need, per_hour, skipped, flagged = words or ("need votes", " labels/h", "skipped", "flagged")
    line = Text()
    name = shown(annotator)  # escaped, then cut: the cut can only shorten text
    line.append(name if len(name) <= NAME_SHOWN else name[: NAME_SHOWN - 1] + "…", "bold cyan")
    line.append(form.separator)
    line.append(f"{project_done}/{progress.total} done ", "bold")
    line.append(f"({share:.0%}) ")
    line.append("█" * filled, "green")
    line.append("░" * (form.bar_width - filled), "grey35")
    line.append(f"{'  ' if form.roomy else ' '}{progress.needing_votes} {need}", "bold")
    line.append(f"{form.separator}yours {progress.done}", "bold")
    rate = "–" if progress.labels_per_hour is None else f"{progress.labels_per_hour:.0f}"
    line.append(f"{'  ' if form.roomy else ', '}{rate}{per_hour}", "bold")
    if form.with_counts:
        line.append(
            f"{form.separator}{skipped} {progress.skipped}"
            f"{form.separator}{flagged} {progress.flagged}",
            "dim",
        )
    return line


class ProgressBar(Static):
    """Done/total, a bar and the labelling rate, for the annotator on screen."""

    DEFAULT_CSS = """
    ProgressBar { height: 1; padding: 0 1; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[Progress, str] | None = None

    def show(self, progress: Progress, annotator: str) -> None:
        self._shown = (progress, annotator)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._shown is not None:
            width = self.size.width or None  # 0 before the first layout
            line = describe_progress(*self._shown, width=width)
            self.update(line, layout=False)  # one line, always

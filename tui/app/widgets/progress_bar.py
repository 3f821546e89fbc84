"""Progress in one line: grids done of all, a bar, labels per hour, skipped and flagged."""

from __future__ import annotations

from memgrid.tui.app.session import Progress
from memgrid.tui.display import shown
from rich.text import Text
from textual.widgets import Static

BAR_WIDTH = 24


def describe_progress(progress: Progress, annotator: str) -> Text:
    total = max(progress.total, 1)
    share = progress.done / total
    filled = round(share * BAR_WIDTH)
    line = Text()
    line.append(f"{progress.done}/{progress.total} done ", "bold")
    line.append(f"({share:.0%}) ")
    line.append("█" * filled, "green")
    line.append("░" * (BAR_WIDTH - filled), "grey35")
    rate = "–" if progress.labels_per_hour is None else f"{progress.labels_per_hour:.0f}"
    line.append(f"  {rate} labels/h", "bold")
    line.append(f"  ·  skipped {progress.skipped}  ·  flagged {progress.flagged}", "dim")
    line.append(f"  ·  {shown(annotator)}", "dim")
    return line


class ProgressBar(Static):
    """Done/total, a bar and the labelling rate, for the annotator on screen."""

    DEFAULT_CSS = """
    ProgressBar { height: 1; padding: 0 1; background: $panel; }
    """

    def show(self, progress: Progress, annotator: str) -> None:
        self.update(describe_progress(progress, annotator), layout=False)  # one line, always

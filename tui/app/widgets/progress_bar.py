"""Progress in one line: the project's grids with all their votes, a bar, what still needs
votes, this annotator's own labels and rate, skipped and flagged."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from memgrid.tui.app.progress import Progress
from memgrid.tui.display import shown

BAR_WIDTH = 24


def describe_progress(progress: Progress, annotator: str) -> Text:
    """The project's grids with all their votes (the bar), then this annotator's own share."""
    total = max(progress.total, 1)
    project_done = progress.done if progress.project_done is None else progress.project_done
    share = project_done / total
    filled = round(share * BAR_WIDTH)
    line = Text()
    line.append(f"{project_done}/{progress.total} done ", "bold")
    line.append(f"({share:.0%}) ")
    line.append("█" * filled, "green")
    line.append("░" * (BAR_WIDTH - filled), "grey35")
    line.append(f"  {progress.needing_votes} need votes", "bold")
    line.append(f"  ·  yours {progress.done}", "bold")
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

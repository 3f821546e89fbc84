"""One line above the grid: what the marks on the seeds mean, whether the heat map is on,
and how the images are drawn; on a proposal-hidden grid before the vote, that they wait."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from memgrid.tui.app.evidence import GROUP_NAMES, GROUP_RGB, OUTLINE_RGB, Evidence

MARKS_HIDDEN = (
    "detector marks hidden until you vote: proposal, scores, seed groups, region, heat map, match"
)
PROTOCOL_NAMES = {
    "halfcell": "half-cell",
    "sixel": "Sixel",
    "kitty": "Kitty graphics",
    "iterm2": "iTerm2 images",
}


def describe_evidence(
    evidence: Evidence,
    *,
    heat_on: bool,
    has_heatmap: bool,
    protocol: str,
    hidden: bool = False,
) -> Text:
    """The legend; with `hidden` (views.DetectorMarks.hidden), one phrase in its place, so a
    grid without marks is not read as one where the detector found nothing."""
    if hidden:
        line = Text(f"◇ {MARKS_HIDDEN}", "bold")
    else:
        line = describe_marks(evidence, heat_on=heat_on, has_heatmap=has_heatmap)
    line.append(f"  ·  images: {PROTOCOL_NAMES.get(protocol, protocol)}", "dim")
    return line


def describe_marks(evidence: Evidence, *, heat_on: bool, has_heatmap: bool) -> Text:
    line = Text()
    if evidence.region_tiles:
        line.append("▢ ", "bold rgb({},{},{})".format(*OUTLINE_RGB))
        tiles = len(evidence.region_tiles)
        line.append(
            f"fixed region, {tiles} of {evidence.region_grid**2} tiles ({evidence.region_source})"
        )
    else:
        line.append("no fixed region", "dim")
    line.append("  ·  ", "dim")
    if evidence.groups:
        for number, members in enumerate(evidence.groups):
            colour = "rgb({},{},{})".format(*GROUP_RGB[number % len(GROUP_RGB)])
            line.append(f"◆{GROUP_NAMES[number % len(GROUP_NAMES)]}", f"bold {colour}")
            line.append(f" {len(members)} alike  ")
        line.append(f"({evidence.group_metric})", "dim")
    else:
        line.append("no near-identical seeds", "dim")
    line.append("  ·  ", "dim")
    if heat_on and has_heatmap:
        line.append(" heat map ON ", "bold black on rgb(230,120,60)")
        line.append(" h hides", "dim")
    elif heat_on:
        line.append("heat map on, none for this grid", "dim")
    else:
        line.append("heat map off (h)", "dim")
    return line


class EvidenceBar(Static):
    """The legend of the grid's marks, in one line."""

    DEFAULT_CSS = """
    EvidenceBar { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show(
        self,
        evidence: Evidence,
        *,
        heat_on: bool,
        has_heatmap: bool,
        protocol: str,
        hidden: bool = False,
    ) -> None:
        text = describe_evidence(
            evidence, heat_on=heat_on, has_heatmap=has_heatmap, protocol=protocol, hidden=hidden
        )
        self.update(text, layout=False)

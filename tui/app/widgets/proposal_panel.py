"""The proposal with its reasons, and the scores behind it: what to confirm or override."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from memgrid.core.records import Proposal, Score
from memgrid.core.taxonomy import Category, Feature
from memgrid.tui.app.widgets.text_panel import TextPanel
from memgrid.tui.display import shown

CATEGORY_STYLES = {
    Category.EXPLICIT: "bold black on rgb(120,200,255)",
    Category.IMPLICIT: "bold black on rgb(190,150,255)",
    Category.UNINTENDED: "bold white on rgb(200,40,40)",
    Category.NONE: "bold black on rgb(120,200,120)",
}
MAX_VALUES_PER_SCORE = 4


def category_badge(category: Category | None) -> Text:
    if category is None:
        return Text(" no category ", "dim reverse")
    return Text(f" {category.title} ", CATEGORY_STYLES[category])


def feature_line(feature: Feature) -> Text:
    line = Text("  ◆ ")
    line.append(shown(feature.name) or "(unnamed)", "bold")
    line.append(f"  {feature.category.title} · {shown(feature.where)}", "dim")
    return line


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return shown(value)


def describe_proposal(proposal: Proposal | None, visible: bool = True) -> Text:
    """The proposal and its reasons; not `visible` (a proposal-hidden grid before the vote),
    only that it waits."""
    if not visible:
        return Text.assemble(
            ("Proposal hidden", "bold"),
            (
                " on this grid until you vote (proposal-hidden share), with its reasons and "
                "scores: your label calibrates the detector.",
                "dim",
            ),
        )
    if proposal is None:
        return Text.assemble(
            ("No proposal yet", "bold"), (": run `memgrid score`, then `memgrid propose`.", "dim")
        )
    lines = [Text.assemble(("Proposal ", "bold"), category_badge(proposal.category))]
    if proposal.score is not None:
        margin = "" if proposal.margin is None else f"  margin {proposal.margin:+.3f}"
        lines.append(Text(f"  score {proposal.score:.3f}{margin}", "dim"))
    for reason in proposal.reasons:
        mark, style = ("✓", "green") if reason.fired else ("·", "dim")
        line = Text(f"  {mark} ", style)
        # Most reasons already open with their signal's name ("tiled-l2: 8/8 seeds ...").
        if not reason.text.startswith(f"{reason.signal}:"):
            line.append(f"{shown(reason.signal)}: ", "bold" if reason.fired else "dim")
        line.append(shown(reason.text), "" if reason.fired else "dim")
        lines.append(line)
    lines.extend(feature_line(feature) for feature in proposal.features)
    return Text("\n").join(lines)


def describe_scores(scores: tuple[Score, ...]) -> Text:
    if not scores:
        return Text("No scores yet.", "dim")
    lines = [Text("Scores", "bold")]
    for score in scores:
        line = Text(f"  {shown(score.metric):<9} ", "bold")
        if not score.available:
            line.append(f"unavailable: {shown(score.note)}", "dim")
        else:
            values = list(score.values.items())[:MAX_VALUES_PER_SCORE]
            line.append("  ".join(f"{shown(k)} {format_value(v)}" for k, v in values))
        lines.append(line)
    return Text("\n").join(lines)


class ProposalPanel(TextPanel):
    """Proposal (or why there is none), its reasons and features, then the scores."""

    DEFAULT_CSS = """
    ProposalPanel { height: auto; padding: 0 1; margin-bottom: 1; }
    """

    def show(self, proposal: Proposal | None, scores: tuple[Score, ...], *, hidden: bool) -> None:
        # A hidden proposal hides its scores too: they would give the detector away.
        parts = [describe_proposal(proposal, not hidden)]
        if not hidden:
            parts.append(describe_scores(scores))
        self.show_text(Text("\n").join(parts))

"""The annotate screen's widgets, one a file."""

from memgrid.tui.app.widgets.evidence_bar import EvidenceBar
from memgrid.tui.app.widgets.heatmap import HeatMap
from memgrid.tui.app.widgets.key_hints import KeyHints
from memgrid.tui.app.widgets.labels_panel import LabelsPanel
from memgrid.tui.app.widgets.progress_bar import ProgressBar
from memgrid.tui.app.widgets.prompt_view import PromptView
from memgrid.tui.app.widgets.proposal_panel import ProposalPanel
from memgrid.tui.app.widgets.reference_panel import ReferencePanel
from memgrid.tui.app.widgets.seed_grid import SeedGrid

__all__ = [
    "EvidenceBar",
    "HeatMap",
    "KeyHints",
    "LabelsPanel",
    "ProgressBar",
    "PromptView",
    "ProposalPanel",
    "ReferencePanel",
    "SeedGrid",
]

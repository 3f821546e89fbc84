"""The annotate screen's widgets, one a file."""

from tui.app.widgets.heatmap import HeatMap
from tui.app.widgets.labels_panel import LabelsPanel
from tui.app.widgets.progress_bar import ProgressBar
from tui.app.widgets.prompt_view import PromptView
from tui.app.widgets.proposal_panel import ProposalPanel
from tui.app.widgets.seed_grid import GridPicture, SeedGrid

__all__ = [
    "GridPicture",
    "HeatMap",
    "LabelsPanel",
    "ProgressBar",
    "PromptView",
    "ProposalPanel",
    "SeedGrid",
]

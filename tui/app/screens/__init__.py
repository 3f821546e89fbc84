"""The app's screens, one a file."""

from memgrid.tui.app.screens.adjudicate import AdjudicationScreen
from memgrid.tui.app.screens.annotate import AnnotateScreen
from memgrid.tui.app.screens.compare import CompareScreen
from memgrid.tui.app.screens.feature import FeatureScreen
from memgrid.tui.app.screens.grid_list import GridListScreen
from memgrid.tui.app.screens.help import HelpScreen
from memgrid.tui.app.screens.history import HistoryScreen
from memgrid.tui.app.screens.note import NoteScreen
from memgrid.tui.app.screens.zoom import ZoomScreen

__all__ = [
    "AdjudicationScreen",
    "AnnotateScreen",
    "CompareScreen",
    "FeatureScreen",
    "GridListScreen",
    "HelpScreen",
    "HistoryScreen",
    "NoteScreen",
    "ZoomScreen",
]

"""The app's screens, one a file."""

from tui.app.screens.adjudicate import AdjudicationScreen
from tui.app.screens.annotate import AnnotateScreen
from tui.app.screens.feature import FeatureScreen
from tui.app.screens.grid_list import GridListScreen
from tui.app.screens.help import HelpScreen
from tui.app.screens.history import HistoryScreen
from tui.app.screens.note import NoteScreen
from tui.app.screens.zoom import ZoomScreen

__all__ = [
    "AdjudicationScreen",
    "AnnotateScreen",
    "FeatureScreen",
    "GridListScreen",
    "HelpScreen",
    "HistoryScreen",
    "NoteScreen",
    "ZoomScreen",
]

"""Every key, as configured, with what it does."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from memgrid.tui.app.keys import describe_keys
from memgrid.tui.display import user_text

MORE_KEYS = (
    ("zoom", "left / right", "the previous / next seed"),
    ("compare", "left / right, tab", "change the seed marked ▶; tab marks the other side"),
    ("compare", "d", "the amplified difference of the two seeds, on/off"),
    ("feature", "arrows, space", "move over tiles, select one; a selects the hot tiles"),
    ("feature", "1-4, tab, enter", "the feature's category, its name, save"),
    ("lists", "enter", "open the highlighted grid to correct it"),
    ("review", "1-4", "set the final label of the highlighted grid, then the next one"),
    ("review", "k / a", "show one kind (flag, disagreement, skip) / one annotator's, in turn"),
    ("any screen", "escape", "close it"),
)


BLIND_HINT = (
    "On a proposal-hidden grid (a share of grids, [annotate] blind_share) the detector's "
    "marks wait for your vote: the proposal with its reasons and scores, the seed groups, the "
    "fixed region, the heat map, the training-image match and the prompt's highlights. "
    "Enter takes no proposal there."
)


class HelpScreen(ModalScreen[None]):
    """The key table: the footer shows the everyday keys, this shows them all."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "close")]

    CSS_PATH = "help.tcss"

    def __init__(self, keys: dict[str, str], images: str = "") -> None:
        super().__init__()
        self.keys = keys
        self.images = images

    def compose(self) -> ComposeResult:
        self.table = table = Table(title="memgrid annotate: keys", expand=True, show_edge=False)
        table.add_column("key", style="bold yellow", no_wrap=True)
        table.add_column("does")
        table.add_column("action", style="dim")
        # Text, not str: Rich would read a bound "[" or "[b]" in a cell as markup.
        for action, keys, description in describe_keys(self.keys):
            table.add_row(user_text(keys.replace(",", " / ")), Text(description), Text(action))
        table.add_section()
        for where, keys, description in MORE_KEYS:
            table.add_row(Text(keys), Text(description), Text(where))
        with VerticalScroll():
            yield Static(table)
            yield Static(
                'Keys are rebindable in memgrid.toml ([keys] action = "key") in the project '
                "folder or ~/.config/memgrid/. Every action is saved the moment its key is "
                "pressed.",
                classes="hint",
                markup=False,  # "[keys]" is the section's name, not a style
            )
            yield Static(BLIND_HINT, classes="hint", markup=False)
            if self.images:
                yield Static(self.images, classes="hint", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)

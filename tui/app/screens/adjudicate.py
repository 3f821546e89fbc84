"""The adjudication queue: grids where annotators disagree, most contested first.

The highlighted grid's seeds, prompt, votes and proposal are shown on the right; a
category key sets its final label (an `adjudicate` event, append-only like the rest).
"""

from __future__ import annotations

from typing import ClassVar

from memgrid.core.errors import MemgridError
from memgrid.core.taxonomy import Category
from memgrid.tui.app.adjudication import Disagreement, rank_disagreements
from memgrid.tui.app.keys import category_bindings
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.session import AnnotationSession, GridView
from memgrid.tui.app.widgets.labels_panel import describe_event
from memgrid.tui.app.widgets.prompt_view import highlight_prompt
from memgrid.tui.app.widgets.proposal_panel import category_badge, describe_proposal
from memgrid.tui.app.widgets.seed_grid import GridPicture, SeedGrid
from memgrid.tui.display import user_text
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option


def disagreement_option(item: Disagreement) -> Option:
    line = Text(f"grid {item.grid_id:>6}  ", "bold")
    line.append(f"{item.share:.0%} apart  ", "yellow" if item.adjudication is None else "dim")
    line.append(item.summary(), "dim")
    if item.adjudication is not None and item.adjudication.category is not None:
        line.append("  final ")
        line.append_text(category_badge(item.adjudication.category))
    return Option(line, id=str(item.grid_id))


class AdjudicationScreen(Screen[None]):
    """Pick a contested grid, look at it, set the final label with 1-4."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "back"),
        *category_bindings("adjudicate", "decide", "final: {category}"),
    ]

    CSS_PATH = "adjudicate.tcss"

    class Loaded(Message):
        def __init__(self, items: list[Disagreement], message: str = "") -> None:
            super().__init__()
            self.items = items
            self.message = message

    class GridLoaded(Message):
        def __init__(self, view: GridView, picture: GridPicture) -> None:
            super().__init__()
            self.view = view
            self.picture = picture

    def __init__(self, session: AnnotationSession, pictures: Pictures) -> None:
        super().__init__()
        self.session = session
        self.pictures = pictures
        self.items: dict[int, Disagreement] = {}
        self.highlighted: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            user_text(
                f"Adjudication · {self.session.annotator} sets final labels · most contested first"
            ),
            id="adj-title",
        )
        with Horizontal(id="adj-body"):
            yield OptionList(id="adj-list")
            with Vertical(id="adj-detail"):
                yield Static(id="adj-info")
                yield SeedGrid(id="adj-seeds")
        yield Static(id="adj-status")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="adjudicate-list")
    def load(self, message: str = "") -> None:
        try:
            items = rank_disagreements(
                self.session.views.disagreements(), self.session.views.adjudications()
            )
        except MemgridError as error:
            items, message = [], f"cannot read the labels: {error}"
        self.post_message(self.Loaded(items, message))

    @on(Loaded)
    def _fill(self, message: Loaded) -> None:
        self.items = {item.grid_id: item for item in message.items}
        option_list = self.query_one(OptionList)
        keep = self.highlighted
        option_list.clear_options()
        option_list.add_options([disagreement_option(item) for item in message.items])
        if not message.items:
            option_list.add_option(
                Option("No disagreements: nothing to adjudicate.", disabled=True)
            )
        elif keep is not None and str(keep) in {o.id for o in option_list.options}:
            option_list.highlighted = option_list.get_option_index(str(keep))
        else:
            option_list.highlighted = 0
        option_list.focus()
        self.query_one("#adj-status", Static).update(user_text(message.message))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.highlighted = int(event.option.id)
            self.load_grid(self.highlighted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="adjudicate-grid")
    def load_grid(self, grid_id: int) -> None:
        try:
            view = self.session.view(grid_id)
            area = self.query_one("#adj-seeds", SeedGrid).area
            picture = self.pictures.picture(view.grid, view.heatmap, area)
        except (MemgridError, OSError) as error:
            self.post_message(self.Loaded(list(self.items.values()), str(error)))
            return
        self.post_message(self.GridLoaded(view, picture))

    @on(GridLoaded)
    def _show_grid(self, message: GridLoaded) -> None:
        if message.view.grid_id != self.highlighted:
            return
        item = self.items.get(message.view.grid_id)
        lines = [
            Text(f"grid {message.view.grid_id}", "bold"),
            highlight_prompt(message.view.attribution),
        ]
        if item is not None:
            lines.append(Text("Votes", "bold"))
            lines.extend(Text("  ").append_text(describe_event(v)) for v in item.votes)
            if item.adjudication is not None:
                lines.append(Text("  ").append_text(describe_event(item.adjudication)))
        lines.append(describe_proposal(message.view.proposal, True))
        self.query_one("#adj-info", Static).update(Text("\n").join(lines))
        self.query_one("#adj-seeds", SeedGrid).show(message.picture)

    def action_decide(self, value: str) -> None:
        if self.highlighted is not None and self.highlighted in self.items:
            self.decide(self.highlighted, Category(value))

    @work(thread=True, exclusive=False, exit_on_error=False, group="adjudicate-commit")
    def decide(self, grid_id: int, category: Category) -> None:
        try:
            self.session.adjudicate(grid_id, category)
        except MemgridError as error:
            self.post_message(self.Loaded(list(self.items.values()), f"failed: {error}"))
            return
        self.app.call_from_thread(self.load, f"Grid {grid_id}: final label {category.title}.")

    def action_close(self) -> None:
        self.dismiss(None)

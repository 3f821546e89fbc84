"""The review queue: open flags (with their reasons), disagreements and skips, in one list.

The highlighted grid's seeds, prompt, votes and proposal are shown on the right; a
category key sets its final label (an `adjudicate` event noting what was reviewed,
append-only like the rest) and moves on to the next open item. `k` filters by kind, `a` by
annotator (each cycles through the choices, then back to all).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from memgrid.core.errors import MemgridError
from memgrid.core.records import LabelEvent
from memgrid.core.taxonomy import Category
from memgrid.tui.app.adjudication import ReviewItem, ReviewKind
from memgrid.tui.app.drawing import GridPicture
from memgrid.tui.app.evidence import evidence_from
from memgrid.tui.app.keys import category_bindings
from memgrid.tui.app.pictures import Pictures
from memgrid.tui.app.session import AnnotationSession, GridView
from memgrid.tui.app.widgets.labels_panel import describe_event
from memgrid.tui.app.widgets.prompt_view import highlight_prompt
from memgrid.tui.app.widgets.proposal_panel import category_badge, describe_proposal
from memgrid.tui.app.widgets.seed_grid import SeedGrid
from memgrid.tui.display import shown, user_text

KIND_STYLES = {
    ReviewKind.FLAG: "magenta",
    ReviewKind.DISAGREEMENT: "yellow",
    ReviewKind.SKIP: "cyan",
}


def review_option(item: ReviewItem) -> Option:
    line = Text(f"grid {item.grid_id:>6}  ", "bold")
    line.append(f"{item.kind.value:<12} ", "dim" if item.settled else KIND_STYLES[item.kind])
    if item.kind is ReviewKind.DISAGREEMENT:
        line.append(f"{item.share:.0%} apart  ", "dim")
    line.append(shown(item.summary()), "dim")
    if item.adjudication is not None and item.adjudication.category is not None:
        line.append("  final ")
        line.append_text(category_badge(item.adjudication.category))
    return Option(line, id=str(item.grid_id))


def next_choice(choices: list[str], current: str | None) -> str | None:
    """Cycle a filter: None (all), then each choice, then None again."""
    if current not in choices:
        return choices[0] if choices else None
    index = choices.index(current) + 1
    return choices[index] if index < len(choices) else None


class AdjudicationScreen(Screen[None]):
    """Pick a contested grid, look at it, set the final label with 1-4."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "back"),
        Binding("k", "filter_kind", "kind"),
        Binding("a", "filter_annotator", "annotator"),
        *category_bindings("adjudicate", "decide", "final: {category}"),
    ]

    CSS_PATH = "adjudicate.tcss"

    class Loaded(Message):
        def __init__(self, items: list[ReviewItem], message: str = "") -> None:
            super().__init__()
            self.items = items
            self.message = message

    class GridLoaded(Message):
        def __init__(self, view: GridView, picture: GridPicture, votes: list[LabelEvent]) -> None:
            super().__init__()
            self.view = view
            self.picture = picture
            self.votes = votes  # every vote and verdict on the grid: the reviewer sees all

    def __init__(self, session: AnnotationSession, pictures: Pictures) -> None:
        super().__init__()
        self.session = session
        self.pictures = pictures
        self.all_items: list[ReviewItem] = []
        self.items: dict[int, ReviewItem] = {}  # the ones the filters let through
        self.highlighted: int | None = None
        self.decided: int | None = None  # the grid just settled: move on from it
        self.kind: ReviewKind | None = None
        self.annotator: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="adj-title")
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
            items = self.session.views.review_items()
        except MemgridError as error:
            items, message = [], f"cannot read the labels: {error}"
        self.post_message(self.Loaded(items, message))

    @on(Loaded)
    def _fill(self, message: Loaded) -> None:
        self.all_items = message.items
        self.query_one("#adj-status", Static).update(user_text(message.message))
        self.show_items()

    def show_items(self) -> None:
        """List the items the filters let through; highlight the next open one after a verdict."""
        shown = [
            item
            for item in self.all_items
            if (self.kind is None or item.kind is self.kind)
            and (self.annotator is None or self.annotator in item.annotators)
        ]
        self.items = {item.grid_id: item for item in shown}
        kind = self.kind.value if self.kind else "all"
        title = (
            f"Review · {self.session.annotator} sets final labels · flags, disagreements, "
            f"skips · k kind: {kind} · a annotator: {self.annotator or 'all'}"
        )
        self.query_one("#adj-title", Static).update(user_text(title))
        option_list = self.query_one(OptionList)
        keep = self.highlighted
        option_list.clear_options()
        option_list.add_options([review_option(item) for item in shown])
        if not shown:
            empty = "Nothing to review here: no flags, disagreements or skips. q goes back."
            option_list.add_option(Option(empty, disabled=True))
            self.highlighted = None
            self.query_one("#adj-info", Static).update(empty)
            self.query_one("#adj-seeds", SeedGrid).show(None, "Nothing to adjudicate.")
            return
        after = self.next_open_after(shown)
        if after is not None:
            option_list.highlighted = option_list.get_option_index(str(after))
        elif keep is not None and str(keep) in {o.id for o in option_list.options}:
            option_list.highlighted = option_list.get_option_index(str(keep))
        else:
            option_list.highlighted = 0
        option_list.focus()

    def next_open_after(self, items: list[ReviewItem]) -> int | None:
        """After a verdict: the next item still open (the list keeps its order)."""
        decided, self.decided = self.decided, None
        if decided is None:
            return None
        still_open = [item.grid_id for item in items if not item.settled]
        return still_open[0] if still_open else None

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
            picture = self.pictures.grid(view.grid, evidence_from(view.scores), area)
            votes = self.session.views.votes_and_verdicts(grid_id)
        except (MemgridError, OSError) as error:
            self.post_message(self.Loaded(self.all_items, str(error)))
            return
        self.post_message(self.GridLoaded(view, picture, votes))

    @on(SeedGrid.Resized)
    def _redraw_for_new_size(self) -> None:
        if self.highlighted is not None:
            self.load_grid(self.highlighted)

    @on(GridLoaded)
    def _show_grid(self, message: GridLoaded) -> None:
        if message.view.grid_id != self.highlighted:
            return
        lines = [
            Text(f"grid {message.view.grid_id}", "bold"),
            highlight_prompt(message.view.attribution),
            Text("Votes (flags with their reasons)", "bold"),
            *(Text("  ").append_text(describe_event(v)) for v in message.votes),
        ]
        lines.append(describe_proposal(message.view.proposal, True))
        self.query_one("#adj-info", Static).update(Text("\n").join(lines))
        self.query_one("#adj-seeds", SeedGrid).show(message.picture)

    def action_filter_kind(self) -> None:
        choice = next_choice([k.value for k in ReviewKind], self.kind.value if self.kind else None)
        self.kind = ReviewKind(choice) if choice else None
        self.show_items()

    def action_filter_annotator(self) -> None:
        everyone = sorted({a for item in self.all_items for a in item.annotators})
        self.annotator = next_choice(everyone, self.annotator)
        self.show_items()

    def action_decide(self, value: str) -> None:
        item = self.items.get(self.highlighted) if self.highlighted is not None else None
        if item is not None:
            note = f"review of a {item.kind.value}: {item.summary()}"
            self.decide(item.grid_id, Category(value), note)

    @work(thread=True, exclusive=False, exit_on_error=False, group="adjudicate-commit")
    def decide(self, grid_id: int, category: Category, note: str = "") -> None:
        try:
            self.session.adjudicate(grid_id, category, note)
        except MemgridError as error:
            self.post_message(self.Loaded(self.all_items, f"failed: {error}"))
            return
        self.decided = grid_id
        self.app.call_from_thread(self.load, f"Grid {grid_id}: final label {category.title}.")

    def action_close(self) -> None:
        self.dismiss(None)

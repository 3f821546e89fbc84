"""The latest calibration run: thresholds, signals, confusion matrices; a key accepts it.

SQLite work (reading the run, running a new calibration, accepting) happens in thread
workers that only post messages; the handlers fill the tables.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from memgrid.core.calibration import Objective
from memgrid.core.errors import MemgridError
from memgrid.tui.display import shown, user_text
from memgrid.tui.services.calibration import (
    CalibrationRun,
    accept_run,
    calibrate_project,
    latest_run,
)
from memgrid.tui.services.calibration_report import (
    SIGNAL_HEADERS,
    THRESHOLD_HEADERS,
    confusion_headers,
    confusion_rows,
    interval_text,
    signal_rows,
    threshold_rows,
)
from memgrid.tui.services.project import Project


class CalibrationScreen(Screen[None]):
    """Shows the newest calibration run; `a` accepts it, `c` runs a new one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "accept this run"),
        Binding("c", "calibrate", "calibrate again"),
        Binding("escape,q", "close", "back"),
    ]

    CSS_PATH = "calibration.tcss"

    class RunLoaded(Message):
        """A run was read, made or accepted (None: there is no run yet)."""

        def __init__(self, run: CalibrationRun | None, status: str) -> None:
            super().__init__()
            self.run = run
            self.status = status

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, project: Project, objective: Objective | None = None) -> None:
        super().__init__()
        self.project = project
        self.objective = objective or Objective("f1")
        self.run: CalibrationRun | None = None

    def compose(self) -> ComposeResult:
        yield Static("Calibration", id="calibration-title")
        with VerticalScroll():
            yield Static("reading the latest run…", id="calibration-status")
            yield Static("", id="calibration-warnings")
            yield Static("Thresholds", classes="table-title")
            yield DataTable(id="thresholds", zebra_stripes=True, cursor_type="none")
            yield Static("Signals, memorized vs not", classes="table-title", id="signals-title")
            yield DataTable(id="signals", zebra_stripes=True, cursor_type="none")
            yield Static("Categories before", classes="table-title", id="before-title")
            yield DataTable(id="before", zebra_stripes=True, cursor_type="none")
            yield Static("Categories after", classes="table-title", id="after-title")
            yield DataTable(id="after", zebra_stripes=True, cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        self.load_latest()

    # ---- workers: SQLite only, then a message ------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="calibration")
    def load_latest(self) -> None:
        try:
            run = latest_run(self.project)
        except MemgridError as error:
            self.post_message(self.Failed(str(error)))
            return
        status = "No calibration run yet: press c to calibrate." if run is None else ""
        self.post_message(self.RunLoaded(run, status))

    @work(thread=True, exclusive=True, exit_on_error=False, group="calibration")
    def calibrate(self) -> None:
        try:
            runs = calibrate_project(self.project, self.objective)
        except MemgridError as error:
            self.post_message(self.Failed(str(error)))
            return
        self.post_message(self.RunLoaded(runs[-1], f"Run {runs[-1].run_id} made."))

    @work(thread=True, exclusive=True, exit_on_error=False, group="calibration")
    def accept(self, run_id: int) -> None:
        try:
            run = accept_run(self.project, run_id)
        except MemgridError as error:
            self.post_message(self.Failed(str(error)))
            return
        counts = ", ".join(
            f"{name} {count}"
            for name, count in sorted((run.proposals.categories if run.proposals else {}).items())
        )
        label = run.accepted.label if run.accepted else "?"
        self.post_message(
            self.RunLoaded(run, f"Accepted: {label} is active; proposals recomputed ({counts}).")
        )

    # ---- actions --------------------------------------------------------------------------

    def action_accept(self) -> None:
        if self.run is None:
            self.notify("No run to accept: press c to calibrate first.", severity="warning")
        elif self.run.accepted is not None:
            self.notify(f"Run {self.run.run_id} is already accepted.", severity="warning")
        elif not self.run.changed:
            self.notify("This run changed no threshold: nothing to accept.", severity="warning")
        else:
            self._status("accepting…")
            self.accept(self.run.run_id)

    def action_calibrate(self) -> None:
        self._status(f"calibrating (objective {self.objective})…")
        self.calibrate()

    def action_close(self) -> None:
        self.dismiss(None)

    # ---- handlers: the only place widgets change --------------------------------------------

    @on(RunLoaded)
    def _show_run(self, message: RunLoaded) -> None:
        self.run = message.run
        if message.run is not None:
            self._fill(message.run)
        self._status(message.status)

    @on(Failed)
    def _show_failure(self, message: Failed) -> None:
        self._status(f"error: {message.error}")
        self.notify(shown(message.error), severity="error", markup=False)

    def _status(self, text: str) -> None:
        self.query_one("#calibration-status", Static).update(user_text(text))

    def _fill(self, run: CalibrationRun) -> None:
        summary = run.summary
        accepted = f" · accepted as {run.accepted.label}" if run.accepted else " · not accepted"
        model = f" · model {summary['model']}" if summary.get("model") else ""
        self.query_one("#calibration-title", Static).update(
            user_text(
                f"Calibration run {run.run_id} of {run.threshold_set.label}{model} · "
                f"{summary['label_count']} labelled grids · objective {summary['objective']}"
                f"{accepted}"
            )
        )
        self.query_one("#calibration-warnings", Static).update(
            Text("\n").join(user_text(f"warning: {w}") for w in summary["warnings"])
        )
        _fill_table(
            self.query_one("#thresholds", DataTable), THRESHOLD_HEADERS, threshold_rows(summary)
        )
        best = summary.get("best_signal")
        self.query_one("#signals-title", Static).update(
            user_text("Signals, memorized vs not" + (f" (best: {best})" if best else ""))
        )
        _fill_table(self.query_one("#signals", DataTable), SIGNAL_HEADERS, signal_rows(summary))
        for name in ("before", "after"):
            evaluation = summary.get(name)
            table = self.query_one(f"#{name}", DataTable)
            title = self.query_one(f"#{name}-title", Static)
            if evaluation:
                macro = interval_text(evaluation["macro_f1"], evaluation["macro_f1_interval"])
                title.update(user_text(f"Categories {name} (macro-F1 {macro})"))
                _fill_table(table, confusion_headers(evaluation), confusion_rows(evaluation))
            else:
                title.update(f"Categories {name}: not evaluated")
                table.clear(columns=True)


def _fill_table(table: DataTable[Any], headers: list[str], rows: list[list[str]]) -> None:
    table.clear(columns=True)
    table.add_columns(*(user_text(header) for header in headers))
    table.add_rows([[user_text(cell) for cell in row] for row in rows])

"""The app driven by keys through Pilot: every key and screen, against the real store."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Size
from textual.widgets import Input, OptionList, Static

from memgrid.core.errors import DatabaseError
from memgrid.core.taxonomy import Category, LabelState
from memgrid.tui.app import make_app
from memgrid.tui.app.config import AnnotateOptions
from memgrid.tui.app.evidence import evidence_from
from memgrid.tui.app.messages import SessionUpdated, WorkFailed
from memgrid.tui.app.progress import Progress
from memgrid.tui.app.screens import (
    AdjudicationScreen,
    CompareScreen,
    FeatureScreen,
    GridListScreen,
    HelpScreen,
    HistoryScreen,
    NoteScreen,
    ZoomScreen,
)
from memgrid.tui.app.widgets import EvidenceBar, KeyHints, ProposalPanel, SeedGrid
from memgrid.tui.app.widgets.progress_bar import describe_progress
from memgrid.tui.services.project import Project, open_project
from tests.app.conftest import FakeClock, settings_for
from tests.app.pilot_helpers import (
    SIZE,
    annotate_screen,
    current_grid,
    press,
    reopen,
    settle,
    status_text,
    view_title,
)
from tests.conftest import open_grids, vote_of

pytestmark = pytest.mark.anyio


async def test_the_first_grid_is_drawn_with_prompt_proposal_and_progress(
    demo_project: Project,
) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None and screen.view is not None
        first = open_grids(demo_project.store, "alice")[0]
        assert screen.view.grid_id == first
        seeds = screen.query_one(SeedGrid)
        assert seeds.picture is not None and seeds.picture.grid_id == first
        assert any("▀" in line.text for line in seeds.picture.lines)
        assert "Proposal" in str(screen.query_one(ProposalPanel).render())
        assert "0/26 done" in str(screen.query_one("#progress", Static).render())
        prompt = str(screen.query_one("#prompt", Static).render())
        assert f"grid {first}" in prompt


async def test_each_category_key_labels_and_advances(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, category in zip("1234", Category, strict=True):
            grid_id = current_grid(pilot)
            assert grid_id is not None
            await press(pilot, key)
            saved = vote_of(demo_project.store, grid_id, "alice")
            assert saved is not None and saved.category is category
            assert saved.session == app.session.session_id
            assert current_grid(pilot) != grid_id
        assert "4/26 done" in str(app.screen.query_one("#progress", Static).render())


async def test_keys_typed_ahead_apply_to_the_grid_they_were_pressed_on(
    demo_project: Project,
) -> None:
    # Defect 6 of issue 13: three keys typed before the next grid was drawn label one grid,
    # the one on screen; the others are dropped with a notice, never applied to unseen grids.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first, second = open_grids(demo_project.store, "alice", 2)
        with app.session._lock:  # the first key's commit waits: the next keys come meanwhile
            await pilot.press("3", "1", "4")
        await settle(pilot)
        saved = vote_of(demo_project.store, first, "alice")
        assert saved is not None and saved.category is Category.UNINTENDED
        assert vote_of(demo_project.store, second, "alice") is None
        assert current_grid(pilot) == second
        assert f"Key pressed on grid {first} dropped" in status_text(pilot)


async def test_enter_accepts_the_proposal(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid_id = current_grid(pilot)
        assert grid_id is not None
        proposal = demo_project.store.proposals.find(grid_id)
        await press(pilot, "enter")
        saved = vote_of(demo_project.store, grid_id, "alice")
        assert saved is not None and proposal is not None
        assert (saved.category, saved.features) == (proposal.category, proposal.features)
        assert saved.proposal_shown


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (
            (100, 30),
            "alice · 0/26 done (0%) {bar} 26 need votes · yours 0, – labels/h · skipped 0 · "
            "flagged 0",
        ),
        (
            SIZE,
            "alice  ·  0/26 done (0%) {bar}  26 need votes  ·  yours 0  – labels/h  ·  "
            "skipped 0  ·  flagged 0",
        ),
        ((80, 24), "alice · 0/26 done (0%) {bar} 26 need votes · yours 0, – labels/h"),
    ],
)
async def test_the_progress_line_fits_the_terminal(
    demo_project: Project, size: tuple[int, int], expected: str
) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        bar = app.screen.query_one("#progress", Static)
        shown = str(bar.render())
        assert len(shown) <= bar.size.width
        assert shown == expected.format(bar="░" * shown.count("░"))


def test_a_narrower_progress_line_drops_the_counts_then_shortens_and_keeps_the_name() -> None:
    busy = Progress(1234, 20000, 123.4, skipped=12, flagged=3, project_done=1000)
    widths = (120, 98, 80, 60)
    lines = {width: describe_progress(busy, "alice", width).plain for width in widths}
    assert all(len(line) <= width for width, line in lines.items() if width >= 80)
    assert all(line.startswith("alice · ") for line in lines.values())
    assert lines[120].endswith(
        "19000 need votes · yours 1234, 123 labels/h · skipped 12 · flagged 3"
    )
    assert lines[98].endswith("19000 need votes · yours 1234, 123 labels/h")
    assert lines[80].endswith("19000 to vote · yours 1234, 123/h")
    assert lines[60] == lines[80]  # the narrowest form, cut by the terminal past that
    long_name = describe_progress(busy, "a" * 40, 80).plain
    assert long_name.startswith("a" * 31 + "… · ")


async def test_skip_then_undo_brings_the_skipped_grid_back(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        skipped = current_grid(pilot)
        assert skipped is not None
        await press(pilot, "s")
        assert current_grid(pilot) != skipped
        label = vote_of(demo_project.store, skipped, "alice")
        assert label is not None and label.state is LabelState.SKIPPED
        await press(pilot, "u")
        assert current_grid(pilot) == skipped
        assert "Undid skip" in status_text(pilot)
        assert vote_of(demo_project.store, skipped, "alice") is None
        assert [e.action for e in demo_project.store.labels.events_where(grid_id=skipped)] == [
            "skip",
            "undo",
        ]


async def test_undo_of_a_label_and_flag(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = current_grid(pilot)
        await press(pilot, "2")
        second = current_grid(pilot)
        await press(pilot, "f")
        await pilot.press(*"unsure")
        await press(pilot, "enter")
        flagged = vote_of(demo_project.store, second, "alice")  # type: ignore[arg-type]
        assert flagged is not None and flagged.state is LabelState.FLAGGED
        await press(pilot, "u", "u")
        assert current_grid(pilot) == first
        assert vote_of(demo_project.store, first, "alice") is None  # type: ignore[arg-type]
        assert vote_of(demo_project.store, second, "alice") is None  # type: ignore[arg-type]


async def test_note_is_saved_with_the_label(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid_id = current_grid(pilot)
        await press(pilot, "n")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"odd corner")
        await press(pilot, "enter")
        assert not isinstance(app.screen, NoteScreen)
        await press(pilot, "3")
        saved = vote_of(demo_project.store, grid_id, "alice")  # type: ignore[arg-type]
        assert saved is not None and saved.note == "odd corner"
        await press(pilot, "n", "escape")
        assert not isinstance(app.screen, NoteScreen)


async def test_back_and_forward_then_correct_an_earlier_label(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = current_grid(pilot)
        await press(pilot, "4")
        second = current_grid(pilot)
        await press(pilot, "left")
        assert current_grid(pilot) == first
        await press(pilot, "right")
        assert current_grid(pilot) == second
        await press(pilot, "left", "3")
        assert current_grid(pilot) == second
        history = demo_project.store.labels.events_where(grid_id=first)  # type: ignore[arg-type]
        assert [e.category for e in history] == [Category.NONE, Category.UNINTENDED]


async def test_heat_map_is_one_more_tile_and_says_it_is_on(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None
        seeds, bar = screen.query_one(SeedGrid), screen.query_one(EvidenceBar)
        assert seeds.picture is not None and not screen.heat_on
        plain = seeds.picture
        assert "heat map off" in str(bar.render())
        await press(pilot, "h")
        assert screen.heat_on and "heat map ON" in str(bar.render())
        picture = seeds.picture
        assert picture is not None and picture.grid_id == plain.grid_id
        assert any("heat map" in line.text for line in picture.lines)
        assert picture.layout.columns * picture.layout.rows >= 9  # 8 seeds and the map
        await press(pilot, "4")  # the next grid keeps it, and says so
        assert "heat map ON" in str(bar.render())
        await press(pilot, "h")
        assert not screen.heat_on and "heat map off" in str(bar.render())
        assert not any("heat map" in line.text for line in seeds.picture.lines)  # type: ignore[union-attr]


async def test_the_panel_folds_away_and_the_seeds_grow(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seeds = app.screen.query_one(SeedGrid)
        shown = seeds.picture
        await press(pilot, "p")
        folded = seeds.picture
        assert shown is not None and folded is not None
        assert folded.layout.fitted_pixels(1.0) > shown.layout.fitted_pixels(1.0)
        # 8 seeds at 160 x 50 with the panel folded: 4 x 2, each at least 36 x 20 cells.
        layout = folded.layout
        assert (layout.columns, layout.rows) == (4, 2)
        assert layout.tile_width >= 36 and layout.tile_height >= 20
        await press(pilot, "p")
        assert seeds.picture is not None and seeds.picture.layout == shown.layout


async def test_compare_shows_two_seeds_and_their_difference(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "c")
        assert isinstance(app.screen, CompareScreen)
        compare = app.screen

        def title() -> str:
            return view_title(compare)

        def pictured() -> str:
            return "\n".join(line.text for line in compare.seeds.lines)

        assert "A seed 0 (1/8)" in title() and "B seed 1 (2/8)" in title()
        assert compare.seeds.picture is not None and compare.seeds.picture.layout.columns == 2
        assert "▶ seed 1" in pictured() and "|A−B|" not in pictured()
        await press(pilot, "right")
        assert "B seed 2 (3/8)" in title()
        await press(pilot, "tab", "left")
        assert "A seed 7 (8/8)" in title() and "▶ seed 7" in pictured()
        await press(pilot, "right", "right", "right")  # seed 2 is B's: A never lands on it
        assert "A seed 3 (4/8)" in title() and "B seed 2 (3/8)" in title()
        await press(pilot, "left")
        assert "A seed 1 (2/8)" in title()
        await press(pilot, "d")
        assert "|A−B| ×4" in pictured() and compare.seeds.picture.layout.columns == 3  # type: ignore[union-attr]
        await press(pilot, "escape")
        assert annotate_screen(pilot) is app.screen


async def test_the_app_draws_in_24_bit_colour_without_colorterm(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")  # what ssh brings
    assert make_app(demo_project, settings_for()).console.color_system == "truecolor"
    monkeypatch.setenv("TERM", "vt100")
    assert make_app(demo_project, settings_for(color="16")).console.color_system == "standard"
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "drawing in 16 colours (TERM=vt100" in status_text(pilot)
        await press(pilot, "4")
        assert "colours" not in status_text(pilot)  # said once


async def test_feature_marks_tiles_category_and_name(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid_id = current_grid(pilot)
        await press(pilot, "m")
        assert isinstance(app.screen, FeatureScreen)
        await press(pilot, "space", "right", "space", "down", "space", "2", "tab")
        await pilot.press(*"logo")
        await press(pilot, "enter")
        assert not isinstance(app.screen, FeatureScreen)
        await press(pilot, "2")
        saved = vote_of(demo_project.store, grid_id, "alice")  # type: ignore[arg-type]
        assert saved is not None
        (feature,) = saved.features
        assert (feature.category, feature.name, feature.tiles) == (
            Category.IMPLICIT,
            "logo",
            (0, 1, 9),
        )


async def test_zoom_shows_one_seed_and_steps_through_them(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "z")
        assert isinstance(app.screen, ZoomScreen)
        zoom = app.screen
        picture = zoom.seeds.picture
        assert picture is not None and picture.layout.columns == picture.layout.rows == 1
        assert picture.layout.tile_height >= 40  # the whole screen, less the title and footer
        assert "seed 0 (1/8)" in view_title(zoom)
        await press(pilot, "right")
        assert "seed 1 (2/8)" in view_title(zoom)
        await press(pilot, "left", "left")
        assert "seed 7 (8/8)" in view_title(zoom)
        await press(pilot, "escape")
        assert annotate_screen(pilot) is app.screen


async def test_help_lists_every_key_as_configured(demo_project: Project) -> None:
    keys = {**settings_for().keys, "skip": "k", "note": "["}  # "[" is a key, not markup
    app = make_app(demo_project, settings_for(keys=keys))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = set(_table_cells(app.screen.table))
        assert "k" in rows and "skip: not done, comes back later" in rows
        assert "[" in rows
        shown = "\n".join(str(w.render()) for w in app.screen.query(Static))
        assert "[keys]" in shown and "Images: halfcell" in shown
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)


def _table_cells(table: object) -> list[str]:
    cells = []
    for column in table.columns:  # type: ignore[attr-defined]
        cells.extend(str(cell) for cell in column.cells)
    return cells


async def test_rebound_keys_work_and_the_old_ones_do_not(demo_project: Project) -> None:
    keys = {**settings_for().keys, "explicit": "x", "skip": "1"}
    app = make_app(demo_project, settings_for(keys=keys))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = current_grid(pilot)
        await press(pilot, "x")
        second = current_grid(pilot)
        await press(pilot, "1")
        explicit = vote_of(demo_project.store, first, "alice")  # type: ignore[arg-type]
        skipped = vote_of(demo_project.store, second, "alice")  # type: ignore[arg-type]
        assert explicit is not None and explicit.category is Category.EXPLICIT
        assert skipped is not None and skipped.state is LabelState.SKIPPED


async def test_history_screen_shows_events_and_reopens(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = current_grid(pilot)
        await press(pilot, "1", "2")
        unfinished = current_grid(pilot)
        await press(pilot, "r")
        assert isinstance(app.screen, HistoryScreen)
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[-1] == str(first)
        await press(pilot, "end")
        detail = str(app.screen.query_one("#detail", Static).render())
        assert f"History of grid {first}" in detail and "explicit" in detail
        await press(pilot, "enter")
        assert current_grid(pilot) == first
        await press(pilot, "4")
        assert current_grid(pilot) == unfinished
        corrected = vote_of(demo_project.store, first, "alice")  # type: ignore[arg-type]
        assert corrected is not None and corrected.category is Category.NONE


async def test_skipped_and_flagged_lists_reopen_their_grids(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        skipped = current_grid(pilot)
        await press(pilot, "s")
        flagged = current_grid(pilot)
        await press(pilot, "f")
        await pilot.press(*"unsure")
        await press(pilot, "enter")
        for key, state, grid_id in (
            ("S", LabelState.SKIPPED, skipped),
            ("F", LabelState.FLAGGED, flagged),
        ):
            await press(pilot, key)
            assert isinstance(app.screen, GridListScreen) and app.screen.state is state
            options = app.screen.query_one(OptionList)
            assert [options.get_option_at_index(0).id] == [str(grid_id)]
            await press(pilot, "enter")
            assert current_grid(pilot) == grid_id
        await press(pilot, "3")
        relabelled = vote_of(demo_project.store, flagged, "alice")  # type: ignore[arg-type]
        assert relabelled is not None and relabelled.state is LabelState.LABELLED


async def test_adjudication_lists_disagreements_and_sets_the_final_label(
    demo_project_dir: Path,
) -> None:
    with open_project(demo_project_dir) as project:
        grids = project.store.grids.ids_all()
        for grid_id, votes in (
            (grids[0], "explicit none none"),
            (grids[1], "explicit none unintended"),
        ):
            for annotator, vote in zip(("a", "b", "c"), votes.split(), strict=True):
                project.store.labels.label(grid_id, annotator, Category(vote))
        app = make_app(project, settings_for("judge"))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await press(pilot, "A")
            assert isinstance(app.screen, AdjudicationScreen)
            await settle(pilot)
            options = app.screen.query_one(OptionList)
            assert [options.get_option_at_index(i).id for i in range(2)] == [
                str(grids[1]),
                str(grids[0]),
            ]
            assert app.screen.query_one(SeedGrid).picture is not None
            await press(pilot, "3")
            await settle(pilot)
            final = project.store.labels.adjudications_where()[grids[1]]
            assert (final.annotator, final.category) == ("judge", Category.UNINTENDED)
            assert "final label unintended" in str(
                app.screen.query_one("#adj-status", Static).render()
            )
            await press(pilot, "escape")
            assert annotate_screen(pilot) is app.screen


async def test_two_annotators_on_one_project_work_on_different_grids(
    demo_project_dir: Path,
) -> None:
    clock = FakeClock()
    with open_project(demo_project_dir) as first, open_project(demo_project_dir) as second:
        alice = make_app(first, settings_for("alice"), clock=clock)
        bob = make_app(second, settings_for("bob"), clock=clock)
        async with alice.run_test(size=SIZE) as alice_pilot:
            await settle(alice_pilot)
            async with bob.run_test(size=SIZE) as bob_pilot:
                await settle(bob_pilot)
                alice_grid, bob_grid = current_grid(alice_pilot), current_grid(bob_pilot)
                assert alice_grid != bob_grid
                await press(alice_pilot, "1")
                await press(bob_pilot, "4")
                assert vote_of(first.store, alice_grid, "alice") is not None  # type: ignore[arg-type]
                assert vote_of(second.store, bob_grid, "bob") is not None  # type: ignore[arg-type]
                assert current_grid(alice_pilot) != current_grid(bob_pilot)


async def test_lease_hands_a_grid_over_when_it_expires(demo_project_dir: Path) -> None:
    clock = FakeClock()
    leased = AnnotateOptions(blind_share=0.0, lease_seconds=60.0)
    with open_project(demo_project_dir) as first, open_project(demo_project_dir) as second:
        alice = make_app(first, settings_for("alice", annotate=leased), clock=clock)
        async with alice.run_test(size=SIZE) as alice_pilot:
            await settle(alice_pilot)
            held = current_grid(alice_pilot)
        # Alice's terminal froze (no renewal, no release): after the lease, bob gets it.
        clock.advance(30)
        bob = make_app(second, settings_for("bob", annotate=leased), clock=clock)
        async with bob.run_test(size=SIZE) as bob_pilot:
            await settle(bob_pilot)
            assert current_grid(bob_pilot) != held
        clock.advance(31)
        carol = make_app(second, settings_for("carol", annotate=leased), clock=clock)
        async with carol.run_test(size=SIZE) as carol_pilot:
            await settle(carol_pilot)
            assert current_grid(carol_pilot) == held


async def test_resume_after_the_process_is_killed(demo_project_dir: Path) -> None:
    with open_project(demo_project_dir) as project:
        app = make_app(project, settings_for())
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await press(pilot, "1", "2", "s")
            on_screen = current_grid(pilot)
        # The app ended without releasing anything, as a killed process would.
    with open_project(demo_project_dir) as project:
        app = make_app(project, settings_for())
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert current_grid(pilot) == on_screen
            assert "2/26 done" in str(app.screen.query_one("#progress", Static).render())


async def test_an_empty_queue_says_so(bare_demo_project: Project) -> None:
    for grid_id in bare_demo_project.store.grids.ids_all():
        bare_demo_project.store.labels.label(grid_id, "alice", Category.NONE)
    app = make_app(bare_demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_grid(pilot) is None
        await press(pilot, "1")
        assert "no grid on screen" in status_text(pilot)


async def test_grids_without_scores_or_proposals_still_work(bare_demo_project: Project) -> None:
    messages: list[object] = []
    app = make_app(bare_demo_project, settings_for())
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None
        assert "No proposal yet" in str(screen.query_one(ProposalPanel).render())
        await press(pilot, "h", "enter", "4")
        assert "No proposal to accept: not computed" in "".join(
            m.outcome.message for m in messages if isinstance(m, SessionUpdated)
        )
        assert bare_demo_project.store.labels.state_counts_where(annotator="alice")["labelled"] == 1


async def test_quit_key_exits(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_note_input_keeps_digits_out_of_the_label_keys(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid_id = current_grid(pilot)
        await press(pilot, "n")
        await pilot.press("1", "2")
        assert app.screen.query_one(Input).value == "12"
        await press(pilot, "enter")
        assert vote_of(demo_project.store, grid_id, "alice") is None  # type: ignore[arg-type]


async def test_a_smaller_terminal_gets_a_picture_that_fits(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seeds = app.screen.query_one(SeedGrid)
        before = seeds.picture
        await pilot.resize_terminal(100, 30)
        await settle(pilot)
        after = seeds.picture
        assert before is not None and after is not None and after.grid_id == before.grid_id
        assert after.layout != before.layout
        widest = max(line.cell_length for line in after.lines)
        assert widest <= seeds.area.width and len(after.lines) <= seeds.area.height
        hints = str(app.screen.query_one(KeyHints).render())
        assert hints.rstrip().endswith(" ?  help") and len(hints) <= 100


async def test_a_picture_drawn_for_an_old_size_is_drawn_again(demo_project: Project) -> None:
    # A resize while the first grid is being composed: the picture arrives for the old area.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None and screen.view is not None
        seeds = screen.seeds
        stale = screen.pictures.grid(screen.view.grid, evidence_from([]), Size(60, 20))
        seeds.show(stale)
        await settle(pilot)
        assert seeds.picture is not None and seeds.picture is not stale
        assert seeds.picture.area == seeds.area
        assert seeds.picture.layout.tile_width > stale.layout.tile_width


async def test_a_lost_lease_is_reported_without_unblocking_the_queue(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None
        screen._busy = True  # an action in flight
        screen.post_message(WorkFailed("lease renewal", "another annotator now holds this grid"))
        await pilot.pause()
        assert "lease renewal failed" in status_text(pilot)
        assert screen._busy
        screen._busy = False


async def test_calibration_key_opens_the_latest_run_and_returns(demo_project: Project) -> None:
    from memgrid.tui.app.screens.calibration import CalibrationScreen

    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "C")
        await settle(pilot)
        assert isinstance(app.screen, CalibrationScreen)
        await press(pilot, "escape")
        await settle(pilot)
        assert annotate_screen(pilot) is not None


async def test_a_caption_of_thousands_of_characters_leaves_the_seeds_and_keys_on_screen(
    demo_project: Project,
) -> None:
    """A scraped caption can run to the import limit: the header shows its first lines and
    says how long it is, and the seeds and key hints keep their place."""
    from memgrid.tui.app.widgets import PromptView
    from memgrid.tui.app.widgets.prompt_view import PROMPT_LINES

    store = demo_project.store
    seeds = store.grids.get(store.grids.ids_all()[0]).images
    latin = " ".join(f"word{number % 50}" for number in range(1400))[:9500]
    wide = "富士山と桜の浮世絵、" * 400  # two cells a character
    for caption in (latin, wide):
        long_one, _ = store.grids.add(caption, seeds, model="scraped", source="import")
        app = make_app(demo_project, settings_for())
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = await reopen(pilot, long_one)
            header = screen.query_one(PromptView)
            shown = str(header.render())
            assert f"({len(caption):,} characters; `memgrid show" in shown
            # the grid line, the prompt's lines and the legend, inside the bottom border
            assert header.outer_size.height <= PROMPT_LINES + 3
            assert screen.query_one(SeedGrid).size.height >= 20
            assert screen.query_one(KeyHints).region.bottom <= SIZE[1]


async def test_the_app_runs_for_someone_with_no_color_set(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Textual's NO_COLOR filter reads each segment's style; the seed grid's padding had none,
    # and the app crashed at start for anyone with NO_COLOR set.
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.query_one(SeedGrid).get_line_filters()  # the filter is on
        app.save_screenshot(str(demo_project.root / "frame.svg"))  # every line rendered
        grid_id = current_grid(pilot)
        await press(pilot, "3")
        saved = vote_of(demo_project.store, grid_id, "alice")
        assert saved is not None and saved.category is Category.UNINTENDED


def hold_labels(session: Any, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Each label waits (as on a database another process holds) until the event is set."""
    release = threading.Event()
    store_label = session.label

    def held_label(*args: Any, **kwargs: Any) -> Any:
        release.wait(20)
        return store_label(*args, **kwargs)

    monkeypatch.setattr(session, "label", held_label)
    return release


async def test_quit_waits_for_the_label_being_stored(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A label waiting on a database another process holds: q used to end the process under
    # it, and the label was lost without a word.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        release = hold_labels(app.session, monkeypatch)
        grid_id = current_grid(pilot)
        await pilot.press("3")
        await pilot.pause(0.2)
        await pilot.press("q")
        await pilot.pause(0.2)
        assert app.is_running
        assert "Saving (unintended) before quitting" in status_text(pilot)
        release.set()
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.is_running:
                break
        assert not app.is_running  # quit once stored, without another key
    saved = vote_of(demo_project.store, grid_id, "alice")
    assert saved is not None and saved.category is Category.UNINTENDED


async def test_quit_while_nothing_is_being_stored_is_at_once(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert not app.is_running


async def test_with_no_grid_on_screen_the_app_looks_again_by_itself(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start met a locked database (or every open grid was leased to others): the screen
    # stayed empty until the annotator quit and started again.
    app = make_app(demo_project, settings_for())
    session = app.session
    start = session.start
    calls = []

    def locked_once():
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseError("database: database is locked")
        return start()

    monkeypatch.setattr(session, "start", locked_once)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert current_grid(pilot) is None
        assert "start failed" in status_text(pilot)
        annotate_screen(pilot).refresh_progress()  # what its 10 s timer runs
        await settle(pilot)
        assert current_grid(pilot) is not None


async def test_looking_again_for_no_grid_keeps_the_status_line(demo_project: Project) -> None:
    # Every 10 s with the queue empty: the status line's last word must stay readable.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        monkeypatch_start = screen.session.start
        screen.session.start = lambda: replace(monkeypatch_start(), view=None)  # type: ignore[method-assign]
        screen.view = None
        screen.query_one("#status", Static).update("a notice the annotator is reading")
        screen.refresh_progress()
        await settle(pilot)
        assert status_text(pilot) == "a notice the annotator is reading"


async def test_a_label_held_up_by_the_database_says_so(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process writing: the key seemed ignored for up to 30 s.
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        release = hold_labels(app.session, monkeypatch)
        await pilot.press("3")
        await pilot.pause(1.5)
        assert "unintended: waiting for the database" in status_text(pilot)
        release.set()
        await settle(pilot)
        assert "waiting for the database" not in status_text(pilot)


async def test_quit_while_only_looking_for_a_grid_is_at_once(
    demo_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A start waiting on a locked database stores no label: nothing to wait for.
    release, done = threading.Event(), threading.Event()
    app = make_app(demo_project, settings_for())
    start = app.session.start

    def held_start():
        try:
            release.wait(20)
            return start()
        finally:
            done.set()

    monkeypatch.setattr(app.session, "start", held_start)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            await pilot.press("q")
            await pilot.pause(0.2)
            assert not app.is_running
    finally:
        release.set()
        done.wait(20)  # the app left its worker: let it finish before the store closes

"""Every key in the key table runs a handler: config, bindings, Textual actions and keymap agree."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from textual.actions import parse
from textual.binding import Binding
from textual.screen import Screen

from memgrid.core.taxonomy import Category
from memgrid.tui.app import make_app
from memgrid.tui.app.app import MemgridApp
from memgrid.tui.app.config import KEY_ACTIONS, default_keys
from memgrid.tui.app.keys import CATEGORY_SCREENS, binding_id, describe_keys, keymap
from memgrid.tui.app.screens import AdjudicationScreen, AnnotateScreen, FeatureScreen
from memgrid.tui.services.project import Project
from tests.app.conftest import settings_for
from tests.app.pilot_helpers import SIZE, annotate_screen, press, settle

# The screens whose bindings the keymap reaches, by the prefix of their binding ids.
KEYMAPPED_SCREENS: dict[str, type[Screen[Any]]] = {
    "annotate": AnnotateScreen,
    "feature": FeatureScreen,
    "adjudicate": AdjudicationScreen,
}


def bindings_by_id() -> dict[str, tuple[type[Screen[Any]], Binding]]:
    found = {}
    for screen in KEYMAPPED_SCREENS.values():
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.id is not None:
                assert binding.id not in found, f"binding id {binding.id} used twice"
                found[binding.id] = (screen, binding)
    return found


def handler_of(screen: type[Screen[Any]], action: str) -> Callable[..., Any]:
    """The method a binding's action runs (Textual's own lookup), checked to take its arguments."""
    namespace, name, arguments = parse(action)
    target = {"": screen, "screen": screen, "app": MemgridApp}[namespace]
    method = getattr(target, f"action_{name}", None)
    assert callable(method), f"{action!r}: {target.__name__} has no action_{name}"
    inspect.signature(method).bind(None, *arguments)  # raises when the arguments do not fit
    return method


@pytest.mark.parametrize("action", list(KEY_ACTIONS))
def test_every_configured_action_is_bound_to_a_handler(action: str) -> None:
    screen, binding = bindings_by_id()[binding_id(action)]
    assert screen is AnnotateScreen
    assert binding.key == KEY_ACTIONS[action][0]
    handler_of(screen, binding.action)


def test_the_annotate_screen_binds_exactly_the_configured_actions() -> None:
    bound = [binding.id for binding in AnnotateScreen.BINDINGS if isinstance(binding, Binding)]
    assert bound == [binding_id(action) for action in KEY_ACTIONS]


@pytest.mark.parametrize("screen_id", CATEGORY_SCREENS)
def test_category_keys_pick_a_category_on_the_other_screens(screen_id: str) -> None:
    found = bindings_by_id()
    for category in Category:
        screen, binding = found[f"{screen_id}.{category.value}"]
        assert screen is KEYMAPPED_SCREENS[screen_id]
        assert binding.key == KEY_ACTIONS[category.value][0]
        handler_of(screen, binding.action)
        assert parse(binding.action)[2] == (category.value,)


def test_the_category_keys_label_with_their_own_category() -> None:
    for category in Category:
        _, binding = bindings_by_id()[binding_id(category.value)]
        assert parse(binding.action) == ("", "label", (category.value,))


def test_the_keymap_reaches_only_bindings_that_exist() -> None:
    keys = {**default_keys(), "explicit": "x", "skip": "k,ctrl+s"}
    mapped = keymap(keys)
    assert set(mapped) <= set(bindings_by_id())
    assert {binding_id(action) for action in KEY_ACTIONS} <= set(mapped)
    assert mapped[binding_id("skip")] == "k,ctrl+s"
    assert all(mapped[f"{screen}.explicit"] == "x" for screen in CATEGORY_SCREENS)


def test_help_describes_every_configured_action() -> None:
    keys = {**default_keys(), "skip": "k"}
    described = {action: (typed, does) for action, typed, does in describe_keys(keys)}
    assert set(described) == set(KEY_ACTIONS)
    assert described["skip"] == ("k", KEY_ACTIONS["skip"][2])


@pytest.mark.anyio
async def test_a_key_counts_as_activity_for_the_idle_collector(demo_project: Project) -> None:
    app = make_app(demo_project, settings_for())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = annotate_screen(pilot)
        assert screen is not None
        # Never idle long enough to collect during the test: under load, pressing and
        # settling can take longer than the real idle delay, which would clear the flag.
        screen.collector.idle_seconds = 3600.0
        screen.collector.pending = False
        await press(pilot, "h")
        assert screen.collector.pending


@pytest.mark.parametrize("width", [40, 100, 160, 220])
def test_footer_hints_fit_the_width_most_important_first_help_always(width: int) -> None:
    from memgrid.tui.app.config import default_keys
    from memgrid.tui.app.keys import footer_hints
    from memgrid.tui.app.widgets.key_hints import hint_text

    hints, help_hint = footer_hints(default_keys())
    line = hint_text(hints, help_hint, width)
    assert line.cell_len <= width and line.plain.endswith("?  help")
    shown = [label for _, label in hints if f" {label} " in f"{line.plain} "]
    assert shown == [label for _, label in hints][: len(shown)] or width < 100
    if width >= 100:
        assert {"explicit", "implicit", "unintended", "none", "accept", "skip"} <= set(shown)

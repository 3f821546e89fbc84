"""Key bindings from the config's action table: Textual Bindings with ids, and the keymap."""

from __future__ import annotations

from textual.binding import Binding
from textual.keys import format_key

from memgrid.core.taxonomy import Category
from memgrid.tui.app.config import KEY_ACTIONS

SCREEN_ID = "annotate"
# Screens where the category keys (explicit .. none, as configured) pick a category too.
CATEGORY_SCREENS = ("feature", "adjudicate")
# The footer shows the everyday keys, most important first, as many as the width allows;
# help is always shown, last (widgets/key_hints.py). The help screen lists them all.
FOOTER_ACTIONS = (
    "explicit",
    "implicit",
    "unintended",
    "none",
    "accept",
    "skip",
    "undo",
    "compare",
    "zoom",
    "heatmap",
    "panel",
    "flag",
    "note",
    "feature",
)
HELP_ACTION = "help"


# A configured action runs the annotate screen's Textual action of the same name (its
# action_* method), except these: the category keys share one action that takes the category,
# and quit is the app's own. tests/app/test_keys.py ties every key to its handler.
KEY_HANDLERS = {
    **{category.value: f"label('{category.value}')" for category in Category},
    "quit": "app.quit",
}


def handler(action: str) -> str:
    """The Textual action that a configured action's keys run on the annotate screen."""
    return KEY_HANDLERS.get(action, action)


def binding_id(action: str) -> str:
    return f"{SCREEN_ID}.{action}"


def annotate_bindings() -> list[Binding]:
    """One Binding per action, with the default keys; the keymap swaps in configured ones."""
    return [
        Binding(
            keys,
            handler(action),
            label,
            show=False,  # the footer is KeyHints, fitted to the width
            id=binding_id(action),
        )
        for action, (keys, label, _) in KEY_ACTIONS.items()
    ]


def category_bindings(screen: str, action: str, label: str) -> list[Binding]:
    """A screen's bindings for the four category keys: `action` is called with the value."""
    return [
        Binding(
            KEY_ACTIONS[category.value][0],
            f"{action}('{category.value}')",
            label.format(category=category.value),
            id=f"{screen}.{category.value}",
        )
        for category in Category
    ]


def keymap(keys: dict[str, str]) -> dict[str, str]:
    """The configured keys as a Textual keymap (binding id -> keys), category keys shared."""
    mapped = {binding_id(action): value for action, value in keys.items()}
    for screen in CATEGORY_SCREENS:
        for category in Category:
            mapped[f"{screen}.{category.value}"] = keys[category.value]
    return mapped


def key_display(keys: str) -> str:
    """The first of an action's keys as Textual's footer shows it ("enter" as ⏎)."""
    return format_key(keys.split(",")[0])


def footer_hints(keys: dict[str, str]) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    """(key, label) of the footer's actions in order, and the help hint that always shows."""
    hints = [(key_display(keys[a]), KEY_ACTIONS[a][1]) for a in FOOTER_ACTIONS]
    return hints, (key_display(keys[HELP_ACTION]), KEY_ACTIONS[HELP_ACTION][1])


def describe_keys(keys: dict[str, str]) -> list[tuple[str, str, str]]:
    """(action, keys as typed, what it does) for every action, in the help screen's order."""
    return [
        (action, keys.get(action, default), description)
        for action, (default, _, description) in KEY_ACTIONS.items()
    ]

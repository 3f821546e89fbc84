"""The app's settings: key bindings and annotation options, read once at the edge.

Who reads what:

| file                                            | read by            | holds            |
|-------------------------------------------------|--------------------|------------------|
| `$MEMGRID_CONFIG` (when set: the only file)     | `memgrid annotate` | [keys] [annotate] |
| `$XDG_CONFIG_HOME/memgrid/memgrid.toml`         | `memgrid annotate` | [keys] [annotate] |
| (default `~/.config/memgrid/memgrid.toml`)      |                    |                  |
| `<project>/memgrid.toml`                        | `memgrid annotate` | [keys] [annotate] |

The project's file overrides the user's, key by key. Validation is strict: an unknown
section, action or option, a bad value, or one key bound to two actions is an InputError
naming the file. Example:

    [keys]
    explicit = "1"
    skip = "s,k"          # several keys: comma-separated

    [annotate]
    lease_seconds = 600   # a grid shown to someone is reserved this long
    blind_share = 0.1     # share of grids with the detector's marks hidden until your vote
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memgrid.core.annotators import ANNOTATORS_SECTION, PROJECT_CONFIG_NAME
from memgrid.core.errors import InputError
from memgrid.core.records import QueueOrder
from memgrid.core.text_files import parse_toml, read_text
from memgrid.tui.app.session import SessionOptions

CONFIG_NAME = PROJECT_CONFIG_NAME
CONFIG_ENV = "MEMGRID_CONFIG"

# Action id -> (default keys, footer label, what it does); the help screen lists them all.
KEY_ACTIONS: dict[str, tuple[str, str, str]] = {
    "explicit": ("1", "explicit", "explicit intended: the prompt names what recurs"),
    "implicit": ("2", "implicit", "implicit intended: the prompt implies it without naming"),
    "unintended": ("3", "unintended", "unintended: nobody asked for what recurs"),
    "none": ("4", "none", "not memorized: the seeds vary as they should"),
    "accept": ("enter", "accept", "accept the proposal (category and features)"),
    "skip": ("s", "skip", "skip: not done, comes back later"),
    "flag": ("f", "flag", "flag: unsure, wants review (asks why; stays until a verdict)"),
    "note": ("n", "note", "write a note on the grid"),
    "undo": ("u", "undo", "undo your last action (skips, notes and earlier runs too)"),
    "back": ("left", "back", "back to the previous grid of this session"),
    "forward": ("right", "forward", "forward again through this session's grids"),
    "feature": ("m", "feature", "mark a feature: heat-map tiles, a category, a name"),
    "heatmap": ("h", "heat map", "the region heat map as one more tile of the grid, on/off"),
    "zoom": ("z", "zoom", "zoom one seed (left/right for the others)"),
    "compare": ("c", "compare", "two seeds side by side at full size; d shows their difference"),
    "panel": ("p", "panel", "fold or unfold the side panel (proposal, scores, labels)"),
    "reference": ("t", "training image", "the matched training image beside the seeds, on/off"),
    "history": ("r", "reopen", "reopen an earlier label and see its history"),
    "other_model": ("o", "other model", "this prompt under the next model (e.g. mitigated)"),
    "skipped": ("S", "skipped", "list skipped grids"),
    "flagged": ("F", "flagged", "list flagged grids"),
    "adjudicate": ("A", "review", "review queue: open flags, disagreements and skips"),
    "calibration": ("C", "calibration", "the latest calibration run; a accepts it, c runs one"),
    "help": ("?", "help", "this help"),
    "quit": ("q", "quit", "quit (every label is already saved)"),
}
# [annotate] values allowed, inclusive. A lease is renewed while its grid is on screen, so
# it need not be long; one over a day would hold a grid for good after a crash (kill -9).
# prefetch 0 would find no grids to show at all; cell_budget 0 is no cap.
OPTION_RANGES: dict[str, tuple[float, float]] = {
    "lease_seconds": (10, 86_400),
    "blind_share": (0, 1),
    "prefetch": (1, 64),
    "cell_budget": (0, 100_000),
}
WHOLE_NUMBER_OPTIONS = ("prefetch", "cell_budget")
MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
NAMED_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class AnnotateOptions:
    """The [annotate] section: how the queue is shared and drawn."""

    lease_seconds: float = 600.0
    """A grid shown to one annotator is reserved this long (renewed while on screen)."""
    blind_share: float = 0.1
    """Share of grids shown without the proposal, so calibration labels are not anchored."""
    prefetch: int = 4
    """Grids read and drawn ahead of the one on screen."""
    cell_budget: int = 0
    """Cells the half-cell seeds may use in all (0: as many as the window has): on a slow
    link, a cap bounds the bytes per grid change (about 36 bytes a cell)."""


@dataclass(frozen=True)
class FileConfig:
    """What the config files say, merged; defaults where they say nothing."""

    keys: dict[str, str] = field(default_factory=lambda: default_keys())
    annotate: AnnotateOptions = field(default_factory=AnnotateOptions)
    sources: tuple[Path, ...] = ()


@dataclass(frozen=True)
class AppSettings:
    """Everything `make_app` needs besides the project: config files merged with the CLI."""

    annotator: str
    order: QueueOrder = QueueOrder.THRESHOLD
    random_seed: int = 0
    overlap: int = 1
    show_others: bool = False
    image_protocol: str = "halfcell"
    color: str = "auto"
    keys: dict[str, str] = field(default_factory=lambda: default_keys())
    annotate: AnnotateOptions = field(default_factory=AnnotateOptions)
    grid_ids: tuple[int, ...] = ()

    def session_options(self) -> SessionOptions:
        return SessionOptions(
            annotator=self.annotator,
            order=self.order,
            random_seed=self.random_seed,
            overlap=self.overlap,
            show_others=self.show_others,
            blind_share=self.annotate.blind_share,
            lease_seconds=self.annotate.lease_seconds,
            prefetch=self.annotate.prefetch,
            grid_ids=self.grid_ids,
        )

    @classmethod
    def from_config(cls, config: FileConfig, **cli_values: Any) -> AppSettings:
        return cls(keys=dict(config.keys), annotate=config.annotate, **cli_values)


def default_keys() -> dict[str, str]:
    return {action: keys for action, (keys, _, _) in KEY_ACTIONS.items()}


def config_files(project_root: Path | None) -> list[Path]:
    """The config files that apply, weakest first (the project's file wins)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return [Path(explicit)]
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates = [Path(base) / "memgrid" / CONFIG_NAME]
    if project_root is not None:
        candidates.append(project_root / CONFIG_NAME)
    return [path for path in candidates if path.is_file()]


def load_config(project_root: Path | None) -> FileConfig:
    """Read and merge the config files; a bad file raises one InputError naming it."""
    config = FileConfig()
    for path in config_files(project_root):
        data = parse_config(read_text(path), path)
        if ANNOTATORS_SECTION in data and (
            project_root is None or path != project_root / CONFIG_NAME
        ):
            # The project reads its own table when it opens (core.annotators); elsewhere
            # the section would look like a rule while binding nothing.
            raise InputError(
                path, f"[{ANNOTATORS_SECTION}] is read only from a project's {CONFIG_NAME}"
            )
        config = merge(config, data, path)
    return config


def parse_config(text: str, source: Path | str) -> dict[str, Any]:
    data = parse_toml(text, source)
    unknown = sorted(set(data) - {"keys", "annotate", ANNOTATORS_SECTION})
    if unknown:
        raise InputError(
            source,
            f"unknown section [{unknown[0]}]; known: [keys], [annotate], [{ANNOTATORS_SECTION}]",
        )
    for section in ("keys", "annotate"):
        if section in data and not isinstance(data[section], dict):
            raise InputError(source, f"[{section}] must be a table")
    return data


def merge(config: FileConfig, data: dict[str, Any], source: Path) -> FileConfig:
    keys = dict(config.keys)
    for action, value in data.get("keys", {}).items():
        if action not in KEY_ACTIONS:
            raise InputError(
                source, f"unknown action {action!r}; known: {', '.join(KEY_ACTIONS)}", "keys"
            )
        keys[action] = validate_keys(value, source, action)
    check_no_clash(keys, source)
    annotate = config.annotate
    known = {f.name: f for f in fields(AnnotateOptions)}
    for name, value in data.get("annotate", {}).items():
        if name not in known:
            raise InputError(
                source, f"unknown option {name!r}; known: {', '.join(known)}", "annotate"
            )
        annotate = replace(annotate, **{name: _annotate_value(name, value, source)})
    return FileConfig(keys=keys, annotate=annotate, sources=(*config.sources, source))


def validate_keys(value: Any, source: Path | str, action: str) -> str:
    """Comma-separated Textual key names ("s", "ctrl+s", "enter", "?"), checked strictly."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(source, f"{action}: keys must be a non-empty string", "keys")
    names = [part.strip() for part in value.split(",")]
    for name in names:
        if not _is_key_name(name):
            raise InputError(source, f"{action}: {name!r} is not a key name", "keys")
    return ",".join(names)


def check_no_clash(keys: dict[str, str], source: Path | str) -> None:
    owner: dict[str, str] = {}
    for action, value in keys.items():
        for key in value.split(","):
            if key in owner:
                raise InputError(
                    source, f"key {key!r} is bound to both {owner[key]} and {action}", "keys"
                )
            owner[key] = action


def _is_key_name(name: str) -> bool:
    from textual.keys import Keys

    if len(name) == 1:
        return name.isprintable() and not name.isspace() and name != ","
    *modifiers, base = name.split("+")
    if any(m not in MODIFIERS for m in modifiers):
        return False
    if len(base) == 1:
        return base.isprintable()
    known = {k.value for k in Keys}
    return base in known or (NAMED_KEY.match(base) is not None and _names_a_character(base))


def _names_a_character(key: str) -> bool:
    """Textual spells punctuation by its Unicode name: "question_mark", "full_stop"."""
    import unicodedata

    try:
        unicodedata.lookup(key.replace("_", " ").upper())
    except KeyError:
        return key in {"space", "tab", "enter", "escape", "backspace"}
    return True


def _annotate_value(name: str, value: Any, source: Path | str) -> Any:
    lowest, highest = OPTION_RANGES[name]
    whole = name in WHOLE_NUMBER_OPTIONS
    kind = int if whole else int | float
    # NaN fails both comparisons; infinity fails the upper one.
    if isinstance(value, bool) or not isinstance(value, kind) or not lowest <= value <= highest:
        number = "a whole number" if whole else "a number"
        raise InputError(
            source, f"{name} must be {number} between {lowest:g} and {highest:g}", "annotate"
        )
    return value if whole else float(value)

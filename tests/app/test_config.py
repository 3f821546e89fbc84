"""Config files: discovery, merging, strict validation with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgrid.core.errors import InputError
from memgrid.core.records import QueueOrder
from memgrid.tui.app.config import (
    CONFIG_ENV,
    AnnotateOptions,
    AppSettings,
    config_files,
    default_keys,
    load_config,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_config(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "memgrid" / "memgrid.toml"  # conftest sets XDG_CONFIG_HOME


def test_no_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.keys == default_keys()
    assert config.annotate == AnnotateOptions()
    assert config.sources == ()


def test_project_file_overrides_user_file_key_by_key(tmp_path: Path) -> None:
    user = write(
        user_config(tmp_path), '[keys]\nskip = "k"\nflag = "g"\n[annotate]\nprefetch = 2\n'
    )
    project = write(tmp_path / "project" / "memgrid.toml", '[keys]\nflag = "x"\n')
    config = load_config(tmp_path / "project")
    assert config.sources == (user, project)
    assert (config.keys["skip"], config.keys["flag"], config.keys["explicit"]) == ("k", "x", "1")
    assert config.annotate.prefetch == 2


def test_explicit_config_path_is_the_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(user_config(tmp_path), '[keys]\nskip = "k"\n')
    chosen = write(tmp_path / "elsewhere.toml", "[annotate]\nlease_seconds = 30\n")
    monkeypatch.setenv(CONFIG_ENV, str(chosen))
    assert config_files(None) == [chosen]
    assert load_config(None).annotate.lease_seconds == 30.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[keys\n", "not valid TOML"),
        ("[colors]\nx = 1\n", "unknown section [colors]"),
        ('[keys]\nteleport = "t"\n', "unknown action 'teleport'"),
        ('[keys]\nskip = ""\n', "skip: keys must be a non-empty string"),
        ('[keys]\nskip = "not a key"\n', "'not a key' is not a key name"),
        ('[keys]\nskip = "ctrl+nonsense_key"\n', "is not a key name"),
        ('[keys]\nskip = "1"\n', "key '1' is bound to both"),
        ("[annotate]\nspeed = 3\n", "unknown option 'speed'"),
        ("[annotate]\nblind_share = 2\n", "blind_share must be a number between 0 and 1"),
        ('[annotate]\nlease_seconds = "long"\n', "lease_seconds must be a number"),
        ("[annotate]\nprefetch = -1\n", "prefetch must be a whole number"),
        ("keys = 3\n", "[keys] must be a table"),
    ],
)
def test_bad_files_are_one_line_input_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "project" / "memgrid.toml", text)
    with pytest.raises(InputError) as caught:
        load_config(tmp_path / "project")
    message = str(caught.value)
    assert problem in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_key_names_textual_understands_are_accepted(tmp_path: Path) -> None:
    write(
        tmp_path / "memgrid.toml",
        '[keys]\nskip = "ctrl+s,k"\nhelp = "question_mark,f1"\nback = "backspace"\n'
        'accept = "space"\nflag = "!"\n',
    )
    keys = load_config(tmp_path).keys
    assert keys["skip"] == "ctrl+s,k" and keys["help"] == "question_mark,f1"


def test_settings_carry_cli_values_and_file_values(tmp_path: Path) -> None:
    write(tmp_path / "memgrid.toml", '[keys]\nskip = "k"\n[annotate]\nblind_share = 0.2\n')
    settings = AppSettings.from_config(
        load_config(tmp_path), annotator="ann", order=QueueOrder.RANDOM
    )
    options = settings.session_options()
    assert (options.annotator, options.order, options.blind_share) == (
        "ann",
        QueueOrder.RANDOM,
        0.2,
    )
    assert settings.keys["skip"] == "k"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("lease_seconds = nan", "lease_seconds must be a number between 10 and 86400"),
        ("lease_seconds = inf", "lease_seconds must be a number between 10 and 86400"),
        ("lease_seconds = 0.5", "lease_seconds must be a number between 10 and 86400"),
        ("blind_share = nan", "blind_share must be a number between 0 and 1"),
        ("prefetch = 0", "prefetch must be a whole number between 1 and 64"),
        ("prefetch = 1.5", "prefetch must be a whole number between 1 and 64"),
        ("cell_budget = 99999999999", "cell_budget must be a whole number between 0 and 100000"),
    ],
)
def test_annotate_values_out_of_range_are_refused(tmp_path: Path, line: str, problem: str) -> None:
    # nan would fail the app at start, inf would leave a lease for good after kill -9, and
    # prefetch 0 would show "every grid is done" with grids still open.
    write(tmp_path / "memgrid.toml", f"[annotate]\n{line}\n")
    with pytest.raises(InputError, match=problem):
        load_config(tmp_path)

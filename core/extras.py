"""Which optional extra installs which import, and the one error that names the missing extra.

memgrid's base install (what an annotator gets from `just demo` or `pipx install .`) has no
torch and no pyarrow. Everything that needs them imports them lazily; before it does, it calls
`require_extra`, and the CLI maps any ModuleNotFoundError that still escapes through
`extra_for_module`. Both read EXTRAS, so a missing package is always reported the same way:
one line naming the extra and the pip command (docs/design.md, "Optional extras").

An extra counts as installed when every one of its modules can be found on the import path
(importlib's spec search, without importing them): that is what a later `import` will see.
"""

from __future__ import annotations

import importlib.util

from memgrid.core.errors import UnavailableError

# extra -> the top-level modules it provides (pyproject.toml's [project.optional-dependencies];
# tests/core/test_extras.py keeps the two in step).
EXTRAS: dict[str, tuple[str, ...]] = {
    "gen": ("torch", "torchvision", "diffusers", "transformers", "open_clip", "safetensors"),
    "export": ("pyarrow",),
    "ray": ("ray",),
    "slurm": ("submitit",),
}
# What each extra is for, as `memgrid doctor` says it ("... need it").
NEEDED_BY: dict[str, str] = {
    "gen": "generate, clip and sscd",
    "export": "Parquet exports",
    "ray": "generate --ray",
    "slurm": "generate --slurm-submit",
}
# Modules the extras' packages bring with them, which memgrid also imports lazily.
PULLED_IN: dict[str, str] = {"huggingface_hub": "gen"}


def install_command(extra: str) -> str:
    return f"pip install 'memgrid[{extra}]'"


class MissingExtraError(UnavailableError):
    """Something needs an optional extra that is not installed; says which and how to get it."""

    title = "Missing extra"

    def __init__(self, needed_by: str, extra: str, missing: tuple[str, ...]) -> None:
        self.needed_by = needed_by
        self.extra = extra
        self.missing = missing
        not_installed = ", ".join(missing) or "its packages"
        super().__init__(
            f"{needed_by}: needs the `{extra}` extra ({not_installed} not installed); "
            f"install it with {install_command(extra)}"
        )


def module_available(name: str) -> bool:
    """Whether `import name` would find a module, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder refused it, or a half-imported module
        return False


def missing_modules(extra: str) -> tuple[str, ...]:
    """The extra's modules that cannot be imported here (empty when it is installed)."""
    return tuple(name for name in EXTRAS[extra] if not module_available(name))


def installed_extras() -> dict[str, tuple[str, ...]]:
    """extra -> its missing modules, for every extra (an empty tuple: installed)."""
    return {extra: missing_modules(extra) for extra in EXTRAS}


def require_extra(extra: str, needed_by: str) -> None:
    """Raise MissingExtraError unless `extra` is installed; `needed_by` names the command or
    option that needs it (`generate`, `--format parquet`)."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(needed_by, extra, missing)


def extra_for_module(module_name: str | None) -> str | None:
    """The extra that installs `module_name` (a dotted name is looked up by its top level)."""
    if not module_name:
        return None
    top = module_name.partition(".")[0]
    for extra, modules in EXTRAS.items():
        if top in modules:
            return extra
    return PULLED_IN.get(top)


def missing_extra_error(error: ModuleNotFoundError, needed_by: str) -> MissingExtraError | None:
    """The extra behind an import that failed, as a MissingExtraError; None if no extra has it."""
    extra = extra_for_module(error.name)
    if extra is None:
        return None
    return MissingExtraError(needed_by, extra, (str(error.name).partition(".")[0],))

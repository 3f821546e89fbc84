# memgrid's two everyday commands: `just demo` and `just test`.
# Each recipe creates or refreshes .venv with pip when pyproject.toml changes.

set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")

# Build the offline demo project (synthetic images) and open the annotation app on it.
demo *ARGS: (venv "base")
    .venv/bin/memgrid demo --project demo-project {{ARGS}}

# Run memgrid from .venv without activating it, from any folder: `just memgrid status -p demo-project`.
[no-cd]
[positional-arguments]
memgrid *ARGS: (venv "base")
    "{{justfile_directory()}}/.venv/bin/memgrid" "$@"

# Lint, check the layering, run the whole test suite.
test *ARGS: (venv "all")
    .venv/bin/ruff format --check .
    .venv/bin/ruff check .
    .venv/bin/lint-imports
    .venv/bin/pytest {{ARGS}}

# Property tests with many examples (CI runs a bounded number).
test-thorough *ARGS: (venv "all")
    HYPOTHESIS_PROFILE=thorough .venv/bin/pytest {{ARGS}}

# Run one benchmark from bench/, e.g. `just bench score`.
bench NAME *ARGS: (venv "all")
    .venv/bin/python bench/{{NAME}}.py {{ARGS}}

# Create or refresh .venv: "base" for annotators (no torch), "all" for the suite.
venv KIND:
    #!/usr/bin/env bash
    set -euo pipefail
    hash=$(sha256sum pyproject.toml | cut -c1-16)
    if [ -f ".venv/.memgrid-all-$hash" ] || [ -f ".venv/.memgrid-{{KIND}}-$hash" ]; then exit 0; fi
    [ -x .venv/bin/python ] || {{python}} -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    if [ "{{KIND}}" = "all" ]; then spec=".[gen,export,ray,slurm,dev]"; else spec="."; fi
    echo "Installing memgrid $spec into .venv ..."
    .venv/bin/python -m pip install --quiet -e "$spec"
    rm -f .venv/.memgrid-*
    touch ".venv/.memgrid-{{KIND}}-$hash"

"""CLI command groups; each module defines `register(app)`, called by tui.cli when one of
its commands (COMMAND_MODULES) first runs or `--help` lists them.

Modules here must import only light packages at top level: torch, diffusers and
open_clip are imported inside the functions that need them.
"""

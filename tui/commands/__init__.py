"""CLI command groups; each module defines `register(app)` and is discovered by tui.cli.

Modules here must import only light packages at top level: torch, diffusers and
open_clip are imported inside the functions that need them.
"""

"""CLI command groups; each module defines `register(app)`, called by tui.cli in WORKFLOW_ORDER.

Modules here must import only light packages at top level: torch, diffusers and
open_clip are imported inside the functions that need them.
"""

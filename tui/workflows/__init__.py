"""Workflows that wire core and db together; the CLI and the app's workers both call these."""

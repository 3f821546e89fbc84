"""The application's services: workflows that wire core and db together, with no UI.

The CLI commands and the app's workers both call these; an import-linter contract keeps
Textual, Typer and Rich out.
"""

"""`python -m tui` runs the memgrid CLI."""

from tui.cli import main

main()

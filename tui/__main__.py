"""`python -m tui` runs the memgrid CLI."""

from memgrid.tui.cli import main

main()

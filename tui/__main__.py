"""`python -m memgrid.tui` runs the memgrid CLI."""

from memgrid.tui.program import main

main()

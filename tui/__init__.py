"""What a person touches in a terminal: the Typer CLI and the Textual app."""

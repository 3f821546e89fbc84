"""memgrid's domain: pure Python, no SQLite, no terminal UI."""

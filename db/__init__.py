"""The one owner of SQLite: schema, migrations and the typed store API."""

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """sqlite-utils imports pandas, when it is installed, only to store pandas timestamps as
    text; memgrid stores none, and importing pandas costs about half a second of every
    command's start, the annotation app's included. So pandas is hidden while sqlite-utils
    is first imported, then made importable again for whoever needs it."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` fail
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

"""The one owner of SQLite: schema, migrations and the typed store API."""

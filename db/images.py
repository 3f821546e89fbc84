"""The seed images of grids, and the embeddings model metrics cache per image."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from memgrid.db.rows import Noun, placeholders

EMBEDDINGS_PER_QUERY = 500


class Images(Noun):
    """Image rows (added with their grid) and, by sha256, the model metrics' EmbeddingCache."""

    @property
    def count(self) -> int:
        return int(self.store.row("SELECT count(*) FROM images")[0])

    def seeds_where(self, *, grid_id: int) -> set[int]:
        return {
            row[0]
            for row in self.store.rows("SELECT seed FROM images WHERE grid_id = ?", (grid_id,))
        }

    def get_embeddings(self, model_key: str, shas: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(shas))
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), EMBEDDINGS_PER_QUERY):
            chunk = wanted[start : start + EMBEDDINGS_PER_QUERY]
            for sha, vector in self.store.rows(
                f"""SELECT sha256, vector FROM embeddings WHERE model_key = ?
                AND sha256 IN ({placeholders(chunk)})""",
                [model_key, *chunk],
            ):
                found[sha] = bytes(vector)
        return found

    def put_embeddings(self, model_key: str, vectors: Mapping[str, bytes]) -> None:
        self.store.write_many(
            "INSERT OR REPLACE INTO embeddings (model_key, sha256, vector) VALUES (?, ?, ?)",
            [(model_key, sha, vector) for sha, vector in vectors.items()],
        )

"""Grids: one prompt rendered under many seeds by one model with one set of settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memgrid.core.errors import NotFoundError
from memgrid.core.provenance import extend_provenance
from memgrid.core.records import Grid, GridIdentity, GridImage, GridTable
from memgrid.db.rows import (
    GRID_COLUMNS,
    IDS_PER_QUERY,
    Noun,
    canonical_json,
    content_key,
    grid_record,
    now_text,
    placeholders,
)


def grid_key(settings: dict[str, Any], origin: str = "") -> str:
    """A grid's identity beyond prompt and model: its settings, and its import origin if any.

    Imported grids are one per source folder or manifest grid key (migration m005 adds the
    `origin` column); grids made here have none and keep the key they always had.
    """
    if not origin:
        return content_key(settings)
    return content_key({"settings": settings, "origin": origin})


class Grids(Noun):
    def add(
        self,
        prompt: str,
        images: Sequence[GridImage],
        *,
        model: str = "",
        settings: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        source: str = "",
        prompt_metadata: dict[str, Any] | None = None,
        origin: str = "",
    ) -> tuple[int, int]:
        """Add a grid and its images in one transaction; returns (grid id, images added).

        A grid is identified by prompt, model, settings and origin (the source folder or
        manifest grid key it was imported from): adding it again adds only the seeds it
        lacks, so an interrupted run resumes without duplicates, and its provenance then
        lists each run that added seeds (core.provenance).
        """
        settings = settings or {}
        store = self.store
        with store.atomic():
            prompt_id = store.prompts.ensure(prompt, prompt_metadata)
            settings_key = grid_key(settings, origin)
            created = store.write(
                """INSERT OR IGNORE INTO grids
                (prompt_id, model, settings, settings_key, provenance, source, origin, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    prompt_id,
                    model,
                    canonical_json(settings),
                    settings_key,
                    canonical_json(provenance or {}),
                    source,
                    origin,
                    now_text(),
                ),
            )
            grid_id, stored_provenance = store.row(
                """SELECT id, provenance FROM grids
                WHERE prompt_id = ? AND model = ? AND settings_key = ?""",
                (prompt_id, model, settings_key),
            )
            seeds_before = set() if created.rowcount else store.images.seeds_where(grid_id=grid_id)
            added_seeds = [
                image.seed
                for image in images
                if store.write(
                    """INSERT OR IGNORE INTO images (grid_id, seed, path, sha256, width, height)
                    VALUES (?, ?, ?, ?, ?, ?)""",
                    (grid_id, image.seed, image.path, image.sha256, image.width, image.height),
                ).rowcount
            ]
            if seeds_before and added_seeds:
                extended = extend_provenance(
                    json.loads(stored_provenance), seeds_before, provenance or {}, added_seeds
                )
                store.write(
                    "UPDATE grids SET provenance = ? WHERE id = ?",
                    (canonical_json(extended), grid_id),
                )
        return int(grid_id), len(added_seeds)

    def find(
        self,
        prompt: str,
        model: str = "",
        settings: dict[str, Any] | None = None,
        origin: str = "",
    ) -> int | None:
        """The id of the grid of this prompt, model, settings and origin, if there is one."""
        row = self.store.row(
            """SELECT g.id FROM grids g JOIN prompts p ON p.id = g.prompt_id
            WHERE p.text = ? AND g.model = ? AND g.settings_key = ?""",
            (prompt, model, grid_key(settings or {}, origin)),
        )
        return int(row[0]) if row else None

    def get(self, grid_id: int) -> Grid:
        grids = self.where(ids=[grid_id])
        if not grids:
            raise NotFoundError(f"grid {grid_id}", "no grid with this id in the project")
        return grids[0]

    def all(self) -> list[Grid]:
        """Every grid with its images, in id order."""
        return self._read("", [])

    def where(self, *, ids: Sequence[int]) -> list[Grid]:
        """These grids with their images, in the order of `ids` (unknown ids left out)."""
        if not ids:
            return []
        found = {grid.id: grid for grid in self._read(f"IN ({placeholders(ids)})", list(ids))}
        return [found[grid_id] for grid_id in ids if grid_id in found]

    def identities_where(
        self, *, ids: Sequence[int] | None = None, prompts: Sequence[str] | None = None
    ) -> list[GridIdentity]:
        """The identities of the grids with these ids, or of these prompts, in id order."""
        column, values = ("g.id", ids) if ids is not None else ("p.text", prompts or ())
        wanted = list(dict.fromkeys(values))
        found: list[GridIdentity] = []
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            found += [
                GridIdentity(*row)
                for row in self.store.rows(
                    f"""SELECT g.id, p.text, g.model, g.source,
                        coalesce(json_extract(g.provenance, '$.imported_from'), ''), g.origin
                    FROM grids g JOIN prompts p ON p.id = g.prompt_id
                    WHERE {column} IN ({placeholders(chunk)})""",
                    chunk,
                )
            ]
        return sorted(found, key=lambda identity: identity.id)

    def ids_all(self) -> list[int]:
        return [row[0] for row in self.store.rows("SELECT id FROM grids ORDER BY id")]

    def ids_where(self, *, prompt_id: int) -> list[int]:
        """The grids of one prompt, one per model and settings, in model order."""
        return [
            row[0]
            for row in self.store.rows(
                "SELECT id FROM grids WHERE prompt_id = ? ORDER BY model, settings_key, id",
                (prompt_id,),
            )
        ]

    def models_all(self) -> dict[int, str]:
        """Each grid's generator model, by grid id."""
        return {row[0]: row[1] for row in self.store.rows("SELECT id, model FROM grids")}

    def table_all(self) -> GridTable:
        """Every grid without its images, as columns (see GridTable), in id order."""
        store = self.store
        rows = store.rows(
            "SELECT id, prompt_id, model, settings_key, source FROM grids ORDER BY id"
        )
        ids, prompt_ids, models, settings_keys, sources = (
            (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [], [])
        )
        prompts, metadata, parsed = {}, {}, {}
        for prompt_id, text, metadata_text in store.rows("SELECT id, text, metadata FROM prompts"):
            prompts[prompt_id] = text
            # Most prompts share a metadata text (`{}`): parse each once, share the dict.
            if metadata_text not in parsed:
                parsed[metadata_text] = json.loads(metadata_text)
            metadata[prompt_id] = parsed[metadata_text]
        # A report groups a model's grids by their settings alone: the import origin in
        # the stored key keeps imported grids apart, one per source folder, not one per run.
        settings: dict[str, dict[str, Any]] = {}
        run_key: dict[str, str] = {}
        for key, text in store.rows("SELECT DISTINCT settings_key, settings FROM grids"):
            values = json.loads(text)
            run_key[key] = grid_key(values)
            settings[run_key[key]] = values
        return GridTable(
            ids,
            prompt_ids,
            models,
            [run_key[key] for key in settings_keys],
            sources,
            prompts,
            metadata,
            settings,
        )

    @property
    def count(self) -> int:
        return int(self.store.row("SELECT count(*) FROM grids")[0])

    def _read(self, id_test: str, params: list[int]) -> list[Grid]:
        """Grids whose id passes `id_test` (SQL after the column; empty: all), in id order."""
        grid_where = f"WHERE g.id {id_test}" if id_test else ""
        image_where = f"WHERE grid_id {id_test}" if id_test else ""
        with self.store.snapshot():  # a grid added between the two reads has no images yet
            rows = self.store.rows(
                f"""SELECT {GRID_COLUMNS}
                FROM grids g JOIN prompts p ON p.id = g.prompt_id {grid_where} ORDER BY g.id""",
                params,
            )
            image_rows = self.store.rows(
                f"""SELECT grid_id, seed, path, sha256, width, height FROM images
                {image_where} ORDER BY grid_id, seed""",
                params,
            )
        images: dict[int, list[GridImage]] = {row[0]: [] for row in rows}
        for grid_id, seed, path, sha256, width, height in image_rows:
            images[grid_id].append(GridImage(seed, path, sha256, width, height))
        return [grid_record(row, images[row[0]]) for row in rows]

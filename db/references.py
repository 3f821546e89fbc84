"""Reference images (training images a grid may copy) and which prompts they are linked to."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memgrid.core.records import Reference
from memgrid.db.rows import Noun, now_text, placeholders

REFERENCE_COLUMNS = "id, path, sha256, width, height, key, url, caption, phash, origin"
IDS_PER_QUERY = 500
# A reference's identity, the table's unique key (and so an index to read it in order by).
_IDENTITY = "sha256, key, url, caption"
_IDENTITIES = f"SELECT {_IDENTITY} FROM reference_images"
DIGEST_PAGE = 10_000  # identities read at a time for the pool's digest
# Prompt metadata fields that name a reference (Webster's and Wen's prompt lists carry them).
KEY_METADATA = ("laion_key", "key")
URL_METADATA = ("url",)
CAPTION_METADATA = ("caption",)


# What makes a reference one row: its content and what names it (the table's UNIQUE key).
Identity = tuple[str, str, str, str]


def reference_record(row: Sequence[Any]) -> Reference:
    return Reference(*row)


def identity_of(reference: Reference) -> Identity:
    return reference.sha256, reference.key, reference.url, reference.caption


def _first(metadata: Mapping[str, Any], names: Sequence[str]) -> str:
    return next((str(metadata[n]).strip() for n in names if metadata.get(n) not in (None, "")), "")


class References(Noun):
    """`store.references`: the pool of reference images."""

    @property
    def count(self) -> int:
        return int(self.store.row("SELECT count(*) FROM reference_images")[0])

    def add(self, references: Iterable[Reference]) -> int:
        """Store references (their files are already in images/); returns how many were new.

        A reference already stored (same image, key, url and caption) is left as it is.
        """
        added = 0
        created_at = now_text()
        with self.store.atomic():
            for ref in references:
                cursor = self.store.write(
                    """INSERT OR IGNORE INTO reference_images
                    (path, sha256, width, height, key, url, caption, phash, origin, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (ref.path, ref.sha256, ref.width, ref.height, ref.key, ref.url,
                     ref.caption, ref.phash, ref.origin, created_at),
                )  # fmt: skip
                added += cursor.rowcount
        return added

    def get_many(self, ids: Iterable[int]) -> dict[int, Reference]:
        wanted = list(dict.fromkeys(ids))
        found: dict[int, Reference] = {}
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            for row in self.store.rows(
                f"SELECT {REFERENCE_COLUMNS} FROM reference_images WHERE id IN ({placeholders(chunk)})",
                chunk,
            ):
                found[row[0]] = reference_record(row)
        return found

    def ids_where(self, identities: Iterable[Identity]) -> dict[Identity, int]:
        """The stored id of each of these identities that is stored."""
        wanted = set(identities)
        hashes = list({identity[0] for identity in wanted})
        found: dict[Identity, int] = {}
        for start in range(0, len(hashes), IDS_PER_QUERY):
            chunk = hashes[start : start + IDS_PER_QUERY]
            for row in self.store.rows(
                f"""SELECT id, sha256, key, url, caption FROM reference_images
                WHERE sha256 IN ({placeholders(chunk)})""",
                chunk,
            ):
                identity = (row[1], row[2], row[3], row[4])
                if identity in wanted:
                    found[identity] = row[0]
        return found

    def all(self) -> list[Reference]:
        return [
            reference_record(row)
            for row in self.store.rows(
                f"SELECT {REFERENCE_COLUMNS} FROM reference_images ORDER BY id"
            )
        ]

    def pool(self) -> tuple[list[int], list[int], str]:
        """Every reference's id and pHash, in id order (what the hash index is built from), and
        the pool's digest, read in one snapshot so that both describe one pool.

        The digest covers each reference's identity (its content, key, url and caption: what
        matching reads), in the order of the table's unique key, so it is the same whatever
        the order or ids the references were added with: a merged project whose shards held
        one pool has that pool's digest. The identities are read a page at a time along that
        key's index: at a million references, captions and urls would not fit in memory whole.
        """
        digest = hashlib.sha256()
        with self.store.snapshot():
            ids, hashes = self.hashes_all()
            page = self.store.rows(f"{_IDENTITIES} ORDER BY {_IDENTITY} LIMIT ?", (DIGEST_PAGE,))
            while page:
                for identity in page:
                    for part in identity:
                        encoded = str(part).encode()
                        digest.update(len(encoded).to_bytes(8, "big") + encoded)
                page = self.store.rows(
                    f"{_IDENTITIES} WHERE ({_IDENTITY}) > (?, ?, ?, ?) ORDER BY {_IDENTITY} LIMIT ?",
                    (*page[-1], DIGEST_PAGE),
                )
        # 64 bits: one project's pools never come near a collision, and the export's
        # `score.reference.pool` column stays short.
        return ids, hashes, digest.hexdigest()[:16]

    def hashes_all(self) -> tuple[list[int], list[int]]:
        """Every reference's id and pHash, in id order: what the hash index is built from."""
        rows = self.store.rows("SELECT id, phash FROM reference_images ORDER BY id")
        return [row[0] for row in rows], [row[1] for row in rows]

    def linked_where(self, *, prompt: str, metadata: Mapping[str, Any]) -> list[Reference]:
        """References linked to a prompt: by the key or url its metadata names, or by caption
        (the prompt's `caption` metadata, else its text: LAION prompt lists are captions)."""
        key = _first(metadata, KEY_METADATA)
        url = _first(metadata, URL_METADATA)
        caption = _first(metadata, CAPTION_METADATA) or prompt
        rows = self.store.rows(
            f"""SELECT {REFERENCE_COLUMNS} FROM reference_images
            WHERE (key != '' AND key = ?) OR (url != '' AND url = ?)
               OR (caption != '' AND caption = ?)
            ORDER BY id""",
            (key, url, caption),
        )
        return [reference_record(row) for row in rows]

    def linked_prompt_count(self) -> int:
        """How many prompts have at least one linked reference (the rule of linked_where)."""
        row = self.store.row(
            """SELECT count(*) FROM prompts p WHERE EXISTS (
                SELECT 1 FROM reference_images r
                WHERE (r.key != '' AND r.key IN (
                        CAST(json_extract(p.metadata, '$.laion_key') AS TEXT),
                        CAST(json_extract(p.metadata, '$.key') AS TEXT)))
                   OR (r.url != '' AND r.url = json_extract(p.metadata, '$.url'))
                   OR (r.caption != '' AND r.caption = coalesce(
                        json_extract(p.metadata, '$.caption'), p.text)))"""
        )
        return int(row[0])

    def matched_type_counts(self, metric: str) -> dict[str, int]:
        """Grids with a `metric` (the reference match) score, by the Webster type of each
        grid's latest one."""
        rows = self.store.rows(
            """SELECT json_extract(s."values", '$.webster'), count(*) FROM scores s
            WHERE s.metric = ? AND s.available = 1 AND s.id = (
                SELECT t.id FROM scores t
                WHERE t.grid_id = s.grid_id AND t.metric = s.metric AND t.available = 1
                ORDER BY t.created_at DESC, t.id DESC LIMIT 1)
            GROUP BY 1 ORDER BY 1""",
            (metric,),
        )
        return {str(row[0]): int(row[1]) for row in rows}

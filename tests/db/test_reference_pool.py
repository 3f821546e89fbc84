"""`store.references.pool()`: the hash index's rows and the pool's digest, which names a pool
by what its references are, not by the order or ids they were added with."""

from __future__ import annotations

import pytest

from memgrid.core.records import Reference
from memgrid.db import references
from memgrid.db.store import Store


def reference(number: int, caption: str = "") -> Reference:
    return Reference(
        id=0,
        path=f"images/{number:02d}.png",
        sha256=f"{number:064x}",
        width=8,
        height=8,
        key=f"K{number}",
        url=f"http://x/{number}",
        caption=caption or f"caption {number}",
        phash=number,
    )


def digest_of(pool: list[Reference]) -> tuple[list[int], list[int], str]:
    store = Store.memory()
    store.references.add(pool)
    return store.references.pool()


@pytest.mark.parametrize("page", [1, 2, 10_000])
def test_the_digest_names_the_pool_whatever_the_order_or_page(
    page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = [reference(number) for number in range(5)]
    ids, hashes, digest = digest_of(pool)
    assert (ids, hashes) == ([1, 2, 3, 4, 5], [0, 1, 2, 3, 4])
    monkeypatch.setattr(references, "DIGEST_PAGE", page)
    _, reversed_hashes, reversed_digest = digest_of(pool[::-1])
    assert reversed_hashes == [4, 3, 2, 1, 0]  # other ids, the same pool
    assert reversed_digest == digest and len(digest) == 16


def test_another_caption_or_one_more_reference_is_another_pool() -> None:
    pool = [reference(number) for number in range(3)]
    digest = digest_of(pool)[2]
    assert digest_of([*pool[:2], reference(2, caption="another caption")])[2] != digest
    assert digest_of([*pool, reference(3)])[2] != digest
    # The same image under a second caption is a second reference (LAION has many).
    assert digest_of([*pool, reference(2, caption="a second caption")])[2] != digest

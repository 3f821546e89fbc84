"""Reference images in a project: adding them (`memgrid refs add`) and matching grids with
them (`memgrid match`); docs/design.md, "Reference images"."""

from __future__ import annotations

import io
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from memgrid.core.demo import DEMO_REFERENCES
from memgrid.core.errors import InputError, Interrupted, NotFoundError, ProjectError
from memgrid.core.images import CheckedImage, decode_rgb, png_checked
from memgrid.core.records import Grid, Reference, Score
from memgrid.core.references.index import (
    DEFAULT_NEIGHBOURS,
    DEFAULT_RADIUS,
    HashIndex,
    phash_value,
)
from memgrid.core.references.matching import (
    MATCH_VERSION,
    REFERENCE_METRIC,
    Candidate,
    MatchParams,
    compare_seeds,
    grid_match,
)
from memgrid.core.references.sources import iter_references
from memgrid.tui.services.project import Project

BATCH = 500  # references stored per transaction
# Candidates compared with one grid's seeds: the linked references and the seeds' neighbours.
MAX_CANDIDATES = 64
DECODED_REFERENCES = 256  # decoded reference images kept between grids


@dataclass
class AddReport:
    added: int = 0
    already_present: int = 0
    errors: list[InputError] = field(default_factory=list)
    linked_prompts: int = 0
    pool: int = 0


@dataclass
class MatchReport:
    grids: int = 0  # matched by this run
    by_type: Counter[str] = field(default_factory=Counter)
    pool: int = 0
    already_matched: int = 0  # against this pool, with these parameters: left as they were
    grids_pending: int = 0  # what this run set out to match


class MatchInterrupted(Interrupted):
    """Ctrl-C during `match_grids`; `report` counts the grids matched and stored by then."""


def add_references(
    project: Project, source: Path, on_item: Callable[[int], None] | None = None
) -> AddReport:
    """Store every readable reference under `source`; bad items are reported, one error each.

    Files go into images/ first (atomic each), rows follow in batches: a kill leaves only
    complete, unreferenced files, and adding the source again stores just what is missing.
    """
    report = AddReport()
    batch: list[Reference] = []
    seen = 0

    def flush() -> None:
        added = project.store.references.add(batch)
        report.added += added
        report.already_present += len(batch) - added
        batch.clear()

    for found in iter_references(source):
        if isinstance(found, InputError):
            report.errors.append(found)
            continue
        try:
            checked = found.load()
        except InputError as error:
            report.errors.append(error)
            continue
        batch.append(
            stored_reference(project, checked, found.key, found.url, found.caption, found.origin)
        )
        seen += 1
        if on_item:
            on_item(seen)
        if len(batch) >= BATCH:
            flush()
    flush()
    report.linked_prompts = project.store.references.linked_prompt_count()
    report.pool = project.store.references.count
    return report


def stored_reference(
    project: Project, checked: CheckedImage, key: str, url: str, caption: str, origin: str
) -> Reference:
    """The image's file in images/ (content-addressed, like a seed's) and its row to add."""
    with Image.open(io.BytesIO(checked.data)) as image:
        phash = phash_value(image.convert("RGB"))
    path, sha256 = project.images.store(checked)
    return Reference(
        id=0,
        path=path,
        sha256=sha256,
        width=checked.width,
        height=checked.height,
        key=key,
        url=url,
        caption=caption,
        phash=phash,
        origin=origin,
    )


def add_demo_references(project: Project) -> int:
    """The demo's stand-in training images (core/demo.py); returns how many were new."""
    return project.store.references.add(
        stored_reference(
            project,
            png_checked(reference.draw()),
            reference.key,
            reference.url,
            reference.caption,
            "memgrid demo",
        )
        for reference in DEMO_REFERENCES
    )


class _DecodedReferences:
    """Reference images decoded once per run, the most recently used kept."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.images: OrderedDict[int, Image.Image] = OrderedDict()

    def get(self, reference: Reference) -> Image.Image:
        image = self.images.pop(reference.id, None)
        if image is None:
            image = decode_rgb(self.project.root / reference.path)
        self.images[reference.id] = image
        while len(self.images) > DECODED_REFERENCES:
            self.images.popitem(last=False)
        return image


def match_grids(
    project: Project,
    grid_ids: Sequence[int] | None = None,
    *,
    radius: int = DEFAULT_RADIUS,
    neighbours: int = DEFAULT_NEIGHBOURS,
    rematch: bool = False,
    on_grid: Callable[[int, int], None] | None = None,
) -> MatchReport:
    """Match each grid's seeds with the pool and store its `reference` score, one grid at a
    time; a grid already matched against this pool with these parameters (and on every seed
    it has now) is left as it is unless `rematch`. Ctrl-C raises MatchInterrupted with the
    report so far: every grid matched before it is stored, and a rerun goes on from there.
    """
    store = project.store
    report = MatchReport()
    try:
        ids, hashes, pool = store.references.pool()  # a million rows: a while
        if not ids:
            raise ProjectError(
                f"{project.root}: no reference images yet; add some with `memgrid refs add SOURCE`"
            )
        report.pool = len(ids)
        index = HashIndex(ids, hashes)
        params = MatchParams(extra={"hash_radius": radius, "neighbours": neighbours})
        wanted = _existing(project, grid_ids)
        pending = wanted if rematch else _unmatched(project, wanted, params, pool)
        report.already_matched = len(wanted) - len(pending)
        report.grids_pending = len(pending)
        decoded = _DecodedReferences(project)
        for number, grid_id in enumerate(pending, start=1):
            score = match_grid(project, store.grids.get(grid_id), index, params, decoded, pool)
            store.scores.add(score)
            report.grids += 1
            report.by_type[score.values["webster"]] += 1
            if on_grid:
                on_grid(number, len(pending))
    except KeyboardInterrupt:
        raise MatchInterrupted(report) from None
    return report


def _existing(project: Project, grid_ids: Sequence[int] | None) -> list[int]:
    """Every grid, or the ones named (each once, in the order given); an unknown id is an
    error, as for any command that names a grid."""
    every = project.store.grids.ids_all()
    if grid_ids is None:
        return every
    known = set(every)
    for grid_id in grid_ids:
        if grid_id not in known:
            raise NotFoundError(f"grid {grid_id}", "no grid with this id in the project")
    return list(dict.fromkeys(grid_ids))


def _unmatched(project: Project, wanted: list[int], params: MatchParams, pool: str) -> list[int]:
    """The grids of `wanted`, in their order, without a current match against `pool`."""
    lacking = set(
        project.store.scores.unscored_ids_where(
            metric=REFERENCE_METRIC,
            params=params.as_dict(),
            version=MATCH_VERSION,
            computed_from=("pool", pool),
        )
    )
    return [grid_id for grid_id in wanted if grid_id in lacking]


def match_grid(
    project: Project,
    grid: Grid,
    index: HashIndex,
    params: MatchParams,
    decoded: _DecodedReferences,
    pool: str,
) -> Score:
    store = project.store
    seeds = [(image.seed, decode_rgb(project.image_path(image))) for image in grid.images]
    prompt = store.prompts.get(grid.prompt_id)
    linked = store.references.linked_where(prompt=prompt.text, metadata=prompt.metadata)
    linked_ids = {reference.id for reference in linked}
    nearest: dict[int, float] = {}
    for found in index.query(
        [phash_value(image) for _, image in seeds],
        radius=params.extra["hash_radius"],
        neighbours=params.extra["neighbours"],
    ):
        for neighbour in found:
            bits = nearest.get(neighbour.reference_id, neighbour.distance)
            nearest[neighbour.reference_id] = min(bits, neighbour.distance)
    # Linked references first, then the pool's neighbours, nearest first.
    wanted = list(linked_ids) + sorted(nearest, key=lambda i: (nearest[i], i))
    wanted = list(dict.fromkeys(wanted))[:MAX_CANDIDATES]
    references = store.references.get_many(wanted)
    candidates = [
        Candidate(
            reference=references[i],
            image=decoded.get(references[i]),
            linked=i in linked_ids,
            hash_bits=nearest.get(i),
        )
        for i in wanted
    ]
    matches = compare_seeds(seeds, candidates, params)
    return grid_match(
        grid.id,
        matches,
        references,
        params,
        n_seeds=len(seeds),
        linked=len(linked_ids),
        candidates=len(candidates),
        pool=pool,
    )

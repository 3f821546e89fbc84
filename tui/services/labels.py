"""Labels in and out: label files imported and exported, and one label set from a script.

docs/design.md, "Labels in and out". An import is all or nothing: every row is read and
checked, and every grid it names found, before one transaction appends the new events;
events whose id was imported before are left out, so importing a file again adds nothing.
Imported events keep the file they came from, so nobody takes them for labels typed in
memgrid. An export writes every annotator's current vote and adjudication in the same
format, so exporting and importing into a fresh copy of a project gives the same labels.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from memgrid.core.errors import InputError, NotFoundError, ProjectError
from memgrid.core.label_files import (
    LABEL_FILE_SUFFIXES,
    GridRef,
    LabelRecord,
    label_file_bytes,
    read_label_file,
)
from memgrid.core.records import GridIdentity, LabelEvent
from memgrid.core.taxonomy import Category, Webster
from memgrid.core.user_files import write_user_file
from memgrid.db.overlap import OverlapRule
from memgrid.db.queue import AnnotationQueue
from memgrid.tui.services.project import Project


@dataclass(frozen=True)
class LabelImportReport:
    file: Path
    rows: int  # rows read (repeats of an earlier row in the file left out)
    added: int  # events appended
    already_imported: int  # rows whose event id an earlier import added
    duplicates_in_file: int
    grids: int  # distinct grids the rows name
    categories_from_webster: int = 0  # memorized by a Webster type, no category: unintended

    def to_dict(self) -> dict[str, object]:
        return {
            "file": str(self.file),
            "rows": self.rows,
            "added": self.added,
            "already_imported": self.already_imported,
            "duplicates_in_file": self.duplicates_in_file,
            "grids": self.grids,
            "categories_from_webster": self.categories_from_webster,
        }


# ---- finding the grids a file names --------------------------------------------------------


def _named_sources(identity: GridIdentity) -> set[str]:
    """What a row's `source` may say to mean this grid: its origin (the import folder's name
    or the manifest grid key), its import folder or manifest (or that one's name: paths
    differ between machines), or how it came (generate, import, ...)."""
    names = {identity.source, identity.origin}
    if identity.imported_from:
        names |= {identity.imported_from, PurePath(identity.imported_from).name}
    return names - {""}


class GridFinder:
    """Resolves the grids a label file's rows name, reading the store once per file."""

    def __init__(self, project: Project, path: Path, records: Sequence[LabelRecord]) -> None:
        self.path = path
        store = project.store
        prompts = [r.grid.prompt for r in records if r.grid.prompt is not None]
        ids = [r.grid.grid_id for r in records if r.grid.prompt is None and r.grid.grid_id]
        self.by_prompt: dict[str, list[GridIdentity]] = defaultdict(list)
        for identity in store.grids.identities_where(prompts=prompts):
            self.by_prompt[identity.prompt].append(identity)
        self.ids = {identity.id for identity in store.grids.identities_where(ids=ids)}

    def grid_id(self, record: LabelRecord) -> int:
        """The one grid the row names; InputError naming the line when none or several do.

        With a prompt, the prompt (and model and source, where given) decides; a `grid_id`
        beside it only settles a tie, since ids differ from project to project.
        """
        ref = record.grid
        if ref.prompt is None:
            if ref.grid_id not in self.ids:
                raise InputError(self.path, f"no grid with id {ref.grid_id}", record.location)
            return int(ref.grid_id)  # type: ignore[arg-type]
        candidates = [
            identity
            for identity in self.by_prompt.get(ref.prompt, [])
            if (ref.model is None or identity.model == ref.model)
            and (ref.source is None or _source_matches(ref.source, identity))
        ]
        if len(candidates) > 1 and ref.grid_id is not None:
            candidates = [c for c in candidates if c.id == ref.grid_id] or candidates
        if len(candidates) == 1:
            return candidates[0].id
        if not candidates:
            raise InputError(self.path, f"no grid for {ref.describe()}", record.location)
        ids = ", ".join(str(c.id) for c in candidates[:5])
        raise InputError(
            self.path,
            f"{ref.describe()} names {len(candidates)} grids ({ids}); add model or source, "
            "or give grid_id",
            record.location,
        )


def _source_matches(source: str, identity: GridIdentity) -> bool:
    return source in _named_sources(identity) or PurePath(source).name in _named_sources(identity)


# ---- import -----------------------------------------------------------------------------


def import_labels(
    project: Project, path: Path, default_annotator: str | None = None
) -> LabelImportReport:
    """Import a label file: all rows or none; rows imported before are left out."""
    read = read_label_file(path, default_annotator)
    finder = GridFinder(project, path, read.records)
    origin = str(path.resolve())
    now = time.time()
    events = [_event(record, finder.grid_id(record), origin, now) for record in read.records]
    earlier = _earlier_events(project, events)
    new = []
    for record, event in zip(read.records, events, strict=True):
        before = earlier.get(event.external_id or "")
        if before is None:
            new.append(event)
        elif _label_content(before) != _label_content(event):
            raise InputError(
                path,
                f"event_id {event.external_id!r} was imported before (from "
                f"{before.origin}) with another label; give the changed row a new event_id",
                record.location,
            )
    # Oldest first, so that each annotator's latest label in time is their current one;
    # rows without a time are made now, after every timed row.
    new.sort(key=lambda event: event.created_at)
    added = project.store.labels.import_many(new)
    return LabelImportReport(
        file=path,
        rows=len(read.records),
        added=added,
        already_imported=len(events) - len(new),
        duplicates_in_file=read.duplicates_in_file,
        grids=len({event.grid_id for event in events}),
        categories_from_webster=read.categories_from_webster,
    )


def _earlier_events(project: Project, events: list[LabelEvent]) -> dict[str, LabelEvent]:
    """The events these rows name that the project holds already, by external id: ones
    imported before, and its own, which its exports name `<project id>:<event id>`
    (importing such an export back adds nothing, so undo never meets a copy of a label).
    A copied project folder keeps its id, so an own id counts only when that event says
    what the row says; otherwise the row is another copy's label, imported as new."""
    labels = project.store.labels
    earlier = labels.imported_where(external_ids=[e.external_id or "" for e in events])
    own_prefix = f"{project.store.project_id}:"
    for event in events:
        external_id = event.external_id or ""
        number = external_id.removeprefix(own_prefix)
        if external_id in earlier or not _event_number(number) or number == external_id:
            continue
        try:
            own = labels.get(int(number))
        except NotFoundError:
            continue
        if not own.origin and _label_content(own) == _label_content(event):
            earlier[external_id] = own
    return earlier


def _event_number(text: str) -> bool:
    """Whether `text` could be an event's id (ASCII digits, within SQLite's integers)."""
    return text.isascii() and text.isdecimal() and len(text) <= 18


def _event(record: LabelRecord, grid_id: int, origin: str, now: float) -> LabelEvent:
    return LabelEvent(
        id=0,
        grid_id=grid_id,
        annotator=record.annotator,
        action=record.action,
        state=record.state,
        category=record.category,
        features=record.features,
        note=record.note,
        webster=record.webster,
        proposal_shown=record.proposal_shown,
        proposal_category=record.proposal_category,
        created_at=now if record.time is None else record.time,
        origin=origin,
        external_id=record.event_id,
    )


def _label_content(event: LabelEvent) -> tuple[object, ...]:
    """What an imported row says (its time aside: a row without one is stamped on import)."""
    return (
        event.grid_id,
        event.annotator,
        event.action,
        event.category,
        event.features,
        event.note,
        event.webster,
        event.proposal_shown,
        event.proposal_category,
    )


# ---- export -----------------------------------------------------------------------------


def current_label_records(project: Project) -> list[LabelRecord]:
    """Every annotator's current vote and adjudication, as label file rows, by grid."""
    store = project.store
    events = store.labels.current_all()
    identities = {
        identity.id: identity
        for identity in store.grids.identities_where(ids=[e.grid_id for e in events])
    }
    project_id = store.project_id
    records = []
    for event in events:
        identity = identities[event.grid_id]
        records.append(
            LabelRecord(
                grid=GridRef(
                    event.grid_id,
                    identity.prompt,
                    identity.model,
                    # The origin tells two imports of one prompt apart on any machine.
                    identity.origin or identity.imported_from or None,
                ),
                annotator=event.annotator,
                action=event.action,
                category=event.category,
                webster=event.webster,
                features=event.features,
                note=event.note,
                time=event.created_at,
                proposal_shown=event.proposal_shown,
                proposal_category=event.proposal_category,
                # An imported event keeps its id; one typed here gets this project's.
                event_id=event.external_id or f"{project_id}:{event.id}",
            )
        )
    return records


def export_labels(project: Project, path: Path, *, overwrite: bool = False) -> int:
    """Write the current labels to a .jsonl or .csv label file; returns the rows written."""
    suffix = path.suffix.lower()
    if suffix not in LABEL_FILE_SUFFIXES:
        raise InputError(path, "a label file must end in .jsonl or .csv")
    records = current_label_records(project)
    write_user_file(
        path, label_file_bytes(records, suffix), overwrite=overwrite, protected=project.own_files()
    )
    return len(records)


# ---- one label from a script ------------------------------------------------------------


def label_grid(
    project: Project,
    grid_id: int,
    category: Category,
    *,
    annotator: str,
    webster: Webster | None = None,
    note: str = "",
    overlap: int = 1,
) -> LabelEvent:
    """Label one grid as the app does: lease it, check it is this annotator's to label, write.

    The write is the store's label write, the one the app makes, and the lease and overlap
    rule are the annotation queue's: a grid another annotator holds, or that `overlap`
    others are done with, is refused; relabelling one's own grid is a quick fix, allowed.
    Nothing was shown, so the event records no proposal.
    """
    store = project.store
    store.grids.get(grid_id)  # NotFoundError naming the grid
    queue = AnnotationQueue(store, annotator, overlap=overlap)
    if not queue.claim(grid_id):
        raise ProjectError(
            f"grid {grid_id}: another annotator holds it in the app; try again when they move on"
        )
    try:
        if not queue.is_open(grid_id) and not store.labels.votes_where(
            grid_ids=[grid_id], annotator=annotator
        ):
            done = sorted(
                {
                    v.annotator
                    for v in store.labels.votes_where(grid_ids=[grid_id])
                    if v.state and v.state.done
                }
            )
            raise ProjectError(
                f"grid {grid_id}: {', '.join(done)} labelled it already and --overlap is "
                f"{overlap}; pass --overlap {len(done) + 1} to add another label"
            )
        return store.labels.label(
            grid_id,
            annotator,
            category,
            webster=webster,
            note=note,
            proposal_shown=False,
            proposal_category=None,
            rule=OverlapRule(overlap, time.time()),  # the check again, inside the write
        )
    finally:
        queue.release(grid_id)

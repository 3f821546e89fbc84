"""Where one annotator stands in a shared project: their own work, the project's, what is left.

Pure of Textual, like the session that asks for it after every action. With several
annotators "done" means three things (issue 13, defect 5): the grids this annotator voted
on, the grids that have all the votes the overlap asks for, and the grids that still need
votes, some of them held for now by someone else's lease.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from memgrid.core.taxonomy import LabelState
from memgrid.db.queue import AnnotationQueue

RATE_WINDOW_SECONDS = 3600.0
RATE_MIN_SPAN_SECONDS = 300.0  # a rate over a few seconds would be noise


@dataclass(frozen=True)
class Progress:
    done: int  # grids this annotator labelled or flagged
    total: int
    labels_per_hour: float | None  # None until there is a label in the window
    skipped: int = 0  # this annotator's skipped grids
    flagged: int = 0  # this annotator's flagged grids
    project_done: int | None = None  # grids with every vote the overlap asks for

    @property
    def needing_votes(self) -> int:
        return self.total - (self.done if self.project_done is None else self.project_done)


def read_progress(queue: AnnotationQueue) -> Progress:
    """The annotator's progress and the project's, as the queue's store has them now."""
    store, annotator = queue.store, queue.annotator
    counts = store.labels.state_counts_where(annotator=annotator)
    now = queue.clock()
    times = store.labels.times_where(annotator=annotator, since=now - RATE_WINDOW_SECONDS)
    rate = None
    if times:
        span = max(now - times[0], RATE_MIN_SPAN_SECONDS)
        rate = len(times) * 3600.0 / span
    return Progress(
        done=sum(counts[state.value] for state in LabelState if state.done),
        total=store.grids.count,
        labels_per_hour=rate,
        skipped=counts["skipped"],
        flagged=counts["flagged"],
        project_done=queue.grids_with_all_votes(),
    )


def describe_what_is_left(queue: AnnotationQueue, progress: Progress) -> str:
    """The end of the queue in one line: why nothing is shown, and what is left for whom."""
    if queue.only:
        return "Every listed grid is done for you; r reopens one, q quits."
    held, frees_at = queue.held_by_others()
    parts = []
    if progress.skipped:
        parts.append(f"{progress.skipped} skipped by you (S lists them)")
    if progress.flagged:
        parts.append(f"{progress.flagged} flagged by you (F lists them)")
    if held:
        when = time.strftime("%H:%M:%S", time.localtime(frees_at))
        parts.append(f"{held} held by other annotators (the first frees at {when})")
    others = progress.needing_votes - held
    if others > 0 and not held:
        parts.append(f"{others} waiting on other annotators' votes")
    left = "; ".join(parts) if parts else "nothing: every grid has its votes"
    return f"No grid needs your vote now. Left: {left}. q quits."

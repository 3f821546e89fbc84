"""Garbage collection that does not stall a frame: full passes only while nobody types.

Textual allocates heavily per frame, and a full pass of Python's cyclic collector walks
every live object: 50-250 ms on these machines, landing on whatever frame triggered it.
So at launch `tune_for_interaction` moves what is alive (imports, the project) out of the
collector's sight and stops automatic full passes; young generations are still collected
as usual, and `IdleCollector` runs the full pass once the annotator has paused.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

YOUNG_THRESHOLD = 5000  # allocations between young collections (Python's default: 700)
MIDDLE_THRESHOLD = 20
NO_AUTOMATIC_FULL_PASS = 1_000_000_000
IDLE_SECONDS = 1.0


def tune_for_interaction() -> None:
    """Freeze what is alive now and leave full passes to the idle collector (call once)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL_PASS)


class IdleCollector:
    """Runs a full collection after activity, once no key came for `idle_seconds`."""

    def __init__(
        self, idle_seconds: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.last_activity = clock()
        self.pending = False

    def note_activity(self) -> None:
        self.last_activity = self.clock()
        self.pending = True

    def collect_if_idle(self) -> bool:
        """Collect when there was activity and it has been quiet since; True if it ran."""
        if not self.pending or self.clock() - self.last_activity < self.idle_seconds:
            return False
        gc.collect()
        self.pending = False
        return True

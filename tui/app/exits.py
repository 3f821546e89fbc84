"""How the app ends while a worker may still wait on the database (tui/app/app.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

JOIN_SECONDS = 2.0


class BoundedExecutor(ThreadPoolExecutor):
    """Shut down waiting for running threads at most JOIN_SECONDS: one stuck on a locked
    database is left (the command then ends without closing the store under it)."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + JOIN_SECONDS
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

"""One piece of `memgrid doctor`'s advice: what limits memgrid here, and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    area: str  # extras, torch, weights, colour, images, project, sharing, disk
    finding: str
    fix: str
    serious: bool = True  # False: a limit worth knowing (no GPU here), not a fault

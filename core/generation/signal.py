"""The Wen et al. (ICLR 2024) memorization signal as a per-grid Score.

During sampling with classifier-free guidance the denoiser already predicts the noise
with and without the prompt; the norm of their difference, ||eps(x_t, c) - eps(x_t, {})||,
is large when a prompt pulls every seed toward one memorized image. Norms are recorded
per denoiser evaluation and per seed: one evaluation a step for first-order schedulers
(DDIM, Euler, DPM-Solver); PNDM evaluates its second timestep twice (its warm-up), so N
steps give N+1 values and `all_steps` is a mean over evaluations, not steps; Heun evaluates
every step twice. `first_step` is the same under all of them (docs/design.md, "Signals").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from memgrid.core.records import Score

WEN_METRIC = "wen"
WEN_VERSION = "1"

# Seed -> norms in step order. Seeds are strings in stored values (JSON object keys).
SeedNorms = Mapping[int, Sequence[float]]


def wen_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What makes two wen scores comparable: the norm's scale depends on all of these."""
    return {
        "norm": "l2 over the latent noise prediction, per seed",
        "steps": settings["steps"],
        "guidance": settings["guidance"],
        "scheduler": settings["scheduler"],
        "width": settings["width"],
        "height": settings["height"],
        "dtype": settings["dtype"],
    }


def mean_first_steps(norms: SeedNorms, steps: int = 1) -> float:
    """Mean over seeds of each seed's mean norm over its first `steps` evaluations."""
    return fmean(fmean(seed_norms[:steps]) for seed_norms in norms.values())


def wen_values(norms: SeedNorms) -> dict[str, Any]:
    """Grid-level numbers: first step, all steps, per seed and per step (means over seeds)."""
    if not norms or any(len(seed_norms) == 0 for seed_norms in norms.values()):
        raise ValueError("the wen signal needs at least one recorded step for every seed")
    seeds = sorted(norms)
    lengths = {len(norms[seed]) for seed in seeds}
    step_count = min(lengths)
    return {
        "first_step": mean_first_steps(norms, 1),
        "all_steps": fmean(value for seed in seeds for value in norms[seed]),
        "per_seed_first": [float(norms[seed][0]) for seed in seeds],
        "per_step": [fmean(norms[seed][step] for seed in seeds) for step in range(step_count)],
        "n_seeds": len(seeds),
        "seeds": seeds,
        # Kept so a resumed grid that gains seeds can recompute the means over all of them.
        "per_seed_steps": {str(seed): [_six_digits(v) for v in norms[seed]] for seed in seeds},
    }


def _six_digits(value: float) -> float:
    # float32 norms carry about seven digits; six keep the stored JSON short.
    return float(f"{value:.6g}")


def stored_norms(score: Score | None) -> dict[int, list[float]]:
    """The per-seed norms held in an earlier wen score (empty when there is none)."""
    if score is None or not score.available:
        return {}
    recorded = score.values.get("per_seed_steps", {})
    return {int(seed): list(map(float, values)) for seed, values in recorded.items()}


def wen_score(grid_id: int, norms: SeedNorms, settings: Mapping[str, Any]) -> Score:
    return Score(
        grid_id=grid_id,
        metric=WEN_METRIC,
        params=wen_params(settings),
        version=WEN_VERSION,
        values=wen_values(norms),
    )


def unavailable_wen_score(grid_id: int, settings: Mapping[str, Any], why: str) -> Score:
    """A wen score that says why it could not be measured (e.g. guidance 1: no CFG)."""
    return Score(
        grid_id=grid_id,
        metric=WEN_METRIC,
        params=wen_params(settings),
        version=WEN_VERSION,
        values={},
        available=False,
        note=why,
    )

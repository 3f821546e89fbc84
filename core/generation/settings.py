"""What a generation run asks for, in plain Python: settings, seeds, shards, compute counts.

The settings dict is part of a grid's identity in the store (same prompt + model +
settings + seed = same image), so it holds only what changes pixels, fully resolved.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from memgrid.core.errors import InputError
from memgrid.core.records import MAX_STORED_INTEGER

DTYPE_CHOICES = ("auto", "fp16", "bf16", "fp32")
DEVICE_NAMES = ("auto", "cuda", "cpu", "mps")
CUDA_DEVICE = re.compile(r"^cuda:(\d+)$")
MAX_SEEDS = 100_000
MAX_SEED = MAX_STORED_INTEGER


@dataclass(frozen=True)
class GenerationSettings:
    """Resolved sampling settings of one grid; `scheduler` is the diffusers class name and
    `scheduler_config` a digest of its configuration (beta schedule, timestep spacing, ...),
    which changes pixels as much as the class does."""

    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str
    dtype: str
    negative_prompt: str = ""
    scheduler_config: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        return cls(
            steps=int(data["steps"]),
            guidance=float(data["guidance"]),
            width=int(data["width"]),
            height=int(data["height"]),
            scheduler=str(data["scheduler"]),
            dtype=str(data["dtype"]),
            negative_prompt=str(data.get("negative_prompt", "")),
            scheduler_config=str(data.get("scheduler_config", "")),
        )

    def describe(self) -> str:
        return (
            f"{self.steps} steps, guidance {self.guidance:g}, {self.width}x{self.height}, "
            f"{self.scheduler}, {self.dtype}"
        )


def scheduler_config_digest(config: dict[str, Any]) -> str:
    """A short hash of a scheduler's public configuration (diffusers' own `_` keys left out,
    so the diffusers version that wrote it does not change it)."""
    public = {key: value for key, value in config.items() if not key.startswith("_")}
    text = json.dumps(public, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_differences(ours: Iterable[dict[str, Any]], theirs: Iterable[dict[str, Any]]) -> str:
    """The keys whose values differ between two sets of runs' settings, `key a vs b` each."""
    ours, theirs = list(ours), list(theirs)

    def values(configs: list[dict[str, Any]], key: str) -> str:
        texts = {json.dumps(config.get(key), sort_keys=True) for config in configs}
        return "/".join(sorted(texts))

    keys = sorted({key for config in [*ours, *theirs] for key in config})
    differing = [
        f"{key} {values(ours, key)} vs {values(theirs, key)}"
        for key in keys
        if values(ours, key) != values(theirs, key)
    ]
    return ", ".join(differing) or "different sets of runs"


def check_device_name(device: str) -> None:
    """Refuse a device torch has no name for, before torch is imported (cuda:N is checked
    against the machine when the model loads)."""
    if device not in DEVICE_NAMES and not CUDA_DEVICE.match(device):
        raise InputError("--device", f"unknown device {device!r} (auto, cuda, cuda:N, cpu or mps)")


def check_settings_numbers(
    steps: int,
    guidance: float,
    size: int | None,
    batch: int,
    width: int | None = None,
    height: int | None = None,
) -> None:
    """Refuse values no pipeline can run, before any model is loaded."""
    if steps < 1:
        raise InputError("--steps", f"must be at least 1 (got {steps})")
    if guidance < 0:
        raise InputError("--guidance", f"must not be negative (got {guidance:g})")
    for option, pixels in (("--size", size), ("--width", width), ("--height", height)):
        if pixels is not None and (pixels < 8 or pixels % 8):
            raise InputError(option, f"must be a positive multiple of 8 (got {pixels})")
    if batch < 1:
        raise InputError("--batch", f"must be at least 1 (got {batch})")


def parse_seed_list(text: str) -> list[int]:
    """Seeds from `0,1,2` or ranges `0-9,20`; order kept, duplicates dropped."""
    seeds: list[int] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            if dash:
                start, stop = int(low), int(high)
                if stop < start:
                    raise ValueError
                seeds.extend(range(start, stop + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InputError("--seed-list", f"not a seed or range: {part!r}") from None
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise InputError("--seed-list", "names no seeds")
    if any(not 0 <= seed <= MAX_SEED for seed in seeds):
        raise InputError("--seed-list", "seeds must be between 0 and 2^63-1")
    if len(seeds) > MAX_SEEDS:
        raise InputError("--seed-list", f"more than {MAX_SEEDS} seeds")
    return seeds


def format_seed_list(seeds: list[int]) -> str:
    """The `--seed-list` text that parses back to `seeds` (runs of consecutive seeds as ranges)."""
    parts: list[str] = []
    start = previous = None
    for seed in [*seeds, None]:
        if start is not None and seed == previous + 1:  # type: ignore[operator]
            previous = seed
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seed
    return ",".join(parts)


def choose_seeds(count: int | None, seed_list: str | None, default_count: int = 4) -> list[int]:
    """`--seed-list` wins; else seeds 0..count-1 (Wen et al. use 4 generations a prompt)."""
    if seed_list:
        return parse_seed_list(seed_list)
    count = default_count if count is None else count
    if not 1 <= count <= MAX_SEEDS:
        raise InputError("--seeds", f"must be between 1 and {MAX_SEEDS} (got {count})")
    return list(range(count))


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based): every `count`-th prompt starting at `index`."""

    index: int
    count: int

    def select(self, items: list[Any]) -> list[Any]:
        return items[self.index :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` with 0 <= K < N, as a Slurm array index (0-based) over N tasks."""
    index_text, slash, count_text = text.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise InputError("--shard", f"expected K/N such as 0/4 (got {text!r})") from None
    if not slash or count < 1 or not 0 <= index < count:
        raise InputError("--shard", f"need 0 <= K < N in K/N (got {text!r})")
    return Shard(index, count)


@dataclass(frozen=True)
class TriageCost:
    """Denoiser work of a triaged run against generating every grid in full.

    Counted in UNet evaluations: one per image per denoising step, and two under
    classifier-free guidance (the conditional and the unconditional half of the batch).
    """

    prompts: int
    kept: int
    seeds: int
    steps: int
    triage_steps: int
    cfg_factor: int = 2

    @property
    def skipped(self) -> int:
        return self.prompts - self.kept

    @property
    def without_triage(self) -> int:
        return self.prompts * self.seeds * self.steps * self.cfg_factor

    @property
    def with_triage(self) -> int:
        triage = self.prompts * self.seeds * min(self.triage_steps, self.steps)
        return (triage + self.kept * self.seeds * self.steps) * self.cfg_factor

    @property
    def saved(self) -> int:
        return self.without_triage - self.with_triage

    @property
    def saved_share(self) -> float:
        return self.saved / self.without_triage if self.without_triage else 0.0

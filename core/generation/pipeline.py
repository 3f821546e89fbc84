"""Sample seed grids from a loaded diffusers pipeline with the Wen et al. signal.

torch and diffusers are imported inside the functions that use them, so importing this
module (and the CLI that registers `memgrid generate`) stays cheap.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.generation.settings import GenerationSettings, scheduler_config_digest
from memgrid.core.images import png_bytes

SEED_GENERATOR = "torch.Generator('cpu').manual_seed(seed), one per seed"


@dataclass
class LoadedModel:
    """A pipeline ready to sample, with what identifies it for provenance."""

    pipeline: Any
    name: str
    device: str
    dtype: str
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def scheduler_name(self) -> str:
        return type(self.pipeline.scheduler).__name__

    @property
    def native_size(self) -> int:
        """The pixel size the model was trained at (512 for SD 1.x, 1024 for SDXL)."""
        pipeline = self.pipeline
        latent = getattr(pipeline, "default_sample_size", None)
        if latent is None:
            denoiser_config = getattr(denoiser(pipeline), "config", None)
            latent = getattr(denoiser_config, "sample_size", None)
        scale = getattr(pipeline, "vae_scale_factor", 8)
        return int(latent * scale) if isinstance(latent, int) else 512


@dataclass(frozen=True)
class SeedImage:
    """One seed's image as PNG bytes."""

    seed: int
    png: bytes
    width: int
    height: int


@dataclass
class SampledGrid:
    """Images of one prompt's seeds and the signal recorded while sampling them."""

    images: list[SeedImage]
    norms: dict[int, list[float]]
    seconds: float


class _EnoughSteps(Exception):
    """Raised from the denoiser hook to end a triage pass after its first steps."""


class _GuidanceNormRecorder:
    """Forward hook on the denoiser: ||eps(x_t, c) - eps(x_t, {})|| per seed per call.

    The pipeline runs the unconditional and conditional halves as one batch
    (torch.cat([negative, prompt])), so the hook reads both from the output it already
    computed: no extra UNet call, and nothing in the sampling changes.
    """

    def __init__(self, batch_size: int, stop_after: int | None = None) -> None:
        self.batch_size = batch_size
        self.stop_after = stop_after
        # Kept on the device until the batch ends: reading each step back would stall the GPU.
        self.per_call: list[Any] = []

    def __call__(self, module: Any, args: Any, output: Any) -> None:
        sample = (
            output[0] if isinstance(output, tuple | list) else getattr(output, "sample", output)
        )
        if sample.shape[0] != 2 * self.batch_size:
            return  # no classifier-free guidance in this call: nothing to measure
        unconditional, conditional = sample.detach().float().chunk(2)
        self.per_call.append((conditional - unconditional).flatten(1).norm(dim=1))
        if self.stop_after is not None and len(self.per_call) >= self.stop_after:
            raise _EnoughSteps

    def per_seed(self, seeds: Sequence[int]) -> dict[int, list[float]]:
        if not self.per_call:
            return {}
        import torch

        by_seed = torch.stack(self.per_call, dim=1).cpu().tolist()  # (seeds, calls)
        return {seed: by_seed[index] for index, seed in enumerate(seeds)}


# ---- sampling ----------------------------------------------------------------------------------


def resolve_settings(
    loaded: LoadedModel,
    *,
    steps: int,
    guidance: float,
    size: int | None = None,
    negative_prompt: str = "",
    width: int | None = None,
    height: int | None = None,
) -> GenerationSettings:
    """Settings with every default filled in from the loaded model, as stored with a grid.

    `width`/`height` win over `size` (a square), which wins over the model's native size.
    """
    side = size or loaded.native_size
    return GenerationSettings(
        steps=steps,
        guidance=guidance,
        width=width or side,
        height=height or side,
        scheduler=loaded.scheduler_name,
        dtype=loaded.dtype,
        negative_prompt=negative_prompt,
        scheduler_config=scheduler_config_digest(dict(loaded.pipeline.scheduler.config)),
    )


def _generators(seeds: Sequence[int]) -> list[Any]:
    # CPU generators give the same starting noise on every device (diffusers moves it).
    import torch

    return [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]


def _run(
    loaded: LoadedModel,
    prompt: str,
    seeds: Sequence[int],
    settings: GenerationSettings,
    recorder: _GuidanceNormRecorder | None,
    output_type: str,
) -> Any:
    import torch

    model = denoiser(loaded.pipeline)
    handle = model.register_forward_hook(recorder) if recorder else None
    count = len(seeds)
    try:
        with torch.inference_mode():
            return loaded.pipeline(
                prompt=[prompt] * count,
                negative_prompt=[settings.negative_prompt] * count
                if settings.negative_prompt
                else None,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=settings.width,
                height=settings.height,
                generator=_generators(seeds),
                output_type=output_type,
            )
    finally:
        if handle is not None:
            handle.remove()


def sample_grid(
    loaded: LoadedModel,
    prompt: str,
    seeds: Sequence[int],
    settings: GenerationSettings,
    batch_size: int,
    record_signal: bool = True,
) -> SampledGrid:
    """Sample every seed in batches of `batch_size`, each seed with its own generator.

    `record_signal=False` samples without the hook (the benchmark's baseline).
    """
    started = time.perf_counter()
    images: list[SeedImage] = []
    norms: dict[int, list[float]] = {}
    for start in range(0, len(seeds), batch_size):
        batch = list(seeds[start : start + batch_size])
        recorder = _GuidanceNormRecorder(len(batch)) if record_signal else None
        output = _run(loaded, prompt, batch, settings, recorder, output_type="pil")
        for seed, image in zip(batch, output.images, strict=True):
            images.append(SeedImage(seed, png_bytes(image), image.width, image.height))
        if recorder is not None:
            norms.update(recorder.per_seed(batch))
    synchronize(loaded.device)
    return SampledGrid(images=images, norms=norms, seconds=time.perf_counter() - started)


def triage_norms(
    loaded: LoadedModel,
    prompt: str,
    seeds: Sequence[int],
    settings: GenerationSettings,
    triage_steps: int,
) -> dict[int, list[float]]:
    """The signal over the first `triage_steps` denoiser calls of the full schedule.

    All seeds go in one batch and sampling stops after those calls (no VAE decode), so the
    values equal the first steps of the full grid's signal.
    """
    if settings.guidance <= 1:
        raise InputError("--triage-steps", "needs classifier-free guidance (--guidance above 1)")
    recorder = _GuidanceNormRecorder(len(seeds), stop_after=triage_steps)
    with contextlib.suppress(_EnoughSteps):
        _run(loaded, prompt, seeds, settings, recorder, output_type="latent")
    return recorder.per_seed(seeds)


def denoiser(pipeline: Any) -> Any:
    """The UNet (or a DiT's transformer): what the signal's hook observes and --compile compiles."""
    model = getattr(pipeline, "unet", None)
    if model is None:  # not `or`: a compiled module refuses truth testing
        model = getattr(pipeline, "transformer", None)
    if model is None:
        raise UnavailableError(f"{type(pipeline).__name__}: no unet or transformer to observe")
    return model


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ---- provenance --------------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    import diffusers
    import torch
    import transformers

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    if torch.version.cuda:
        versions["cuda"] = str(torch.version.cuda)
    return versions


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(device))
    return platform.processor() or platform.machine()


def grid_provenance(
    loaded: LoadedModel,
    settings: GenerationSettings,
    seeds: Sequence[int],
    batch_size: int,
) -> dict[str, Any]:
    """Everything needed to regenerate or compare a grid: weights, sampler, libraries."""
    pipeline = loaded.pipeline
    attention = getattr(denoiser(pipeline), "attn_processors", {})
    return {
        **loaded.identity,
        "scheduler": loaded.scheduler_name,
        "scheduler_config": {k: v for k, v in dict(pipeline.scheduler.config).items()},
        # The settings' scheduler fields are the class name and a digest of the config above.
        **{k: v for k, v in settings.to_dict().items() if not k.startswith("scheduler")},
        "device": loaded.device,
        "device_name": device_name(loaded.device),
        "seeds": sorted(int(seed) for seed in seeds),
        "batch_size": batch_size,
        "seed_generator": SEED_GENERATOR,
        "safety_checker": "off",
        "attention": sorted({type(processor).__name__ for processor in attention.values()}),
        "versions": library_versions(),
    }

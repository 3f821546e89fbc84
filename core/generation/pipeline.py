"""Load a diffusers text-to-image pipeline and sample seed grids with the Wen et al. signal.

torch and diffusers are imported inside the functions that use them, so importing this
module (and the CLI that registers `memgrid generate`) stays cheap.
"""

from __future__ import annotations

import contextlib
import platform
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.generation.settings import GenerationSettings
from memgrid.core.generation.weights import model_identity
from memgrid.core.images import png_bytes

TORCH_DTYPE_NAMES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
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
            denoiser_config = getattr(_denoiser(pipeline), "config", None)
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


# ---- devices, dtypes, schedulers -------------------------------------------------------------


def resolve_device(requested: str = "auto") -> str:
    """`auto` picks cuda, then mps, then cpu; a named device must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UnavailableError("--device cuda: torch sees no CUDA device on this machine")
    if requested not in ("cpu", "cuda", "mps"):
        raise InputError("--device", f"unknown device {requested!r} (auto, cuda, cpu or mps)")
    return requested


def resolve_dtype(requested: str, device: str) -> str:
    """`auto` is fp16 on an accelerator and fp32 on the CPU (fp16 there is slow and lossy)."""
    if requested == "auto":
        return "fp32" if device == "cpu" else "fp16"
    if requested not in TORCH_DTYPE_NAMES:
        raise InputError("--dtype", f"unknown dtype {requested!r} (auto, fp16, bf16 or fp32)")
    return requested


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, TORCH_DTYPE_NAMES[name])


def scheduler_class(name: str) -> Any:
    """A diffusers scheduler class by name, case-insensitive, `Scheduler` suffix optional."""
    import diffusers

    available = sorted(
        export for export in dir(diffusers) if export.endswith("Scheduler") and export[0].isupper()
    )
    wanted = name.lower().removesuffix("scheduler")
    for export in available:
        if export.lower().removesuffix("scheduler") == wanted:
            candidate = getattr(diffusers, export)
            if hasattr(candidate, "from_config"):
                return candidate
    examples = ", ".join(
        e for e in available if e.startswith(("DDIM", "Euler", "DPMSolverM", "PNDM"))
    )
    raise InputError("--scheduler", f"no diffusers scheduler named {name!r} (e.g. {examples})")


# ---- loading -----------------------------------------------------------------------------------


def model_folder(model: str) -> Path | None:
    """The local folder `model` names, or None for a hub id; bad local paths fail here."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(model, "is a file; give a diffusers model folder or a hub id")
        if not (path / "model_index.json").is_file():
            raise InputError(model, "not a diffusers model folder (no model_index.json)")
        return path.resolve()
    looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_like_path:
        raise InputError(model, "no such model folder (and not a hub id like org/name)")
    return None


def load_model(
    model: str, *, device: str = "auto", dtype: str = "auto", scheduler: str | None = None
) -> LoadedModel:
    """Load a text-to-image pipeline from a local folder or a hub id, safety checker off."""
    folder = model_folder(model)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    from diffusers import AutoPipelineForText2Image

    source = str(folder) if folder else model
    try:
        with _quiet_loading():
            config = AutoPipelineForText2Image.load_config(source)
            extra: dict[str, Any] = {}
            if "safety_checker" in config:
                extra = {"safety_checker": None, "requires_safety_checker": False}
            # `torch_dtype` is what diffusers before 0.36 accept; newer ones warn and take it.
            pipeline = AutoPipelineForText2Image.from_pretrained(
                source, torch_dtype=torch_dtype(dtype), **extra
            )
    except Exception as error:  # the hub and the loaders raise many types; all mean "cannot load"
        raise UnavailableError(
            f"{model}: cannot load the pipeline ({_first_line(error)})"
        ) from None
    identity = model_identity(model, folder)
    return prepare_model(pipeline, source, device, dtype, scheduler, identity)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence loaders' progress bars and advice while loading; memgrid reports its own."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [
        (library, library.get_verbosity(), library.is_progress_bar_enabled())
        for library in (diffusers_logging, transformers_logging)
    ]
    for library, _, _ in saved:
        library.set_verbosity(library.ERROR)
        library.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        for library, verbosity, progress in saved:
            library.set_verbosity(verbosity)
            if progress:
                library.enable_progress_bar()


def prepare_model(
    pipeline: Any,
    name: str,
    device: str,
    dtype: str,
    scheduler: str | None = None,
    identity: dict[str, Any] | None = None,
) -> LoadedModel:
    """Move a built pipeline to its device and dtype and swap its scheduler if asked."""
    if scheduler:
        pipeline.scheduler = scheduler_class(scheduler).from_config(pipeline.scheduler.config)
    pipeline = pipeline.to(device)
    if pipeline.dtype != torch_dtype(dtype):  # built in code (tests, benchmark), not loaded
        with _quiet_loading():
            pipeline = pipeline.to(torch_dtype(dtype))
    pipeline.set_progress_bar_config(disable=True)
    identity = dict(identity or {})
    identity.setdefault("model_id", name)
    identity["pipeline_class"] = type(pipeline).__name__
    identity["components"] = {
        key: type(value).__name__
        for key, value in pipeline.components.items()
        if value is not None and not isinstance(value, str | bool | int | float)
    }
    return LoadedModel(pipeline=pipeline, name=name, device=device, dtype=dtype, identity=identity)


# ---- sampling ----------------------------------------------------------------------------------


def resolve_settings(
    loaded: LoadedModel,
    *,
    steps: int,
    guidance: float,
    size: int | None,
    negative_prompt: str = "",
) -> GenerationSettings:
    """Settings with every default filled in from the loaded model, as stored with a grid."""
    side = size or loaded.native_size
    return GenerationSettings(
        steps=steps,
        guidance=guidance,
        width=side,
        height=side,
        scheduler=loaded.scheduler_name,
        dtype=loaded.dtype,
        negative_prompt=negative_prompt,
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

    denoiser = _denoiser(loaded.pipeline)
    handle = denoiser.register_forward_hook(recorder) if recorder else None
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
    _synchronize(loaded.device)
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


def _denoiser(pipeline: Any) -> Any:
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    if denoiser is None:
        raise UnavailableError(f"{type(pipeline).__name__}: no unet or transformer to observe")
    return denoiser


def _synchronize(device: str) -> None:
    if device == "cuda":
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
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name())
    return platform.processor() or platform.machine()


def grid_provenance(
    loaded: LoadedModel,
    settings: GenerationSettings,
    seeds: Sequence[int],
    batch_size: int,
) -> dict[str, Any]:
    """Everything needed to regenerate or compare a grid: weights, sampler, libraries."""
    pipeline = loaded.pipeline
    attention = getattr(_denoiser(pipeline), "attn_processors", {})
    return {
        **loaded.identity,
        "scheduler": loaded.scheduler_name,
        "scheduler_config": {k: v for k, v in dict(pipeline.scheduler.config).items()},
        **{k: v for k, v in settings.to_dict().items() if k != "scheduler"},
        "device": loaded.device,
        "device_name": device_name(loaded.device),
        "seeds": sorted(int(seed) for seed in seeds),
        "batch_size": batch_size,
        "seed_generator": SEED_GENERATOR,
        "safety_checker": "off",
        "attention": sorted({type(processor).__name__ for processor in attention.values()}),
        "versions": library_versions(),
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:200]

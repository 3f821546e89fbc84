"""Find a model (a local folder or a hub id), load its pipeline, and make it fast.

The model is resolved to a folder first (a hub id through the cache or a download, see
core/hub.py), so a model that cannot be had fails in seconds, before a project is created;
torch and diffusers load only after that.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.generation.pipeline import LoadedModel, denoiser
from memgrid.core.generation.settings import CUDA_DEVICE, check_device_name
from memgrid.core.generation.weights import folder_identity
from memgrid.core.hub import resolve_snapshot

TORCH_DTYPE_NAMES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are, and what it was called and pinned to (provenance)."""

    folder: Path
    model_id: str
    revision: str | None = None  # the hub revision asked for (branch, tag or commit)
    commit: str | None = None  # the hub commit it resolved to

    def provenance(self) -> dict[str, Any]:
        extra = {"revision": self.commit, "requested_revision": self.revision}
        return {k: v for k, v in extra.items() if v is not None}


# ---- devices, dtypes, schedulers -------------------------------------------------------------


def resolve_device(requested: str = "auto") -> str:
    """`auto` picks cuda, then mps, then cpu; a named device (cuda:N too) must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    check_device_name(requested)
    index = CUDA_DEVICE.match(requested)
    if requested == "cuda" or index:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UnavailableError(f"--device {requested}: torch sees no CUDA device here")
        if index and int(index.group(1)) >= count:
            raise UnavailableError(
                f"--device {requested}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
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


# ---- finding the model ---------------------------------------------------------------------------


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


def find_model(model: str, revision: str | None = None) -> ModelSource:
    """A local folder as it is; a hub id from the cache, downloaded into it when online."""
    folder = model_folder(model)
    if folder is not None:
        if revision:
            raise InputError("--revision", "pins a hub id's commit; a local folder has none")
        return ModelSource(folder=folder, model_id=model)
    pin = f" --revision {revision}" if revision else ""
    snapshot = resolve_snapshot(
        model,
        revision,
        download=_download_pipeline,
        marker_file="model_index.json",
        download_command=f"hf download {model}{pin}",
        alternative="pass a local model folder with --model PATH",
    )
    return ModelSource(snapshot.folder, model, revision, snapshot.commit)


def _download_pipeline(repo: str, commit: str, cache_dir: str) -> str:
    """The files the pipeline needs at `commit`, chosen by diffusers (no other variants)."""
    from diffusers import DiffusionPipeline

    try:
        with quiet_loading():
            return str(DiffusionPipeline.download(repo, revision=commit, cache_dir=cache_dir))
    except Exception as error:  # the hub and diffusers raise many types; all mean "no files"
        raise UnavailableError(f"{repo}@{commit}: download failed ({_first_line(error)})") from None


# ---- loading -----------------------------------------------------------------------------------


def load_model(
    model: str | ModelSource,
    *,
    device: str = "auto",
    dtype: str = "auto",
    scheduler: str | None = None,
    revision: str | None = None,
    compile_unet: bool = False,
    compile_backend: str = "inductor",
) -> LoadedModel:
    """Load a text-to-image pipeline from a local folder or a hub id, safety checker off."""
    source = model if isinstance(model, ModelSource) else find_model(model, revision)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    from diffusers import AutoPipelineForText2Image

    try:
        with quiet_loading():
            config = AutoPipelineForText2Image.load_config(str(source.folder))
            extra: dict[str, Any] = {}
            if "safety_checker" in config:
                extra = {"safety_checker": None, "requires_safety_checker": False}
            # `torch_dtype` is what diffusers before 0.36 accept; newer ones warn and take it.
            pipeline = AutoPipelineForText2Image.from_pretrained(
                str(source.folder), torch_dtype=torch_dtype(dtype), **extra
            )
    except Exception as error:  # the loaders raise many types; all mean "cannot load"
        raise UnavailableError(
            f"{source.model_id}: cannot load the pipeline ({_first_line(error)})"
        ) from None
    identity = {**folder_identity(source.folder, source.model_id), **source.provenance()}
    return prepare_model(
        pipeline, source.model_id, device, dtype, scheduler, identity, compile_unet, compile_backend
    )


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
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
    compile_unet: bool = False,
    compile_backend: str = "inductor",
) -> LoadedModel:
    """Move a built pipeline to its device and dtype, swap its scheduler, compile if asked."""
    if scheduler:
        pipeline.scheduler = scheduler_class(scheduler).from_config(pipeline.scheduler.config)
    pipeline = pipeline.to(device)
    if pipeline.dtype != torch_dtype(dtype):  # built in code (tests, benchmark), not loaded
        with quiet_loading():
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
    if compile_unet:
        identity["speedups"] = speed_up(pipeline, compile_backend)
    return LoadedModel(pipeline=pipeline, name=name, device=device, dtype=dtype, identity=identity)


def speed_up(pipeline: Any, backend: str = "inductor") -> list[str]:
    """Fused QKV projections (where diffusers offers them), channels_last, compiled UNet.

    The Wen signal's forward hook stays outside the compiled graph (it is registered on the
    compiled wrapper), so triage can still stop a pass after its first steps. Fusing and
    compiling change floating-point rounding, not the sampler: pixels agree with an
    uncompiled run to about one level, like a change of batch (provenance records it).
    """
    import torch

    applied = []
    fuse = getattr(pipeline, "fuse_qkv_projections", None)
    if callable(fuse):
        with contextlib.suppress(Exception):  # not every attention processor can be fused
            fuse()
            applied.append("fused_qkv")
    model = denoiser(pipeline)
    model.to(memory_format=torch.channels_last)
    vae = getattr(pipeline, "vae", None)
    if vae is not None:
        vae.to(memory_format=torch.channels_last)
    applied.append("channels_last")
    compiled = torch.compile(model, backend=backend)
    if getattr(pipeline, "unet", None) is not None:
        pipeline.unet = compiled
    else:
        pipeline.transformer = compiled
    applied.append(f"torch.compile({backend})")
    return applied


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:200]

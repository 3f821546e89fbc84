"""Benchmark `memgrid generate` against a plain diffusers pipeline call, in one run: images
per second at the same batch size, dtype and scheduler, with and without --compile; the cost
of recording the Wen et al. signal; and the triage pass's time per prompt.

    python bench/generate.py --model stable-diffusion-v1-5/stable-diffusion-v1-5 --device cuda
    python bench/generate.py --device cuda --compile    # SD-1.5-shaped, random weights
    python bench/generate.py --tiny --device cpu         # the tests' tiny pipeline

With no --model it builds a full-size SD-1.5-shaped pipeline with random weights (the
SD 1.5 UNet, VAE and ViT-L/14 text encoder shapes), so speed can be measured without a
download; the images are noise, the timings are those of SD 1.5.

"diffusers" is `pipe(prompt, num_images_per_prompt=B, generator=[one per seed])` on an
untouched copy of the same pipeline, returning PIL images. "memgrid" is `sample_grid`, the
loop `memgrid generate` runs: the same call plus the signal's hook and PNG encoding of every
image. "memgrid --compile" adds fused QKV projections, channels_last and torch.compile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from memgrid.core.generation import loading
from memgrid.core.generation import pipeline as generation
from memgrid.core.generation.synthetic import build_random_pipeline

PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "the Mona Lisa by Leonardo da Vinci",
    "a red double-decker bus on a London street at night",
    "portrait of a golden retriever wearing sunglasses, studio lighting",
    "an oil painting of a lighthouse in a storm",
    "a bowl of ramen, top view, 35mm photo",
    "a watercolor map of an imaginary island",
    "a cyberpunk city skyline with neon signs",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="hub id or local folder (default: random SD-1.5 shape)")
    parser.add_argument("--tiny", action="store_true", help="the tiny random pipeline (CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp16", "bf16", "fp32"])
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,4,16)")
    parser.add_argument("--images", type=int, default=16, help="images timed per batch size")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--size", type=int, default=None, help="default: the model's")
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--compile", action="store_true", help="also time memgrid --compile")
    parser.add_argument("--triage-prompts", type=int, default=8)
    parser.add_argument("--triage-seeds", type=int, default=4)
    parser.add_argument("--triage-steps", type=int, default=1)
    parser.add_argument("--overhead-images", type=int, default=4)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[Any, Any, str, float]:
    """memgrid's loaded model and an untouched copy of the same pipeline for plain diffusers."""
    started = time.perf_counter()
    if args.model:
        memgrid_model = loading.load_model(
            args.model, device=args.device, dtype=args.dtype, scheduler=args.scheduler
        )
        source = loading.find_model(args.model)
        plain = loading.load_model(
            source, device=memgrid_model.device, dtype=memgrid_model.dtype, scheduler=args.scheduler
        ).pipeline
        description = args.model
    else:
        shape = "tiny" if args.tiny else "sd15"
        device = loading.resolve_device(args.device)
        dtype = loading.resolve_dtype(args.dtype, device)
        memgrid_model = loading.prepare_model(
            build_random_pipeline(shape, device=device),
            f"random-{shape}",
            device,
            dtype,
            args.scheduler,
        )
        plain = loading.prepare_model(
            build_random_pipeline(shape, device=device),
            f"random-{shape}",
            device,
            dtype,
            args.scheduler,
        ).pipeline
        description = f"random weights, {'tiny' if args.tiny else 'SD-1.5'} shape"
    generation.synchronize(memgrid_model.device)
    return memgrid_model, plain, description, time.perf_counter() - started


def parameter_count(module: Any) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


class Memory:
    """Peak GPU memory of one measurement (CUDA only; None elsewhere)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        if not self.cuda:
            return None
        import torch

        return torch.cuda.max_memory_allocated() / 2**30


def plain_diffusers_seconds(pipe: Any, seeds: list[int], batch: int, settings: Any) -> float:
    """A plain pipeline call per batch, with the same per-seed generators as memgrid."""
    import torch

    started = time.perf_counter()
    for start in range(0, len(seeds), batch):
        chunk = seeds[start : start + batch]
        with torch.inference_mode():
            pipe(
                PROMPTS[0],
                num_images_per_prompt=len(chunk),
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                width=settings.width,
                height=settings.height,
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in chunk],
            )
    generation.synchronize(str(pipe.device))
    return time.perf_counter() - started


def time_variant(name: str, run: Any, batch: int, count: int, memory: Memory) -> dict[str, Any]:
    """Warm up on one batch of 2 steps (compiles, allocates), then time `count` images."""
    run(batch, count, warm=True)
    memory.reset()
    try:
        seconds = run(batch, count, warm=False)
    except RuntimeError as error:
        if "out of memory" not in str(error).lower():
            raise
        memory.reset()
        return {"variant": name, "batch": batch, "images": count, "error": "out of memory"}
    row = {
        "variant": name,
        "batch": batch,
        "images": count,
        "seconds": seconds,
        "images_per_second": count / seconds,
        "peak_gib": memory.peak_gib(),
    }
    print(f"  {name:<18} batch {batch:>3}: {count / seconds:8.3f} images/s", flush=True)
    return row


def compare(memgrid_model: Any, plain: Any, settings: Any, args: argparse.Namespace) -> list[dict]:
    memory = Memory(memgrid_model.device)
    default_sizes = "1,4" if memgrid_model.device == "cpu" else "1,4,16"
    sizes = [int(b) for b in (args.batch_sizes or default_sizes).split(",")]
    warm_settings = generation.GenerationSettings(**{**settings.to_dict(), "steps": 2})

    def counted(batch: int) -> int:
        count = max(batch, args.images)
        return count + (-count % batch)  # whole batches only

    def run_plain(batch: int, count: int, warm: bool) -> float:
        chosen = warm_settings if warm else settings
        return plain_diffusers_seconds(plain, list(range(batch if warm else count)), batch, chosen)

    def run_memgrid(batch: int, count: int, warm: bool) -> float:
        chosen = warm_settings if warm else settings
        seeds = list(range(batch if warm else count))
        return generation.sample_grid(memgrid_model, PROMPTS[0], seeds, chosen, batch).seconds

    rows = []
    for batch in sizes:
        rows.append(time_variant("diffusers", run_plain, batch, counted(batch), memory))
        rows.append(time_variant("memgrid", run_memgrid, batch, counted(batch), memory))
    if args.compile:
        started = time.perf_counter()
        memgrid_model.identity["speedups"] = loading.speed_up(memgrid_model.pipeline)
        for batch in sizes:
            rows.append(
                time_variant("memgrid --compile", run_memgrid, batch, counted(batch), memory)
            )
        print(f"  (compiled and warmed up in {time.perf_counter() - started:.0f}s)", flush=True)
    return rows


def time_signal_overhead(loaded: Any, settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Batch 1, where a per-step cost would show most: with the hook against without it."""
    seeds = list(range(args.overhead_images))
    timings = {}
    for record in (False, True, False, True):  # interleaved, best of two each
        sampled = generation.sample_grid(
            loaded, PROMPTS[1], seeds, settings, 1, record_signal=record
        )
        timings[record] = min(timings.get(record, float("inf")), sampled.seconds)
    return {
        "images": len(seeds),
        "seconds_without": timings[False],
        "seconds_with": timings[True],
        "overhead": timings[True] / timings[False] - 1,
    }


def time_triage(loaded: Any, settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.triage_seeds))
    prompts = (PROMPTS * (args.triage_prompts // len(PROMPTS) + 1))[: args.triage_prompts]
    generation.triage_norms(loaded, prompts[0], seeds, settings, args.triage_steps)  # warm-up
    generation.synchronize(loaded.device)
    started = time.perf_counter()
    for prompt in prompts:
        generation.triage_norms(loaded, prompt, seeds, settings, args.triage_steps)
    generation.synchronize(loaded.device)
    per_prompt = (time.perf_counter() - started) / len(prompts)
    full = generation.sample_grid(loaded, prompts[0], seeds, settings, len(seeds))
    return {
        "prompts": len(prompts),
        "seeds": len(seeds),
        "triage_steps": args.triage_steps,
        "seconds_per_prompt": per_prompt,
        "full_grid_seconds": full.seconds,
        "speedup": full.seconds / per_prompt,
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:>{width}}}" for width in widths)
    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line.format(*headers), rule, *(line.format(*row) for row in rows)])


def speed_of(rows: list[dict], variant: str, batch: int) -> float | None:
    for row in rows:
        if row["variant"] == variant and row["batch"] == batch and "error" not in row:
            return row["images_per_second"]
    return None


def report(results: dict[str, Any]) -> str:
    facts = results["setup"]
    lines = [
        f"memgrid generate vs plain diffusers - {facts['device_name']} "
        f"({facts['device']}, {facts['dtype']})",
        f"model: {facts['model']}; UNet {facts['unet_parameters'] / 1e6:.0f}M parameters; "
        f"loaded (two copies) in {facts['load_seconds']:.1f}s",
        f"{facts['steps']} steps, guidance {facts['guidance']:g}, {facts['size']}x{facts['size']}, "
        f"{facts['scheduler']}, attention {', '.join(facts['attention'])}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        f"host: {facts['cpu_threads']} torch CPU threads, load average {facts['load_average']:.1f} "
        f"at the start, {facts.get('load_average_end') or 0:.1f} at the end",
        "",
        "images/s (memgrid includes the Wen signal's hook and PNG encoding; diffusers returns PIL):",
    ]
    rows = results["comparison"]
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    batches = list(dict.fromkeys(row["batch"] for row in rows))
    body = []
    for batch in batches:
        plain = speed_of(rows, "diffusers", batch)
        cells = [str(batch)]
        for variant in variants:
            speed = speed_of(rows, variant, batch)
            cells.append("-" if speed is None else f"{speed:.3f}")
        for variant in variants[1:]:
            speed = speed_of(rows, variant, batch)
            cells.append("-" if speed is None or not plain else f"{speed / plain:.2f}x")
        body.append(cells)
    headers = ["batch", *variants, *(f"{v} / diffusers" for v in variants[1:])]
    lines.append(table(headers, body))
    overhead = results["signal_overhead"]
    lines += [
        "",
        f"Signal overhead at batch 1 ({overhead['images']} images): "
        f"{overhead['seconds_without']:.2f}s without the hook, {overhead['seconds_with']:.2f}s "
        f"with it ({overhead['overhead']:+.1%})",
    ]
    triage = results["triage"]
    lines += [
        "",
        f"Triage ({triage['triage_steps']} step(s), {triage['seeds']} seeds in one batch, "
        f"{triage['prompts']} prompts): {triage['seconds_per_prompt'] * 1000:.1f} ms per prompt; "
        f"a full {triage['seeds']}-seed grid takes {triage['full_grid_seconds']:.2f}s "
        f"({triage['speedup']:.0f}x the triage)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*invalid value encountered.*")  # noise images
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    memgrid_model, plain, description, load_seconds = load(args)
    settings = generation.resolve_settings(
        memgrid_model, steps=args.steps, guidance=args.guidance, size=args.size
    )
    provenance = generation.grid_provenance(memgrid_model, settings, [0], 1)
    results: dict[str, Any] = {
        "setup": {
            "model": description,
            "device": memgrid_model.device,
            "device_name": provenance["device_name"],
            "dtype": memgrid_model.dtype,
            "unet_parameters": parameter_count(generation.denoiser(memgrid_model.pipeline)),
            "load_seconds": load_seconds,
            "steps": settings.steps,
            "guidance": settings.guidance,
            "size": settings.width,
            "scheduler": settings.scheduler,
            "attention": provenance["attention"],
            "versions": provenance["versions"],
            "cpu_threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
    }
    print(f"timing {description} on {memgrid_model.device} ({memgrid_model.dtype})", flush=True)
    results["signal_overhead"] = time_signal_overhead(memgrid_model, settings, args)
    results["triage"] = time_triage(memgrid_model, settings, args)
    results["comparison"] = compare(memgrid_model, plain, settings, args)
    results["setup"]["speedups"] = memgrid_model.identity.get("speedups", [])
    # The machine's load when the timings ended: on a shared host it says how far to trust them.
    results["setup"]["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark `memgrid generate`: images per second and peak GPU memory per batch size,
the cost of recording the Wen et al. signal, and the triage pass's time per prompt.

    python bench/generate.py --model runwayml/stable-diffusion-v1-5 --device cuda
    python bench/generate.py --device cuda          # SD-1.5-shaped, random weights
    python bench/generate.py --tiny --device cpu    # the tests' tiny pipeline

With no --model it builds a full-size SD-1.5-shaped pipeline with random weights (the
SD 1.5 UNet, VAE and ViT-L/14 text encoder shapes), so speed can be measured without a
download; the images are noise, the timings are those of SD 1.5. Timings go through the
same `sample_grid` / `triage_norms` code as `memgrid generate`, PNG encoding included.
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
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,4,8,16)")
    parser.add_argument("--images", type=int, default=16, help="images timed per batch size")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--size", type=int, default=None, help="default: the model's")
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--triage-prompts", type=int, default=8)
    parser.add_argument("--triage-seeds", type=int, default=4)
    parser.add_argument("--triage-steps", type=int, default=1)
    parser.add_argument("--overhead-images", type=int, default=4)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[Any, str, float]:
    started = time.perf_counter()
    if args.model:
        loaded = generation.load_model(
            args.model, device=args.device, dtype=args.dtype, scheduler=args.scheduler
        )
        description = args.model
    else:
        shape = "tiny" if args.tiny else "sd15"
        device = generation.resolve_device(args.device)
        dtype = generation.resolve_dtype(args.dtype, device)
        pipeline = build_random_pipeline(shape, device=device)
        loaded = generation.prepare_model(
            pipeline, f"random-{shape}", device, dtype, args.scheduler
        )
        description = f"random weights, {'tiny' if args.tiny else 'SD-1.5'} shape"
    generation._synchronize(loaded.device)
    return loaded, description, time.perf_counter() - started


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def parameter_count(module: Any) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


class Memory:
    """Peak GPU memory of one measurement (CUDA only; None elsewhere)."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"

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


def out_of_memory(error: BaseException) -> bool:
    return "out of memory" in str(error).lower()


def time_batches(loaded: Any, settings: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    memory = Memory(loaded.device)
    default_sizes = "1,4" if loaded.device == "cpu" else "1,4,8,16"
    rows = []
    for batch in [int(b) for b in (args.batch_sizes or default_sizes).split(",")]:
        count = max(batch, args.images)
        count += -count % batch  # whole batches only
        seeds = list(range(count))
        try:
            warm = generation.GenerationSettings(**{**settings.to_dict(), "steps": 2})
            generation.sample_grid(loaded, PROMPTS[0], seeds[:batch], warm, batch)
            memory.reset()
            sampled = generation.sample_grid(loaded, PROMPTS[0], seeds, settings, batch)
        except RuntimeError as error:
            if not out_of_memory(error):
                raise
            rows.append({"batch": batch, "images": count, "error": "out of memory"})
            memory.reset()
            continue
        rows.append(
            {
                "batch": batch,
                "images": count,
                "seconds": sampled.seconds,
                "images_per_second": count / sampled.seconds,
                "seconds_per_image": sampled.seconds / count,
                "peak_gib": memory.peak_gib(),
            }
        )
        print(f"  batch {batch:>3}: {count / sampled.seconds:8.3f} images/s", flush=True)
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
    generation._synchronize(loaded.device)
    started = time.perf_counter()
    values = []
    for prompt in prompts:
        norms = generation.triage_norms(loaded, prompt, seeds, settings, args.triage_steps)
        values.append(sum(n[0] for n in norms.values()) / len(norms))
    generation._synchronize(loaded.device)
    per_prompt = (time.perf_counter() - started) / len(prompts)
    full = generation.sample_grid(loaded, prompts[0], seeds, settings, len(seeds))
    return {
        "prompts": len(prompts),
        "seeds": len(seeds),
        "triage_steps": args.triage_steps,
        "seconds_per_prompt": per_prompt,
        "full_grid_seconds": full.seconds,
        "speedup": full.seconds / per_prompt,
        "first_step_signal": values,
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = "  ".join(f"{{:>{width}}}" for width in widths)
    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line.format(*headers), rule, *(line.format(*row) for row in rows)])


def report(results: dict[str, Any]) -> str:
    facts = results["setup"]
    lines = [
        f"memgrid generate benchmark - {facts['device_name']} ({facts['device']}, {facts['dtype']})",
        f"model: {facts['model']}; UNet {facts['unet_parameters'] / 1e6:.0f}M parameters; "
        f"loaded in {facts['load_seconds']:.1f}s",
        f"{facts['steps']} steps, guidance {facts['guidance']:g}, {facts['size']}x{facts['size']}, "
        f"{facts['scheduler']}, attention {', '.join(facts['attention'])}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        f"host: {facts['cpu_threads']} torch CPU threads, load average {facts['load_average']:.1f}",
        "",
        "Full grids (images/s include VAE decode and PNG encoding; Wen signal recorded):",
    ]
    rows = []
    for row in results["batches"]:
        if "error" in row:
            rows.append([str(row["batch"]), str(row["images"]), row["error"], "", "", ""])
            continue
        peak = "-" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}"
        rows.append(
            [
                str(row["batch"]),
                str(row["images"]),
                f"{row['seconds']:.2f}",
                f"{row['images_per_second']:.3f}",
                f"{row['seconds_per_image']:.3f}",
                peak,
            ]
        )
    lines.append(table(["batch", "images", "seconds", "images/s", "s/image", "peak GiB"], rows))
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
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    loaded, description, load_seconds = load(args)
    settings = generation.resolve_settings(
        loaded, steps=args.steps, guidance=args.guidance, size=args.size
    )
    unet = loaded.pipeline.unet
    provenance = generation.grid_provenance(loaded, settings, [0], 1)
    results: dict[str, Any] = {
        "setup": {
            "model": description,
            "device": loaded.device,
            "device_name": provenance["device_name"],
            "dtype": loaded.dtype,
            "unet_parameters": parameter_count(unet),
            "load_seconds": load_seconds,
            "steps": settings.steps,
            "guidance": settings.guidance,
            "size": settings.width,
            "scheduler": settings.scheduler,
            "attention": provenance["attention"],
            "versions": provenance["versions"],
            "cpu_threads": torch_threads(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
    }
    print(f"timing {description} on {loaded.device} ({loaded.dtype})", flush=True)
    results["batches"] = time_batches(loaded, settings, args)
    results["signal_overhead"] = time_signal_overhead(loaded, settings, args)
    results["triage"] = time_triage(loaded, settings, args)
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Images and sources for the reference tests: textured stand-ins drawn by core.demo."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from memgrid.core.demo import photo, scene, with_noise


def training_image(key: str) -> Image.Image:
    return photo(key)


def copied_seeds(key: str, seeds: int = 4) -> list[Image.Image]:
    """Seeds that copy the training image `key` (re-encoded: a little noise each)."""
    return [with_noise(photo(key), (key, "seed", seed)) for seed in range(seeds)]


def varied_seeds(key: str, seeds: int = 4) -> list[Image.Image]:
    return [scene((key, "varied", seed)) for seed in range(seeds)]


def write_grid(root: Path, prompt: str, images: list[Image.Image]) -> Path:
    root.mkdir(parents=True)
    (root / "prompt.txt").write_text(prompt, encoding="utf-8")
    for seed, image in enumerate(images):
        image.save(root / f"{seed:04d}.png")
    return root


def write_files_layout(root: Path, references: dict[str, tuple[str, str]]) -> Path:
    """img2dataset's `files` layout: 00000/KEY.jpg with KEY.json and KEY.txt beside it.

    `references` maps a laion key to (caption, training image key).
    """
    shard = root / "00000"
    shard.mkdir(parents=True)
    for index, (laion_key, (caption, image_key)) in enumerate(references.items()):
        name = f"{index:09d}"
        training_image(image_key).save(shard / f"{name}.png")
        (shard / f"{name}.txt").write_text(caption, encoding="utf-8")
        meta = {"key": name, "laion_key": laion_key, "caption": caption, "url": f"http://x/{name}"}
        (shard / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    (root / "00000_stats.json").write_text("{}", encoding="utf-8")
    return root

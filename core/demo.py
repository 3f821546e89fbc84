"""The offline demo set: procedurally drawn seed grids that stand in for real generations.

Every image here is synthetic (drawn with Pillow from a seeded random generator); none
comes from a model. Each group stands for one case of the taxonomy so the workflow can be
shown end to end without weights. No detector threshold is tuned on these images.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from memgrid.core.records import Entity

DEMO_SIZE = 256
DEMO_SEEDS = tuple(range(8))
DEMO_MODEL = "memgrid-demo (synthetic)"


@dataclass(frozen=True)
class DemoGrid:
    prompt: str
    group: str  # which case of the taxonomy this grid stands for
    description: str
    draw: Callable[[int], Image.Image]  # seed -> image


DEMO_GROUPS = {
    "explicit-copy": "the prompt names a work; the same image comes back in every seed",
    "implicit-copy": "the prompt describes a work without naming it; the same image every seed",
    "unintended-copy": "a generic prompt; one training photo comes back verbatim every seed",
    "unintended-template": "varied scenes with a fixed watermark or logo nobody asked for",
    "explicit-template": "the prompt names a brand; its logo is fixed, the scene varies",
    "varied": "nothing recurs: the grid varies across seeds as it should",
    "borderline": "small shifts, partial repeats, a tiny fixed patch: the hard cases",
}

DEMO_ENTITIES = (
    Entity("The Lighthouse at Dusk", "work", ("lighthouse at dusk",)),
    Entity("Aldo Vessel", "person", ()),
    Entity("Starfall Over Kestrel Bay", "work", ("kestrel bay painting",)),
    Entity("Mira Olenko", "person", ()),
    Entity("Vantro Motors", "brand", ("vantro",)),
    Entity("Zesta", "brand", ("zesta soda",)),
    Entity("Orbital Sunrise", "work", ()),
)


# ---- drawing primitives ---------------------------------------------------------------


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


def _color(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0.0, 1.0, DEMO_SIZE)[:, None, None]
    rows = (1 - t) * np.array(top) + t * np.array(bottom)
    pixels = np.broadcast_to(rows, (DEMO_SIZE, DEMO_SIZE, 3)).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def scene(key: object) -> Image.Image:
    """A random landscape-like scene: sky, sun, hills, shapes; `key` fixes it."""
    rng = _rng("scene", key)
    image = _gradient(_color(rng, 40, 230), _color(rng, 20, 200))
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, sun_r = rng.randint(20, 236), rng.randint(15, 120), rng.randint(10, 35)
    draw.ellipse(
        [sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r], fill=_color(rng, 150)
    )
    for layer in range(rng.randint(2, 4)):
        base = 130 + layer * 30 + rng.randint(-15, 15)
        points = [(0, DEMO_SIZE)]
        for x in range(0, DEMO_SIZE + 32, 32):
            points.append((x, base + rng.randint(-40, 25)))
        points.append((DEMO_SIZE, DEMO_SIZE))
        draw.polygon(points, fill=_color(rng, 10, 180))
    for _ in range(rng.randint(4, 12)):
        x, y, r = rng.randint(0, 255), rng.randint(60, 255), rng.randint(4, 22)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        fill = _color(rng)
        if shape == "ellipse":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif shape == "rectangle":
            draw.rectangle([x - r, y - r, x + r, y + r // 2], fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2)))


def artwork(key: object) -> Image.Image:
    """A fixed, structured 'famous work': concentric forms, bands and a figure."""
    rng = _rng("artwork", key)
    image = _gradient(_color(rng, 60, 220), _color(rng, 0, 120))
    draw = ImageDraw.Draw(image)
    cx, cy = rng.randint(80, 176), rng.randint(70, 150)
    for ring in range(8, 0, -1):
        r = ring * rng.randint(9, 14)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=_color(rng), width=3)
    for band in range(5):
        y = 170 + band * 17
        draw.rectangle([0, y, DEMO_SIZE, y + 9], fill=_color(rng, 30, 220))
    tower_x = rng.randint(30, 220)
    draw.polygon(
        [(tower_x - 12, 250), (tower_x - 6, 120), (tower_x + 6, 120), (tower_x + 12, 250)],
        fill=_color(rng, 180),
    )
    for _ in range(30):
        angle = rng.uniform(0, 2 * math.pi)
        length = rng.randint(20, 120)
        draw.line(
            [(cx, cy), (cx + length * math.cos(angle), cy + length * math.sin(angle))],
            fill=_color(rng, 120),
            width=2,
        )
    return image


def photo(key: object) -> Image.Image:
    """A fixed 'training photo': a room or a portrait-like composition."""
    rng = _rng("photo", key)
    image = Image.new("RGB", (DEMO_SIZE, DEMO_SIZE), _color(rng, 120, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 170, DEMO_SIZE, DEMO_SIZE], fill=_color(rng, 60, 160))
    draw.rectangle([rng.randint(20, 60), 60, rng.randint(100, 140), 140], fill=_color(rng, 180))
    draw.rounded_rectangle([40, 140, 220, 200], radius=18, fill=_color(rng, 40, 200))
    head_x = rng.randint(90, 170)
    draw.ellipse([head_x - 28, 50, head_x + 28, 115], fill=_color(rng, 150, 240))
    draw.rectangle([head_x - 40, 115, head_x + 40, 210], fill=_color(rng, 0, 120))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def stamp(
    image: Image.Image, text: str, box: tuple[int, int, int, int], key: object
) -> Image.Image:
    """Paste a fixed mark (watermark or logo) into `box` of a copy of `image`."""
    rng = _rng("stamp", key)
    marked = image.copy()
    draw = ImageDraw.Draw(marked)
    x0, y0, _x1, y1 = box
    draw.rectangle(box, fill=_color(rng, 200, 255), outline=(20, 20, 20), width=2)
    draw.ellipse([x0 + 4, y0 + 4, x0 + (y1 - y0) - 4, y1 - 4], fill=_color(rng, 0, 120))
    draw.text((x0 + (y1 - y0) + 2, y0 + (y1 - y0) // 2 - 5), text, fill=(10, 10, 10))
    return marked


def with_noise(image: Image.Image, key: object, sigma: float = 2.0) -> Image.Image:
    """Re-render noise: near-identical copies differ by a few levels, as real generations do."""
    generator = np.random.default_rng(zlib.crc32(repr(key).encode()))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + generator.normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    return image.transform(
        image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy), fillcolor=(0, 0, 0)
    )


# ---- the grids ------------------------------------------------------------------------


def _copy(make: Callable[[object], Image.Image], key: str) -> Callable[[int], Image.Image]:
    return lambda seed: with_noise(make(key), (key, seed))


def _template(text: str, box: tuple[int, int, int, int], key: str) -> Callable[[int], Image.Image]:
    return lambda seed: stamp(scene((key, seed)), text, box, key)


def _varied(key: str) -> Callable[[int], Image.Image]:
    return lambda seed: scene((key, seed))


def _jitter(key: str, pixels: int) -> Callable[[int], Image.Image]:
    def draw(seed: int) -> Image.Image:
        rng = _rng("jitter", key, seed)
        base = artwork(key)
        moved = shifted(base, rng.randint(-pixels, pixels), rng.randint(-pixels, pixels))
        return with_noise(moved, (key, seed), sigma=4.0)

    return draw


def _partial(key: str, repeats: int) -> Callable[[int], Image.Image]:
    return lambda seed: (
        with_noise(photo(key), (key, seed)) if seed < repeats else scene((key, seed))
    )


WATERMARK = (168, 220, 250, 248)
CORNER_LOGO = (6, 6, 100, 40)
SMALL_PATCH = (224, 224, 252, 252)

DEMO_SET: tuple[DemoGrid, ...] = (
    DemoGrid('"The Lighthouse at Dusk" poster by Aldo Vessel', "explicit-copy",
             "names the poster; the poster in every seed", _copy(artwork, "lighthouse")),
    DemoGrid("Starfall Over Kestrel Bay, the painting by Mira Olenko", "explicit-copy",
             "names the painting; the painting in every seed", _copy(artwork, "starfall")),
    DemoGrid('the album cover "Orbital Sunrise"', "explicit-copy",
             "names the cover; the cover in every seed", _copy(artwork, "orbital")),
    DemoGrid("the famous painting of a lighthouse at dusk with rings of light", "implicit-copy",
             "describes the poster without its title", _copy(artwork, "lighthouse")),
    DemoGrid("the well-known painting of a night sky falling over a bay", "implicit-copy",
             "describes the painting without its title", _copy(artwork, "starfall")),
    DemoGrid("the most famous record sleeve with a rising sun in orbit", "implicit-copy",
             "singles out the cover without naming it", _copy(artwork, "orbital")),
    DemoGrid("a living room with a grey sofa", "unintended-copy",
             "generic prompt; one photo every seed", _copy(photo, "living-room")),
    DemoGrid("portrait of a woman in a blue coat", "unintended-copy",
             "generic prompt; one person's photo every seed", _copy(photo, "blue-coat")),
    DemoGrid("office desk by a window", "unintended-copy",
             "generic prompt; one photo every seed", _copy(photo, "desk")),
    DemoGrid("a mountain landscape at sunrise", "unintended-template",
             "stock watermark bottom right, scenes vary", _template("STOCKPIX", WATERMARK, "mountain")),
    DemoGrid("a bowl of fruit on a kitchen table", "unintended-template",
             "photographer's mark bottom right, scenes vary", _template("(c) LENSCO", WATERMARK, "fruit")),
    DemoGrid("a quiet harbour with fishing boats", "unintended-template",
             "a shop's logo top left, scenes vary", _template("HARBR", CORNER_LOGO, "harbour")),
    DemoGrid("a sports car on a coastal road", "unintended-template",
             "a car maker's logo top left nobody asked for", _template("VNTR", CORNER_LOGO, "car")),
    DemoGrid("a can of Zesta soda on a picnic table", "explicit-template",
             "names the brand; its logo fixed, scenes vary", _template("ZESTA", CORNER_LOGO, "zesta")),
    DemoGrid("a billboard for Vantro Motors in a city", "explicit-template",
             "names the brand; its logo fixed, scenes vary", _template("VANTRO", WATERMARK, "vantro")),
    DemoGrid("an abstract painting of colourful shapes", "varied", "free variation", _varied("abstract")),
    DemoGrid("a city street at night", "varied", "free variation", _varied("street")),
    DemoGrid("a forest path in autumn", "varied", "free variation", _varied("forest")),
    DemoGrid("a red kite over green hills", "varied", "free variation", _varied("kite")),
    DemoGrid("a snowy village at dawn", "varied", "free variation", _varied("village")),
    DemoGrid("still life with bottles and a lamp", "varied", "free variation", _varied("still-life")),
    DemoGrid("a poster of concentric rings over a striped sea", "borderline",
             "one work, shifted by up to 3 pixels per seed", _jitter("rings", 3)),
    DemoGrid("a circular sunburst over coloured bands", "borderline",
             "one work, shifted by up to 12 pixels per seed", _jitter("sunburst", 12)),
    DemoGrid("a person sitting in a living room", "borderline",
             "half the seeds repeat one photo, half vary", _partial("sitting", 4)),
    DemoGrid("a meadow under a wide sky", "borderline",
             "a tiny fixed patch in one corner, scenes vary", _template("", SMALL_PATCH, "meadow")),
    DemoGrid("a lighthouse on a rocky coast", "borderline",
             "a generic lighthouse: three of eight seeds are the famous poster",
             lambda seed: with_noise(artwork("lighthouse"), ("coast", seed)) if seed % 3 == 0 else scene(("coast", seed))),
)  # fmt: skip


@dataclass(frozen=True)
class DemoReference:
    """A stand-in training image: what a LAION subset fetched with img2dataset would hold."""

    key: str
    caption: str
    url: str
    draw: Callable[[], Image.Image]


def _reference(key: str, caption: str, draw: Callable[[], Image.Image]) -> DemoReference:
    return DemoReference(key, caption, f"https://example.invalid/demo/{key}.png", draw)


# Captions equal to a demo prompt link by caption (MV); the lighthouse poster, under its own
# caption, is also what the "rocky coast" grid copies without asking (RV); the rest are
# distractors. (The demo's watermarks are too small for a reference's template match.)
DEMO_REFERENCES: tuple[DemoReference, ...] = (
    _reference("demo-000001", "a living room with a grey sofa", lambda: photo("living-room")),
    _reference("demo-000002", "portrait of a woman in a blue coat", lambda: photo("blue-coat")),
    _reference("demo-000003", '"The Lighthouse at Dusk" poster by Aldo Vessel',
               lambda: artwork("lighthouse")),
    _reference("demo-000004", "a hillside vineyard", lambda: scene("vineyard")),
    _reference("demo-000005", "a beach at noon", lambda: scene("beach-noon")),
    _reference("demo-000006", "a city park in spring", lambda: scene("park-spring")),
    _reference("demo-000007", "abstract poster in red and gold", lambda: artwork("red-gold")),
    _reference("demo-000008", "a kitchen with white tiles", lambda: photo("kitchen")),
)  # fmt: skip


def entities_text() -> str:
    """The demo's lexicon in the `entities.txt` format (name | type | aliases)."""
    lines = ["# memgrid demo lexicon: name | type | aliases separated by ;"]
    for entity in DEMO_ENTITIES:
        lines.append(f"{entity.name} | {entity.type} | {'; '.join(entity.aliases)}".rstrip(" |"))
    return "\n".join(lines) + "\n"


def demo_images(grid: DemoGrid) -> list[tuple[int, Image.Image]]:
    return [(seed, grid.draw(seed)) for seed in DEMO_SEEDS]

"""Which weights a model is: a hash of the files its pipeline loads, which names its grids.

A grid's identity is the weights' hash, not the folder they were read from: the same weights
copied to each node's local disk (or fetched from the hub into any cache) are one model, so
shards merge and reruns resume wherever the files lie (docs/design.md, "Generation and
import"). The path and the hub revision are provenance only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

# Below this many bytes the hashed files are read in full; above, fingerprinted (see below).
FULL_HASH_LIMIT_BYTES = 1 << 30
FINGERPRINT_EDGE_BYTES = 1 << 20
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".yaml")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".h5")
# Components memgrid never loads (the safety checker is off): their files do not name the model.
UNUSED_COMPONENTS = frozenset({"safety_checker", "feature_extractor"})
MODEL_KEY_PREFIX = "sha256:"
MODEL_KEY_HEX_DIGITS = 16
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")
_INDEX_SUFFIX = ".index.json"


def model_key(identity: dict[str, Any]) -> str:
    """The name grids store for a model: its weights' hash, short enough to read."""
    return MODEL_KEY_PREFIX + str(identity["weights_sha256"])[:MODEL_KEY_HEX_DIGITS]


def folder_identity(folder: Path, model: str) -> dict[str, Any]:
    """`model` as given (provenance only) plus the hash of the files its pipeline loads."""
    return {"model_id": model, "model_path": str(folder), **weights_fingerprint(folder)}


def pipeline_files(folder: Path) -> list[Path]:
    """The files a diffusers pipeline loads from `folder`, sorted.

    model_index.json, and in each component folder it names (but the safety checker's):
    every config and tokenizer file, and the weights diffusers picks by default, the
    non-variant safetensors if there are any, else the non-variant .bin files. Extra
    checkpoints beside them (fp16 or EMA variants, a root-level .ckpt, a README) are not
    part of the model, so a full `hf download` and a pipeline-only copy hash alike.
    """
    index_path = folder / "model_index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    files = [index_path] if index_path.is_file() else []
    for name, value in sorted(index.items()):
        if name.startswith("_") or name in UNUSED_COMPONENTS:
            continue
        if not isinstance(value, list) or not value or value[0] is None:
            continue
        component = folder / name
        if component.is_dir():
            files += _component_files(component)
    return sorted(files)


def _component_files(component: Path) -> list[Path]:
    entries = sorted(
        path
        for path in component.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(component).parts)
    )
    weights: dict[str, list[Path]] = {}
    others = []
    for path in entries:
        weight_format = _weight_format(path.name)
        if weight_format is None:
            others.append(path)
        elif not _is_variant(path.name, weight_format):
            weights.setdefault(weight_format, []).append(path)
    for preferred in (".safetensors", ".bin"):
        if preferred in weights:
            return others + weights[preferred]
    return others + [path for paths in weights.values() for path in paths]


def _weight_format(name: str) -> str | None:
    """The weight format a file belongs to (a shard index counts as its format), else None."""
    base = name.removesuffix(_INDEX_SUFFIX)
    suffix = os.path.splitext(base)[1]
    return suffix if suffix in WEIGHT_SUFFIXES else None


def _is_variant(name: str, weight_format: str) -> bool:
    """`model.fp16.safetensors` and `model.fp16-00001-of-00002.safetensors` are variants."""
    stem = name.removesuffix(_INDEX_SUFFIX).removesuffix(weight_format)
    return "." in _SHARD_SUFFIX.sub("", stem)


def weights_fingerprint(folder: Path) -> dict[str, Any]:
    """A sha256 naming the content of the files a pipeline loads from `folder`.

    Up to FULL_HASH_LIMIT_BYTES every file is hashed in full (relative name, size,
    bytes). Above it, a full hash of a multi-GB model would cost seconds per run, so the
    hash covers every file's name and size, config and tokenizer files in full, and the
    first and last MiB of each weight file: any re-save, re-quantization or re-shard
    changes it.
    """
    files = pipeline_files(folder)
    sizes = {path: path.stat().st_size for path in files}
    total = sum(sizes.values())
    full = total <= FULL_HASH_LIMIT_BYTES
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sizes[path]}\0".encode())
        with path.open("rb") as handle:
            if full or path.suffix in CONFIG_SUFFIXES or sizes[path] <= 2 * FINGERPRINT_EDGE_BYTES:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            else:
                digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
                handle.seek(-FINGERPRINT_EDGE_BYTES, os.SEEK_END)
                digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
    return {
        "weights_sha256": digest.hexdigest(),
        "weights_hash_method": "full" if full else "fingerprint",
        "weights_bytes": total,
        "weights_files": len(files),
    }

"""Which weights a model is: its id, hub revision and a hash of its folder, for provenance."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

# Below this many bytes a model folder is hashed in full; above, fingerprinted (see below).
FULL_HASH_LIMIT_BYTES = 1 << 30
FINGERPRINT_EDGE_BYTES = 1 << 20
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".yaml")


def model_identity(model: str, folder: Path | None) -> dict[str, Any]:
    """Model id plus revision (hub) and a weights hash, so a grid names its exact weights."""
    identity: dict[str, Any] = {"model_id": model}
    if folder is None:
        snapshot = _hub_snapshot(model)
        if snapshot is None:
            return identity
        identity["revision"] = snapshot.name
        folder = snapshot
    identity.update(weights_fingerprint(folder))
    return identity


def _hub_snapshot(model: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(model, "model_index.json")
    return Path(cached).parent if isinstance(cached, str) else None


def weights_fingerprint(folder: Path) -> dict[str, Any]:
    """A sha256 naming a model folder's content.

    Up to FULL_HASH_LIMIT_BYTES every file is hashed in full (relative name, size,
    bytes). Above it, a full hash of a multi-GB model would cost seconds per run, so the
    hash covers every file's name and size, config and tokenizer files in full, and the
    first and last MiB of each weight file: any re-save, re-quantization or re-shard
    changes it.
    """
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
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
    }

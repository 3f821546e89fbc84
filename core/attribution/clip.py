"""CLIP evidence: how well the recurring crop matches the prompt and each lexicon entry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from memgrid.core.attribution.model import ClipEvidence
from memgrid.core.records import Entity

# ---------------------------------------------------------------- CLIP evidence


class TextImageEncoder(Protocol):
    """What CLIP attribution needs: L2-normalised embeddings of images and of texts."""

    def embed(self, images: Sequence[Any]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def clip_evidence(
    prompt: str,
    crops: Sequence[Any],
    lexicon: Iterable[Entity],
    encoder: TextImageEncoder,
) -> ClipEvidence:
    """Cosine of the recurring crop (mean over the given seeds' crops) to the prompt and entries.

    Each lexicon entry is described by its name and its aliases; its similarity is the best
    of them, so a crop of the Mona Lisa matches "the smiling woman painted by da Vinci" too.
    """
    entries = list(lexicon)
    if not crops:
        return ClipEvidence.unavailable("no crop to compare")
    image_embeddings = np.asarray(encoder.embed(list(crops)), dtype=np.float64)
    crop = _unit(image_embeddings.mean(axis=0))
    phrases = [prompt]
    owners: list[int] = []
    for index, entry in enumerate(entries):
        for phrase in (entry.name, *entry.aliases):
            phrases.append(phrase)
            owners.append(index)
    text_embeddings = np.asarray(encoder.embed_texts(phrases), dtype=np.float64)
    similarities = np.array([float(crop @ _unit(row)) for row in text_embeddings])
    best: dict[int, float] = {}
    for owner, similarity in zip(owners, similarities[1:], strict=True):
        best[owner] = max(best.get(owner, -1.0), float(similarity))
    return ClipEvidence(
        available=True,
        prompt_similarity=float(similarities[0]),
        entry_similarities=tuple((entries[index], best[index]) for index in sorted(best)),
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector

"""SSCD copy-detection embeddings (Pizzi et al. 2022) from a TorchScript file given by path,
or by `hf-hub:ORG/REPO/FILE` (from the Hugging Face cache, downloaded into it when online).

Preprocessing follows the SSCD README: resize the short side to 288, ImageNet mean and
std. Somepalli et al. and MemBench call a pair a replica above cosine 0.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.extras import require_extra
from memgrid.core.hub import hub_file
from memgrid.core.images import resize_short_side
from memgrid.core.metrics.embedding import EmbeddingMetric, file_fingerprint, require_file

HF_HUB = "hf-hub:"
REPLICA_THRESHOLD = 0.5  # Somepalli et al. 2023; MemBench's DBSCAN eps 0.5 on 1 - cosine
SSCD_SHORT_SIDE = 288
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Sscd(EmbeddingMetric):
    """Cosine similarity of SSCD descriptors; unavailable until a model path is given."""

    name = "sscd"
    version = "1"

    def __init__(
        self,
        path: str | Path | None = None,
        threshold: float = REPLICA_THRESHOLD,
        short_side: int = SSCD_SHORT_SIDE,
        cluster_eps: float | None = None,
        batch_size: int = 16,
    ) -> None:
        super().__init__(threshold=threshold, cluster_eps=cluster_eps, batch_size=batch_size)
        self.path = str(path) if path else None
        self.short_side = short_side
        self._model: Any = None

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "short_side": self.short_side}

    @property
    def model_key(self) -> str:
        if self.path is None:
            return "sscd:none"
        return f"sscd:sha256-{file_fingerprint(self._weights_file())}:{self.short_side}"

    def find_weights(self) -> str:
        if self.path is None:
            raise UnavailableError(
                "no SSCD model given (pass --sscd PATH to a TorchScript file such as "
                "sscd_disc_mixup.torchscript.pt)"
            )
        return str(self._weights_file())

    def _weights_file(self) -> Path:
        assert self.path is not None
        if not self.path.startswith(HF_HUB):
            return require_file(self.path, "SSCD TorchScript model")
        repo, _, filename = self.path[len(HF_HUB) :].rpartition("/")
        if repo.count("/") != 1 or not filename:
            raise InputError(self.path, "expected hf-hub:ORG/REPO/FILE")
        return hub_file(
            repo, [filename], what=f"SSCD model {self.path}", alternative="pass a file to --sscd"
        )

    def _load(self) -> None:
        weights = self.find_weights()
        require_extra("gen", "sscd")
        import torch

        try:
            with warnings.catch_warnings():
                # SSCD ships as TorchScript; torch's deprecation notice is not the user's to act on.
                warnings.simplefilter("ignore", FutureWarning)
                model = torch.jit.load(str(weights), map_location="cpu")
        except Exception as error:  # torch raises RuntimeError or ValueError by cause
            raise InputError(weights, f"not a TorchScript model ({error})") from None
        model.eval()
        self._model = model

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """CHW float32: short side to 288, [0, 1], ImageNet-normalised (the SSCD README)."""
        pixels = np.asarray(resize_short_side(image.convert("RGB"), self.short_side))
        normalised = (pixels.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))

    def _embed_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        arrays = [self.preprocess(image) for image in images]
        # Images of one grid share a size; mixed sizes are embedded one by one.
        groups = [arrays] if len({a.shape for a in arrays}) == 1 else [[a] for a in arrays]
        rows = []
        with torch.inference_mode():
            for group in groups:
                rows.append(self._model(torch.from_numpy(np.stack(group))).float().numpy())
        return np.concatenate(rows)

"""A tiny Stable Diffusion pipeline, saved as a diffusers folder and loaded by path like a real one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _fast_cpu_torch() -> Iterator[None]:
    """Tiny models run fastest on one thread without oneDNN.

    oneDNN spends seconds building kernels for each new tiny shape, and on a busy CI host
    two spinning OpenMP threads run several times slower than one.
    """
    import torch

    previous = torch.backends.mkldnn.enabled, torch.get_num_threads()
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    yield
    torch.backends.mkldnn.enabled, threads = previous
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random tiny UNet, VAE and CLIP text model with the real CLIP tokenizer (77 tokens)."""
    from memgrid.core.generation.synthetic import save_random_pipeline

    return save_random_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd", shape="tiny")


# CI runs on the CPU; MEMGRID_TEST_DEVICE=cuda runs the sampling tests on a GPU machine.
TEST_DEVICE = os.environ.get("MEMGRID_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> Any:
    from memgrid.core.generation.loading import load_model

    return load_model(str(tiny_model_dir), device=TEST_DEVICE, dtype="fp32")


@pytest.fixture(scope="session")
def tiny_ddim_model(tiny_model_dir: Path) -> Any:
    """The same weights under DDIM: one UNet call per step, so steps map to calls one to one."""
    from memgrid.core.generation.loading import load_model

    return load_model(str(tiny_model_dir), device=TEST_DEVICE, dtype="fp32", scheduler="ddim")

"""Sampling with the tiny pipeline: per-seed determinism, the Wen et al. signal, provenance."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from memgrid.core.errors import InputError
from memgrid.core.generation.loading import (
    load_model,
    model_folder,
    resolve_dtype,
    scheduler_class,
)
from memgrid.core.generation.pipeline import (
    grid_provenance,
    resolve_settings,
    sample_grid,
    triage_norms,
)
from memgrid.core.generation.settings import (
    GenerationSettings,
    TriageCost,
    check_settings_numbers,
    choose_seeds,
    parse_seed_list,
    parse_shard,
    scheduler_config_digest,
)
from memgrid.core.generation.signal import mean_first_steps, stored_norms, wen_score, wen_values
from memgrid.core.generation.synthetic import CLIP_CONTEXT_LENGTH, clip_tokenizer
from memgrid.core.generation.weights import weights_fingerprint
from tests.gen.conftest import TEST_DEVICE

PROMPT = "a photograph of an astronaut riding a horse"
# Float32 on the CPU agrees to 1e-4; GPUs run float32 convolutions in TF32 (10-bit mantissa).
NORM_RTOL = 1e-4 if TEST_DEVICE == "cpu" else 2e-3


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def settings_for(model: Any, steps: int = 3, guidance: float = 7.5) -> GenerationSettings:
    return resolve_settings(model, steps=steps, guidance=guidance, size=None)


# ---- the tokenizer and the tiny model ---------------------------------------------------------


def test_tokenizer_matches_open_clip_and_pads_to_77() -> None:
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = clip_tokenizer()
    ids = tokenizer("a photo of a cat").input_ids
    assert ids[1:-1] == SimpleTokenizer().encode("a photo of a cat")
    assert ids[0] == 49406 and ids[-1] == 49407
    assert tokenizer.model_max_length == CLIP_CONTEXT_LENGTH
    padded = tokenizer("word " * 200, padding="max_length", truncation=True).input_ids
    assert len(padded) == CLIP_CONTEXT_LENGTH


def test_tiny_model_loads_by_path_like_a_real_one(tiny_model: Any, tiny_model_dir: Path) -> None:
    assert tiny_model.name == str(tiny_model_dir.resolve())
    assert tiny_model.identity["pipeline_class"] == "StableDiffusionPipeline"
    assert tiny_model.identity["weights_hash_method"] == "full"
    assert tiny_model.native_size == 64
    assert tiny_model.pipeline.safety_checker is None


# ---- determinism ------------------------------------------------------------------------------


def test_a_seed_gives_the_same_image_whatever_its_batch(tiny_model: Any) -> None:
    settings = settings_for(tiny_model)
    batched = sample_grid(tiny_model, PROMPT, [0, 1, 2, 3], settings, batch_size=4)
    for image in batched.images:
        alone = sample_grid(tiny_model, PROMPT, [image.seed], settings, batch_size=1)
        difference = np.abs(pixels(image.png) - pixels(alone.images[0].png))
        assert difference.max() <= 1, f"seed {image.seed} differs by more than 1/255"
        np.testing.assert_allclose(
            batched.norms[image.seed], alone.norms[image.seed], rtol=NORM_RTOL, atol=1e-6
        )
    first, second = (pixels(image.png) for image in batched.images[:2])
    assert np.abs(first - second).max() > 10, "different seeds must give different images"


def test_batch_size_one_is_bit_exact_across_runs(tiny_model: Any) -> None:
    settings = settings_for(tiny_model)
    once = sample_grid(tiny_model, PROMPT, [5], settings, batch_size=1)
    again = sample_grid(tiny_model, PROMPT, [5], settings, batch_size=1)
    assert once.images[0].png == again.images[0].png
    assert once.norms == again.norms


def test_images_have_the_requested_size(tiny_model: Any) -> None:
    settings = resolve_settings(tiny_model, steps=2, guidance=7.5, size=32)
    sampled = sample_grid(tiny_model, PROMPT, [0], settings, batch_size=1)
    assert Image.open(io.BytesIO(sampled.images[0].png)).size == (32, 32)


# ---- the Wen et al. signal --------------------------------------------------------------------


def test_signal_equals_separate_conditional_and_unconditional_unet_calls(
    tiny_ddim_model: Any,
) -> None:
    """Replay DDIM by hand with two UNet calls a step; the recorded norms must match."""
    import torch

    loaded = tiny_ddim_model
    pipe = loaded.pipeline
    settings = settings_for(loaded, steps=4)
    seeds = [3, 11]
    recorded = sample_grid(loaded, PROMPT, seeds, settings, batch_size=2).norms

    conditional, unconditional = pipe.encode_prompt(PROMPT, loaded.device, 1, True)
    latent_side = settings.width // pipe.vae_scale_factor
    for seed in seeds:
        scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
        scheduler.set_timesteps(settings.steps)
        generator = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn((1, 4, latent_side, latent_side), generator=generator)
        latents = latents.to(loaded.device) * scheduler.init_noise_sigma
        direct = []
        with torch.inference_mode():
            for timestep in scheduler.timesteps:
                model_input = scheduler.scale_model_input(latents, timestep)
                eps_text = pipe.unet(
                    model_input, timestep, encoder_hidden_states=conditional
                ).sample
                eps_empty = pipe.unet(
                    model_input, timestep, encoder_hidden_states=unconditional
                ).sample
                direct.append(float((eps_text - eps_empty).flatten().norm()))
                guided = eps_empty + settings.guidance * (eps_text - eps_empty)
                latents = scheduler.step(guided, timestep, latents).prev_sample
        assert len(recorded[seed]) == settings.steps
        np.testing.assert_allclose(recorded[seed], direct, rtol=NORM_RTOL)


def test_triage_equals_the_first_steps_of_the_full_grid(tiny_model: Any) -> None:
    settings = settings_for(tiny_model, steps=5)
    seeds = [0, 1, 2]
    full = sample_grid(tiny_model, PROMPT, seeds, settings, batch_size=3).norms
    triaged = triage_norms(tiny_model, PROMPT, seeds, settings, triage_steps=2)
    for seed in seeds:
        assert len(triaged[seed]) == 2
        np.testing.assert_allclose(triaged[seed], full[seed][:2], rtol=NORM_RTOL / 10)


def test_no_guidance_no_signal_and_triage_refuses(tiny_model: Any) -> None:
    settings = settings_for(tiny_model, steps=2, guidance=1.0)
    assert sample_grid(tiny_model, PROMPT, [0], settings, batch_size=1).norms == {}
    with pytest.raises(InputError, match="guidance"):
        triage_norms(tiny_model, PROMPT, [0], settings, triage_steps=1)


def test_wen_values_are_means_over_seeds_and_steps() -> None:
    norms = {0: [4.0, 2.0, 0.0], 1: [2.0, 2.0, 2.0]}
    values = wen_values(norms)
    assert values["first_step"] == 3.0
    assert values["all_steps"] == 2.0
    assert values["per_seed_first"] == [4.0, 2.0]
    assert values["per_step"] == [3.0, 2.0, 1.0]
    assert values["n_seeds"] == 2
    assert mean_first_steps(norms, 2) == 2.5
    settings = {"steps": 3, "guidance": 7.5, "scheduler": "X", "width": 8, "height": 8}
    score = wen_score(7, norms, {**settings, "dtype": "fp32"})
    assert score.metric == "wen" and score.grid_id == 7
    assert stored_norms(score) == norms
    with pytest.raises(ValueError):
        wen_values({})


# ---- provenance and loading -------------------------------------------------------------------


def test_provenance_names_weights_sampler_and_libraries(tiny_model: Any) -> None:
    settings = settings_for(tiny_model)
    provenance = grid_provenance(tiny_model, settings, [2, 0, 1], batch_size=2)
    json.dumps(provenance)  # stored as JSON
    assert provenance["seeds"] == [0, 1, 2]
    assert provenance["scheduler"] == "PNDMScheduler"
    assert provenance["scheduler_config"]["beta_schedule"] == "scaled_linear"
    assert provenance["safety_checker"] == "off"
    assert provenance["attention"] == ["AttnProcessor2_0"]
    assert {"torch", "diffusers", "transformers"} <= set(provenance["versions"])
    assert len(provenance["weights_sha256"]) == 64
    for key in ("steps", "guidance", "width", "height", "dtype", "device", "pipeline_class"):
        assert key in provenance


def test_weights_hash_follows_content_in_both_modes(tmp_path: Path, monkeypatch) -> None:
    from memgrid.core.generation import weights as weights_module

    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text('{"unet": ["diffusers", "UNet2DConditionModel"]}')
    weights = folder / "unet" / "weights.safetensors"
    weights.write_bytes(bytes(range(256)) * 40_000)
    full = weights_fingerprint(folder)
    assert full["weights_hash_method"] == "full"
    monkeypatch.setattr(weights_module, "FULL_HASH_LIMIT_BYTES", 1000)
    monkeypatch.setattr(weights_module, "FINGERPRINT_EDGE_BYTES", 4096)
    fingerprint = weights_fingerprint(folder)
    assert fingerprint["weights_hash_method"] == "fingerprint"
    assert weights_fingerprint(folder) == fingerprint
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # inside the last edge the fingerprint reads
    weights.write_bytes(bytes(data))
    assert weights_fingerprint(folder)["weights_sha256"] != fingerprint["weights_sha256"]


def test_bad_model_references_fail_before_torch_loads(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such model folder"):
        model_folder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no model_index\.json"):
        model_folder(str(tmp_path / "empty"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file"):
        model_folder(str(tmp_path / "file.bin"))
    assert model_folder("org/name") is None  # a hub id


def test_broken_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    from memgrid.core.errors import UnavailableError

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(UnavailableError, match="cannot load the pipeline") as caught:
        load_model(str(folder), device="cpu")
    assert "\n" not in str(caught.value)


def test_schedulers_by_name_and_dtypes() -> None:
    assert scheduler_class("ddim").__name__ == "DDIMScheduler"
    assert scheduler_class("EulerDiscreteScheduler").__name__ == "EulerDiscreteScheduler"
    with pytest.raises(InputError, match="no diffusers scheduler"):
        scheduler_class("warp-drive")
    assert resolve_dtype("auto", "cpu") == "fp32"
    assert resolve_dtype("auto", "cuda") == "fp16"
    assert resolve_dtype("bf16", "cuda") == "bf16"
    with pytest.raises(InputError):
        resolve_dtype("int4", "cpu")


def test_swapped_scheduler_is_recorded(tiny_ddim_model: Any) -> None:
    assert settings_for(tiny_ddim_model).scheduler == "DDIMScheduler"


# ---- seeds, shards, compute -------------------------------------------------------------------


def test_seed_lists_and_shards() -> None:
    assert parse_seed_list("0,1, 5-7,1") == [0, 1, 5, 6, 7]
    assert choose_seeds(3, None) == [0, 1, 2]
    assert choose_seeds(3, "9,8") == [9, 8]
    for bad in ("a", "5-2", "-1", ","):
        with pytest.raises(InputError):
            parse_seed_list(bad)
    shard = parse_shard("1/3")
    assert shard.select(list("abcdefg")) == ["b", "e"]
    for bad in ("3/3", "1", "x/2", "0/0"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_triage_cost_counts_unet_evaluations() -> None:
    cost = TriageCost(prompts=10, kept=2, seeds=4, steps=50, triage_steps=1)
    assert cost.without_triage == 10 * 4 * 50 * 2
    assert cost.with_triage == (10 * 4 * 1 + 2 * 4 * 50) * 2
    assert cost.saved == cost.without_triage - cost.with_triage
    assert cost.skipped == 8
    assert 0.75 < cost.saved_share < 0.8


def test_pndm_evaluates_one_step_twice_so_all_steps_is_not_ddims(
    tiny_model: Any, tiny_ddim_model: Any
) -> None:
    """What the README says about matching Wen et al.: first_step agrees, all_steps does not."""
    pndm = sample_grid(tiny_model, PROMPT, [0], settings_for(tiny_model, steps=5), 1).norms[0]
    ddim = sample_grid(
        tiny_ddim_model, PROMPT, [0], settings_for(tiny_ddim_model, steps=5), 1
    ).norms[0]
    assert (len(pndm), len(ddim)) == (6, 5)
    assert pndm[0] == pytest.approx(ddim[0], rel=NORM_RTOL)
    assert pndm[1] == pytest.approx(pndm[2], rel=0.05)  # the warm-up's repeated timestep


def test_width_and_height_and_the_scheduler_config_are_settings(tiny_model: Any) -> None:
    settings = resolve_settings(tiny_model, steps=2, guidance=7.5, size=32, width=64)
    assert (settings.width, settings.height) == (64, 32)
    sampled = sample_grid(tiny_model, PROMPT, [0], settings, batch_size=1)
    assert Image.open(io.BytesIO(sampled.images[0].png)).size == (64, 32)
    config = dict(tiny_model.pipeline.scheduler.config)
    assert settings.scheduler_config == scheduler_config_digest(config)
    assert scheduler_config_digest({**config, "_diffusers_version": "0.1"}) == (
        settings.scheduler_config
    )
    assert scheduler_config_digest({**config, "timestep_spacing": "trailing"}) != (
        settings.scheduler_config
    )
    with pytest.raises(InputError, match="--height: must be a positive multiple of 8"):
        check_settings_numbers(2, 7.5, None, 1, width=64, height=60)


@pytest.mark.slow  # dynamo traces the tiny UNet
def test_compiled_unet_keeps_the_images_and_the_signal(tiny_model_dir: Path, tiny_model: Any):
    """--compile's wiring (fused QKV, channels_last, the hook on the compiled wrapper), with
    dynamo's eager backend: inductor's C++ build takes minutes on a CPU."""
    compiled = load_model(
        str(tiny_model_dir),
        device=TEST_DEVICE,
        dtype="fp32",
        compile_unet=True,
        compile_backend="eager",
    )
    assert compiled.identity["speedups"] == ["fused_qkv", "channels_last", "torch.compile(eager)"]
    assert (
        "FusedAttnProcessor2_0"
        in grid_provenance(compiled, settings_for(compiled), [0], 1)["attention"]
    )
    settings = settings_for(compiled)
    fast = sample_grid(compiled, PROMPT, [0, 1], settings, batch_size=2)
    plain = sample_grid(tiny_model, PROMPT, [0, 1], settings, batch_size=2)
    for ours, theirs in zip(fast.images, plain.images, strict=True):
        assert np.abs(pixels(ours.png) - pixels(theirs.png)).max() <= 1
    for seed in (0, 1):
        np.testing.assert_allclose(fast.norms[seed], plain.norms[seed], rtol=1e-3)
    triaged = triage_norms(compiled, PROMPT, [0, 1], settings, triage_steps=1)
    assert triaged[0] == pytest.approx(plain.norms[0][:1], rel=1e-3)

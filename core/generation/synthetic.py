"""Random-weight Stable Diffusion pipelines built from configs, for tests and benchmarks.

No weights can be downloaded on the machines memgrid is built on, so the tests use a
tiny pipeline and the GPU benchmark a full-size SD-1.5-shaped one; both use the real
CLIP vocabulary rebuilt from open_clip's bundled BPE file, so prompts tokenize as in SD.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

CLIP_CONTEXT_LENGTH = 77
CLIP_VOCAB_SIZE = 49408
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
# The SD 1.x scheduler as shipped in its scheduler_config.json.
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}


def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Rebuild CLIP's 49,408-token vocabulary and merges from open_clip's BPE file.

    Mirrors open_clip.tokenizer.SimpleTokenizer, with the special tokens spelled as
    Hugging Face's CLIPTokenizer expects them.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as handle:
        lines = handle.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_symbols = list(bytes_to_unicode().values())
    tokens = byte_symbols + [symbol + "</w>" for symbol in byte_symbols]
    tokens += ["".join(merge) for merge in merges]
    tokens += [_BOS, _EOS]
    return {token: index for index, token in enumerate(tokens)}, merges  # type: ignore[misc]


def clip_tokenizer() -> Any:
    """A transformers CLIPTokenizer with the real CLIP vocabulary, built offline."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=_EOS,
        bos_token=_BOS,
        eos_token=_EOS,
        pad_token=_EOS,
        # Without it the tokenizer would not pad/truncate to the text model's 77 positions.
        model_max_length=CLIP_CONTEXT_LENGTH,
    )


def _text_config(hidden: int, layers: int, heads: int, intermediate: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=CLIP_CONTEXT_LENGTH,
        hidden_act="quick_gelu",
        projection_dim=hidden,
        bos_token_id=CLIP_VOCAB_SIZE - 2,
        eos_token_id=CLIP_VOCAB_SIZE - 1,
        pad_token_id=CLIP_VOCAB_SIZE - 1,
    )


def build_random_pipeline(shape: str = "tiny", seed: int = 0, device: str = "cpu") -> Any:
    """A StableDiffusionPipeline with random weights: `tiny` (CPU tests) or `sd15` (full size).

    `tiny` makes 64x64 images from a 32x32 latent in milliseconds on a CPU; `sd15` has the
    SD 1.5 UNet, VAE and ViT-L/14 text encoder shapes (about 1.07B parameters), and is
    initialised directly on `device`, which takes seconds on a GPU instead of a minute.
    """
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    with torch.device(device):
        unet, vae, text_encoder = _random_models(shape, seed)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _random_models(shape: str, seed: int) -> tuple[Any, Any, Any]:
    """UNet, VAE and text encoder with random weights, made on the current torch device."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    if shape == "tiny":
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
        )
        text_config = _text_config(hidden=32, layers=2, heads=4, intermediate=37)
    elif shape == "sd15":
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        )
        text_config = _text_config(hidden=768, layers=12, heads=12, intermediate=3072)
    else:
        raise ValueError(f"unknown random pipeline shape {shape!r} (tiny or sd15)")
    return unet.eval(), vae.eval(), CLIPTextModel(text_config).eval()


def save_random_pipeline(folder: str | Path, shape: str = "tiny", seed: int = 0) -> Path:
    """Build a random pipeline and save it as a diffusers folder that loads like a real model."""
    folder = Path(folder)
    build_random_pipeline(shape, seed).save_pretrained(folder)
    return folder

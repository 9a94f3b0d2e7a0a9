"""Model shapes for planning: the model folder's config.json when it can be read, otherwise a
built-in table of known architectures chosen by name (so a run can be sized before the weights
are downloaded to, say, /gcs/bucket/Qwen2.5-7B)."""

from __future__ import annotations

import pathlib
from typing import Any

from judgejax.model.checkpoint import assets_dir
from judgejax.model.config import ModelConfig

# The shape fields of each model's published config.json.
KNOWN: dict[str, dict[str, Any]] = {
    "Qwen2.5-1.5B": dict(
        architectures=["Qwen2ForCausalLM"], vocab_size=151936, hidden_size=1536, intermediate_size=8960,
        num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=True),
    "Qwen2.5-7B": dict(
        architectures=["Qwen2ForCausalLM"], vocab_size=152064, hidden_size=3584, intermediate_size=18944,
        num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=False),
    "Qwen2.5-32B": dict(
        architectures=["Qwen2ForCausalLM"], vocab_size=152064, hidden_size=5120, intermediate_size=27648,
        num_hidden_layers=64, num_attention_heads=40, num_key_value_heads=8, rms_norm_eps=1e-5,
        rope_theta=1000000.0, tie_word_embeddings=False),
    "Llama-3.1-8B": dict(
        architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=False,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=8192)),
    "Llama-3.2-3B": dict(
        architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=3072, intermediate_size=8192,
        num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=True,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=8192)),
    "SmolLM2-135M": dict(
        architectures=["LlamaForCausalLM"], vocab_size=49152, hidden_size=576, intermediate_size=1536,
        num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5,
        rope_theta=100000.0, tie_word_embeddings=True),
}


class ShapeError(ValueError):
    pass


def known_architecture(name: str) -> str | None:
    """The built-in entry a model name refers to: the longest known name it contains, ignoring
    case (`Qwen2.5-7B-Instruct` -> Qwen2.5-7B)."""
    lowered = name.lower()
    hits = [k for k in KNOWN if k.lower() in lowered]
    return max(hits, key=len) if hits else None


def model_shape(path: str, arch: str | None = None, **overrides: Any) -> tuple[ModelConfig, str]:
    """(config, where it came from) for a model path: its config.json (HF folder, judgejax
    checkpoint or training run) if present, else the built-in shapes named by `arch` or by the
    path's last component."""
    if arch is None:
        config_dir = assets_dir(path)
        if (config_dir / "config.json").is_file():
            return ModelConfig.from_hf_dir(config_dir, **overrides), str(config_dir / "config.json")
    name = arch or known_architecture(pathlib.Path(path).name)
    if name not in KNOWN:
        raise ShapeError(
            f"{path}: no config.json there, and {arch or pathlib.Path(path).name!r} names no built-in "
            f"architecture (known: {', '.join(KNOWN)}); pass --arch NAME")
    return ModelConfig.from_hf(KNOWN[name], **overrides), f"built-in shapes of {name}"

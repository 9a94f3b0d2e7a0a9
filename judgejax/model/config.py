"""Model configuration, built from a Hugging Face `config.json`."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Literal

import jax.numpy as jnp

from judgejax.config import section

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")
# What a decoder layer keeps for its backward pass (judgejax.model.remat).
REMAT_POLICIES = ("none", "full", "dots", "names", "offload")
# Self-attention kernels (judgejax.model.attention_backends).
ATTENTION_BACKENDS = ("auto", "xla", "pallas-gpu", "splash", "cudnn")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
DTYPE_NAMES = tuple(DTYPES)
# The embedding and LM head hold a multiple of this many rows, so that any power-of-two tensor axis
# up to it divides the vocabulary (32001, 50257, ...); the padded entries get -inf logits and are
# never exported. A multiple of 128 is also a matmul tile.
VOCAB_MULTIPLE = 128


class ConfigError(ValueError):
    """A model config that judgejax cannot run faithfully."""


# The projections an adapter can target, by PEFT's module names less `_proj` (judgejax.model.lora).
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


@section
class LoraConfig:
    """Low-rank adapters (LoRA) on the projections: W x + scale * B(A(x)), the base frozen. The
    defaults are TRL's: rank 16, alpha 32, on all seven projections; scale alpha / rank, or
    alpha / sqrt(rank) with rslora (PEFT's `use_rslora`). `dropout` drops the adapters' input while
    training (PEFT's `lora_dropout`, judgejax.model.lora_dropout). With `base_quant` (QLoRA) the
    frozen base's seven projections are held as block-wise NF4 or int8 codes."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: tuple[Literal[LORA_TARGETS], ...] = LORA_TARGETS
    rslora: bool = False
    base_quant: Literal["none", "nf4", "int8"] = "none"  # QLoRA: the frozen base's projections quantised
    block_size: int = 64  # values sharing one absmax scale along a projection's last axis (judgejax.model.quant)

    def __post_init__(self) -> None:
        if self.rank < 1 or not self.targets:
            raise ValueError(f"model.lora: rank={self.rank} must be >= 1 and targets={list(self.targets)} not empty")
        if self.block_size < 1:
            raise ValueError(f"model.lora: block_size={self.block_size} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.lora: dropout={self.dropout} must be in [0, 1)")

    @property
    def quantized(self) -> bool:
        return self.base_quant != "none"

    @property
    def scale(self) -> float:
        return self.alpha / (self.rank ** 0.5 if self.rslora else self.rank)


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding: `default` or Llama-3 `llama3` frequency scaling."""

    theta: float
    kind: str = "default"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 1.0
    original_max_position_embeddings: int = 0


@dataclasses.dataclass(frozen=True)
class Numerics:
    """How a model computes, apart from its shape: declared once, for ModelConfig and for the
    training config's model section (which hands them on with `numerics()`). Keyword-only."""

    _: dataclasses.KW_ONLY
    param_dtype: Literal[DTYPE_NAMES] = "float32"
    compute_dtype: Literal[DTYPE_NAMES] = "float32"
    remat: Literal[REMAT_POLICIES] = "none"  # what a decoder layer keeps for its backward (judgejax.model.remat)
    attention: Literal[ATTENTION_BACKENDS] = "auto"  # self-attention kernel (judgejax.model.attention_backends)
    unroll_layers: bool = False  # unroll the loop over layers (no lax.scan): longer compiles, no loop overhead
    lora: LoraConfig | None = None  # train low-rank adapters on a frozen base instead of every weight

    def numerics(self) -> dict[str, Any]:
        """These fields by name (ModelConfig's overrides)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(Numerics)}


@dataclasses.dataclass(frozen=True)
class ModelConfig(Numerics):
    """Shape and numerics of one decoder-only causal LM (Llama, Qwen2/2.5, Qwen3)."""

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope: RopeConfig
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    qk_norm: bool

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"num_attention_heads={self.num_heads} is not a multiple of "
                f"num_key_value_heads={self.num_kv_heads}"
            )
        for field in ("param_dtype", "compute_dtype"):
            if getattr(self, field) not in DTYPES:
                raise ConfigError(f"{field}={getattr(self, field)!r}; choose one of {sorted(DTYPES)}")
        if self.remat not in REMAT_POLICIES:
            raise ConfigError(f"remat={self.remat!r}; choose one of {', '.join(REMAT_POLICIES)}")
        if self.attention not in ATTENTION_BACKENDS:
            raise ConfigError(f"attention={self.attention!r}; choose one of {', '.join(ATTENTION_BACKENDS)}")
        if self.lora and self.lora.quantized:
            for axis, size in (("head_dim", self.head_dim), ("hidden_size", self.hidden_size),
                               ("intermediate_size", self.intermediate_size)):
                if size % self.lora.block_size:
                    raise ConfigError(f"model.lora.block_size={self.lora.block_size} does not divide {axis}={size} "
                                      "(the last axis of a quantised projection)")
        if self.attention == "cudnn" and self.compute_dtype != "bfloat16":
            raise ConfigError(f"attention=cudnn needs compute_dtype=bfloat16 (cuDNN's fused attention has no "
                              f"{self.compute_dtype} form); use pallas-gpu or xla for {self.compute_dtype}")

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @property
    def param_jnp_dtype(self):
        return DTYPES[self.param_dtype]

    @property
    def compute_jnp_dtype(self):
        return DTYPES[self.compute_dtype]

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf(cls, hf: dict[str, Any], **overrides: Any) -> "ModelConfig":
        """Read a transformers `config.json` dict (v4 or v5 layout)."""
        archs = hf.get("architectures") or []
        arch = archs[0] if archs else None
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ConfigError(
                f"unsupported architecture {arch!r} (model_type={hf.get('model_type')!r}); "
                f"judgejax supports {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        if hf.get("mlp_bias"):
            raise ConfigError("mlp_bias=true is not supported")
        if hf.get("use_sliding_window"):
            raise ConfigError("use_sliding_window=true is not supported")
        if hf.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"hidden_act={hf['hidden_act']!r} is not supported (only silu)")
        heads = hf["num_attention_heads"]
        attention_bias = bool(hf.get("attention_bias", False))
        qwen2 = arch == "Qwen2ForCausalLM"
        return cls(
            architecture=arch,
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            rms_norm_eps=hf["rms_norm_eps"],
            rope=_rope_from_hf(hf),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=True if qwen2 else attention_bias,
            o_bias=False if qwen2 else attention_bias,
            qk_norm=arch == "Qwen3ForCausalLM",
            **overrides,
        )

    @classmethod
    def from_hf_dir(cls, path: str | pathlib.Path, **overrides: Any) -> "ModelConfig":
        config_path = pathlib.Path(path) / "config.json"
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: no config.json in the model folder")
        try:
            hf = json.loads(config_path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{config_path}: invalid JSON ({e})") from e
        return cls.from_hf(hf, **overrides)


def _rope_from_hf(hf: dict[str, Any]) -> RopeConfig:
    # transformers 5 stores everything under `rope_parameters`; v4 uses rope_theta + rope_scaling.
    params = dict(hf.get("rope_parameters") or {})
    if not params:
        params = dict(hf.get("rope_scaling") or {})
        params.setdefault("rope_theta", hf.get("rope_theta", 10000.0))
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type") or params.get("type") or "default"
    if kind == "default":
        return RopeConfig(theta=theta)
    if kind == "llama3":
        return RopeConfig(
            theta=theta,
            kind="llama3",
            factor=float(params["factor"]),
            low_freq_factor=float(params["low_freq_factor"]),
            high_freq_factor=float(params["high_freq_factor"]),
            original_max_position_embeddings=int(params["original_max_position_embeddings"]),
        )
    raise ConfigError(f"rope_type={kind!r} is not supported (default, llama3)")

"""The one table of the model's parameters. Each spec names a parameter by its axes (b batch, d
model, n heads, k kv heads, h head dim, f mlp, v vocab, l layers) and says everything else about
it: its logical axes (which give its shape from the config, and its sharding through
`judgejax.sharding.RULES`), its initialiser, its Hugging Face tensor and layout, when a config has
it, and, for the seven projections, which axes it maps from and to and its bias. The model, its
initialiser, the HF importer and exporter, the planner and sharding all read this table.

A config with `lora` also has two adapters per targeted projection W [l, in..., out...]:
A [l, in..., r] (uniform in +-1/sqrt(fan in), PEFT's kaiming init) and B [l, r, out...] (zeros,
so that step 0 is the base model), named `<W>_lora_a` / `<W>_lora_b`, sharded as W's input and
output axes, and stored under PEFT's tensor names."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from judgejax.model.config import ModelConfig

# How one HF tensor maps to one (per-layer) judgejax tensor (see judgejax.model.hf_names):
# same; transpose; in_to_heads [d, n, h] <- [n*h, d]; heads_to_out [n, h, d] <- [d, n*h];
# split_heads [n, h] <- [n*h]; lora_a [in..., r] <- [r, in]; lora_b [r, out...] <- [out, r].
LAYOUTS = ("same", "transpose", "in_to_heads", "heads_to_out", "split_heads", "lora_a", "lora_b")
# normal(0, 0.02) weights, ones for norms, zeros for biases (and LoRA's B), kaiming for LoRA's A
INITS = ("normal", "ones", "zeros", "kaiming")


def _always(cfg: ModelConfig) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    name: str
    axes: tuple[str, ...]  # logical axes; a leading "layers" axis stacks the decoder layers
    init: str  # one of INITS
    hf_name: str  # `{l}` is the layer index for stacked parameters
    layout: str  # one of LAYOUTS
    present: Callable[[ModelConfig], bool] = _always  # whether a config has this parameter
    inputs: int = 0  # a projection: how many axes after "layers" its matmul contracts (0: none)
    bias: str | None = None  # a projection's bias parameter, if the config has one
    adapts: str | None = None  # a LoRA adapter: the projection it adapts
    scales: str | None = None  # QLoRA: the block scales of this projection's codes

    @property
    def stacked(self) -> bool:
        return self.axes[0] == "layers"

    @property
    def group(self) -> str:
        """The sub-module holding it: the stacked decoder `layers` or `outer`."""
        return "layers" if self.stacked else "outer"

    @property
    def in_axes(self) -> tuple[str, ...]:
        """A projection's input axes (what its matmul contracts)."""
        start = int(self.stacked)
        return self.axes[start:start + self.inputs]

    @property
    def out_axes(self) -> tuple[str, ...]:
        """A projection's output axes."""
        return self.axes[int(self.stacked) + self.inputs:]

    def shape(self, cfg: ModelConfig, padded: bool = True) -> tuple[int, ...]:
        """Its shape under `cfg`; the vocabulary padded to `cfg.padded_vocab_size` unless `padded`
        is false (the Hugging Face shape)."""
        sizes = {
            "layers": cfg.num_layers, "embed": cfg.hidden_size, "norm": cfg.hidden_size,
            "heads": cfg.num_heads, "kv_heads": cfg.num_kv_heads, "head_dim": cfg.head_dim,
            "mlp": cfg.intermediate_size, "vocab": cfg.padded_vocab_size if padded else cfg.vocab_size,
            "lora_rank": cfg.lora.rank if cfg.lora else 0,
        }
        shape = tuple(sizes[axis] for axis in self.axes)
        if self.scales:  # one scale a block of the last axis
            return (*shape[:-1], shape[-1] // cfg.lora.block_size)
        return shape

    def dtype(self, cfg: ModelConfig):
        """float32 for QLoRA's scales, uint8 for its projection codes, else the parameter dtype."""
        if self.scales:
            return jnp.float32
        if self.inputs and cfg.lora and cfg.lora.quantized:
            return jnp.uint8
        return cfg.param_jnp_dtype

    def frozen_dtype(self, cfg: ModelConfig):
        """The dtype a LoRA run holds this frozen parameter in (judgejax.model.lora.frozen_base):
        QLoRA's codes and scales as stored, the rest in the compute dtype."""
        dtype = self.dtype(cfg)
        return dtype if self.scales or dtype == jnp.uint8 else cfg.compute_jnp_dtype

    def create(self, cfg: ModelConfig, rngs: nnx.Rngs) -> nnx.Param:
        """A fresh parameter in its dtype (only normal and kaiming draw a key from `rngs`)."""
        shape, dtype = self.shape(cfg), self.dtype(cfg)
        if dtype == jnp.uint8:  # QLoRA codes: only ever loaded (judgejax.model.lora.frozen_base)
            return nnx.Param(jnp.zeros(shape, dtype))
        if self.init == "normal":
            return nnx.Param(nnx.initializers.normal(stddev=0.02)(rngs.params(), shape, dtype))
        if self.init == "kaiming":  # torch's kaiming_uniform_(a=sqrt(5)), as PEFT initialises A
            bound = math.prod(shape[1:-1]) ** -0.5
            return nnx.Param(jax.random.uniform(rngs.params(), shape, dtype, -bound, bound))
        return nnx.Param((jnp.ones if self.init == "ones" else jnp.zeros)(shape, dtype))


def _untied(cfg: ModelConfig) -> bool:
    return not cfg.tie_word_embeddings


def _qkv_bias(cfg: ModelConfig) -> bool:
    return cfg.qkv_bias


def _o_bias(cfg: ModelConfig) -> bool:
    return cfg.o_bias


def _qk_norm(cfg: ModelConfig) -> bool:
    return cfg.qk_norm


_ATTN, _MLP = "model.layers.{l}.self_attn.", "model.layers.{l}.mlp."
_TABLE = (
    ParamSpec("embed_vd", ("vocab", "embed"), "normal", "model.embed_tokens.weight", "same"),
    ParamSpec("final_norm_d", ("norm",), "ones", "model.norm.weight", "same"),
    ParamSpec("lm_head_dv", ("embed", "vocab"), "normal", "lm_head.weight", "transpose", _untied),
    ParamSpec("attn_norm_ld", ("layers", "norm"), "ones", "model.layers.{l}.input_layernorm.weight", "same"),
    ParamSpec("q_ldnh", ("layers", "embed", "heads", "head_dim"), "normal", _ATTN + "q_proj.weight", "in_to_heads",
              inputs=1, bias="q_bias_lnh"),
    ParamSpec("k_ldkh", ("layers", "embed", "kv_heads", "head_dim"), "normal", _ATTN + "k_proj.weight", "in_to_heads",
              inputs=1, bias="k_bias_lkh"),
    ParamSpec("v_ldkh", ("layers", "embed", "kv_heads", "head_dim"), "normal", _ATTN + "v_proj.weight", "in_to_heads",
              inputs=1, bias="v_bias_lkh"),
    ParamSpec("o_lnhd", ("layers", "heads", "head_dim", "embed"), "normal", _ATTN + "o_proj.weight", "heads_to_out",
              inputs=2, bias="o_bias_ld"),
    ParamSpec("mlp_norm_ld", ("layers", "norm"), "ones", "model.layers.{l}.post_attention_layernorm.weight", "same"),
    ParamSpec("gate_ldf", ("layers", "embed", "mlp"), "normal", _MLP + "gate_proj.weight", "transpose", inputs=1),
    ParamSpec("up_ldf", ("layers", "embed", "mlp"), "normal", _MLP + "up_proj.weight", "transpose", inputs=1),
    ParamSpec("down_lfd", ("layers", "mlp", "embed"), "normal", _MLP + "down_proj.weight", "transpose", inputs=1),
    ParamSpec("q_bias_lnh", ("layers", "heads", "head_dim"), "zeros", _ATTN + "q_proj.bias", "split_heads", _qkv_bias),
    ParamSpec("k_bias_lkh", ("layers", "kv_heads", "head_dim"), "zeros", _ATTN + "k_proj.bias", "split_heads", _qkv_bias),
    ParamSpec("v_bias_lkh", ("layers", "kv_heads", "head_dim"), "zeros", _ATTN + "v_proj.bias", "split_heads", _qkv_bias),
    ParamSpec("o_bias_ld", ("layers", "norm"), "zeros", _ATTN + "o_proj.bias", "same", _o_bias),
    ParamSpec("q_norm_lh", ("layers", "head_dim"), "ones", _ATTN + "q_norm.weight", "same", _qk_norm),
    ParamSpec("k_norm_lh", ("layers", "head_dim"), "ones", _ATTN + "k_norm.weight", "same", _qk_norm),
)


def _adapters(projection: ParamSpec) -> tuple[ParamSpec, ParamSpec]:
    """LoRA's A and B of one projection, present when the config's lora targets it."""
    target = projection.hf_name.rsplit(".", 2)[-2].removesuffix("_proj")
    module = "base_model.model." + projection.hf_name.removesuffix(".weight")

    def present(cfg: ModelConfig) -> bool:
        return cfg.lora is not None and target in cfg.lora.targets

    return (
        ParamSpec(f"{projection.name}_lora_a", ("layers", *projection.in_axes, "lora_rank"), "kaiming",
                  module + ".lora_A.weight", "lora_a", present, adapts=projection.name),
        ParamSpec(f"{projection.name}_lora_b", ("layers", "lora_rank", *projection.out_axes), "zeros",
                  module + ".lora_B.weight", "lora_b", present, adapts=projection.name),
    )


def _scales(projection: ParamSpec) -> ParamSpec:
    """QLoRA's block scales of one projection's codes (not a Hugging Face tensor)."""

    def present(cfg: ModelConfig) -> bool:
        return cfg.lora is not None and cfg.lora.quantized

    return ParamSpec(f"{projection.name}_qscale", projection.axes, "ones", "", "same", present,
                     scales=projection.name)


_TABLE += tuple(adapter for spec in _TABLE if spec.inputs for adapter in _adapters(spec))
_TABLE += tuple(_scales(spec) for spec in _TABLE if spec.inputs)
SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in _TABLE}
# Logical axes of every parameter; judgejax.sharding.RULES maps them to mesh axes.
PARAM_AXES: dict[str, tuple[str, ...]] = {name: spec.axes for name, spec in SPECS.items()}
PROJECTIONS = tuple(name for name, spec in SPECS.items() if spec.inputs)


def specs_of(cfg: ModelConfig, group: str | None = None) -> list[ParamSpec]:
    """The parameters `cfg` has (of one group, `layers` or `outer`, if given), in table order."""
    return [s for s in _TABLE if s.present(cfg) and group in (None, s.group)]


def param_shapes(cfg: ModelConfig, padded: bool = True) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters this config has (biases and norms only where used, adapters with
    `cfg.lora`); the vocabulary padded to `cfg.padded_vocab_size` unless `padded` is false (the
    Hugging Face shapes)."""
    return {spec.name: spec.shape(cfg, padded) for spec in specs_of(cfg)}


def is_adapter(name: str) -> bool:
    return SPECS[name].adapts is not None

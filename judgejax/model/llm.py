"""One Flax NNX decoder-only causal LM for Llama, Qwen2/2.5 and Qwen3.

Weights keep Hugging Face's layout up to transposes/reshapes; names carry their axes:
b batch, t query time, s key time, d model, n heads, k kv heads, g heads per kv head, h head dim,
f mlp, v vocab, l layers. The decoder layers are stacked on a leading `l` axis and run by
`lax.scan`, so compile time does not grow with depth. The parameters are those of the table in
`judgejax.model.params`.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from judgejax.model import attention, attention_backends, lora_dropout, quant, remat
from judgejax.model.config import ModelConfig
from judgejax.model.params import SPECS
from judgejax.model.params import PARAM_AXES, param_shapes  # noqa: F401 (re-exported for the model's callers)
from judgejax.model.rope import apply_rope, inverse_frequencies
from judgejax.sharding import axis_size, constrain, kv_heads_on_mesh

# Cached keys [L, B, K, H, S] and values [L, B, K, S, H] (see judgejax.model.attention); a shared
# prefix has no batch axis.
CACHE_K_AXES = ("layers", "batch", "kv_heads", "head_dim", "seq")
CACHE_V_AXES = ("layers", "batch", "kv_heads", "seq", "head_dim")
PREFIX_K_AXES = ("layers", "kv_heads", "head_dim", "seq")
PREFIX_V_AXES = ("layers", "kv_heads", "seq", "head_dim")
ACT_AXES = ("batch", "seq", None)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class SharedPrefix:
    """Keys and values of prompt tokens that every row of a batch starts with, computed and stored
    once for the whole batch: keys [L, K, H, P], values [L, K, P, H], at positions 0..P-1."""

    k_lkhp: jax.Array
    v_lkph: jax.Array

    @property
    def length(self) -> int:
        return self.v_lkph.shape[2]


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
    """Per-layer keys and values, the segment id of each cached slot (0 = empty or padding),
    the next slot to write, and the prefix every row attends to before its own slots (if any).
    All rows share `index`: prompts are left-padded."""

    k_lbkhs: jax.Array
    v_lbksh: jax.Array
    segment_ids_bs: jax.Array
    index: jax.Array
    prefix: SharedPrefix | None = None

    @property
    def capacity(self) -> int:
        return self.v_lbksh.shape[3]


def _create(module: nnx.Module, cfg: ModelConfig, rngs: nnx.Rngs, group: str) -> None:
    """Sets each parameter of `group` in the table on `module`: a fresh one, or None where `cfg`
    does not have it."""
    for spec in SPECS.values():
        if spec.group == group:
            setattr(module, spec.name, spec.create(cfg, rngs) if spec.present(cfg) else None)


class OuterParams(nnx.Module):
    """The embedding, the final norm and the LM head (None when tied to the embedding)."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        _create(self, cfg, rngs, "outer")


class LayerParams(nnx.Module):
    """The decoder layers' weights, stacked on a leading layer axis; optional ones are None."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        _create(self, cfg, rngs, "layers")

    def arrays(self) -> dict[str, jax.Array]:
        """The weights in use, by name: what one scan step over the layers reads."""
        return {name: v[...] for name, v in vars(self).items() if isinstance(v, nnx.Param)}


class CausalLM(nnx.Module):
    """Decoder-only LM. `__call__` returns float32 logits over the vocabulary; `hidden_states` the
    final-normed activations, for losses that project to the vocabulary chunk by chunk (through
    `unembed_dv`, whose padded columns `judgejax.model.logprobs` masks)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.outer = OuterParams(cfg, rngs)
        self.layers = LayerParams(cfg, rngs)

    def unembed_dv(self) -> jax.Array:
        if self.cfg.tie_word_embeddings:
            return self.outer.embed_vd[...].T
        return self.outer.lm_head_dv[...]

    def __call__(self, tokens_bt, positions_bt, segment_ids_bt, cache: KVCache | None = None):
        h_btd, cache = self.hidden_states(tokens_bt, positions_bt, segment_ids_bt, cache)
        return self.logits(h_btd)[..., : self.cfg.vocab_size], cache

    def logits(self, h_btd) -> jax.Array:
        """Float32 logits of final-normed activations over the padded vocabulary, -inf on the
        padding (`cfg.padded_vocab_size` columns)."""
        dtype = self.cfg.compute_jnp_dtype
        logits_btv = jnp.einsum("btd,dv->btv", h_btd, self.unembed_dv().astype(dtype), preferred_element_type=jnp.float32)
        return mask_padded_vocab(logits_btv, self.cfg.vocab_size)

    def _layer(self):
        layer = _layer_fn(self.cfg, inverse_frequencies(self.cfg.rope, self.cfg.head_dim))
        return remat.apply(layer, self.cfg.remat)

    def _embed(self, tokens_bt):
        x_btd = jnp.take(self.outer.embed_vd[...], tokens_bt, axis=0).astype(self.cfg.compute_jnp_dtype)
        return constrain(x_btd, ACT_AXES)

    def _final_norm(self, x_btd):
        return _rms_norm(x_btd, self.outer.final_norm_d[...], self.cfg.rms_norm_eps)

    def _layers(self, tokens_bt, positions_bt, segment_ids_bt, prefix: SharedPrefix | None,
                cache: KVCache | None, keep_kv: bool, dropout_key: jax.Array | None = None):
        """Every decoder layer over the tokens, which see the prefix and the cache's filled slots
        (if given) before themselves: final-normed activations, and with keep_kv each layer's keys
        and values of the tokens, stacked [L, B, T, K, H]. A `dropout_key` turns LoRA dropout on."""
        layer = self._layer()
        q_slot_t = jnp.arange(tokens_bt.shape[1])
        fused = prefix is None and cache is None and attention_backends.resolve(
            self.cfg.attention, compute_dtype=self.cfg.compute_dtype) != "xla"
        mask_btt = None if fused else _mask(q_slot_t, q_slot_t, segment_ids_bt, segment_ids_bt)
        if cache is not None:
            filled_s = jnp.arange(cache.capacity) < cache.index
            cache_mask_bts = filled_s[None, None, :] & attention.segment_mask(segment_ids_bt, cache.segment_ids_bs)

        def body(x, layer_inputs):
            weights, prefix_kv, cache_kv, key = layer_inputs
            context = () if prefix_kv is None else ((*prefix_kv, None),)
            context += () if cache_kv is None else ((*cache_kv, cache_mask_bts),)
            x, kv = layer(x, weights, positions_bt, segment_ids_bt, mask_btt, context, key)
            return x, kv if keep_kv else None

        prefix_kv = None if prefix is None else (prefix.k_lkhp, prefix.v_lkph)
        cache_kv = None if cache is None else (cache.k_lbkhs, cache.v_lbksh)
        keys = None if dropout_key is None else lora_dropout.layer_keys(dropout_key, self.cfg.num_layers)
        x_btd, kv = jax.lax.scan(body, self._embed(tokens_bt), (self.layers.arrays(), prefix_kv, cache_kv, keys),
                                 unroll=self.cfg.num_layers if self.cfg.unroll_layers else 1)
        return self._final_norm(x_btd), kv

    def keys_values(self, tokens_bt, positions_bt, segment_ids_bt, prefix: SharedPrefix | None = None):
        """Final-normed activations of the tokens (after `prefix`, if given, which every token
        sees) and each layer's keys and values of the tokens, [L, B, T, K, H] each: what a caller
        that lays out its own KV cache needs."""
        return self._layers(tokens_bt, positions_bt, segment_ids_bt, prefix, None, keep_kv=True)

    def hidden_states(self, tokens_bt, positions_bt, segment_ids_bt, cache: KVCache | None = None,
                      dropout_key: jax.Array | None = None):
        """Final-normed activations of the tokens; with a cache, the tokens follow what it holds
        (its prefix, then its filled slots) and the returned cache holds them too. Training passes a
        `dropout_key` when the adapters have dropout (judgejax.model.lora_dropout)."""
        if cache is None:
            return self._layers(tokens_bt, positions_bt, segment_ids_bt, None, None, False, dropout_key)[0], None
        segment_ids_bt = segment_ids_bt.astype(cache.segment_ids_bs.dtype)
        h_btd, (k_lbtkh, v_lbtkh) = self._layers(tokens_bt, positions_bt, segment_ids_bt, cache.prefix, cache, True)
        # The new keys go into the cache once, after every layer has read it.
        k_lbkht, v_lbkth = cache_layout(k_lbtkh, v_lbtkh)
        new_cache = KVCache(
            jax.lax.dynamic_update_slice(cache.k_lbkhs, k_lbkht.astype(cache.k_lbkhs.dtype), (0, 0, 0, 0, cache.index)),
            jax.lax.dynamic_update_slice(cache.v_lbksh, v_lbkth.astype(cache.v_lbksh.dtype), (0, 0, 0, cache.index, 0)),
            jax.lax.dynamic_update_slice(cache.segment_ids_bs, segment_ids_bt, (0, cache.index)),
            cache.index + tokens_bt.shape[1],
            cache.prefix,
        )
        return h_btd, new_cache


def mask_padded_vocab(logits_xv: jax.Array, vocab_size: int) -> jax.Array:
    """-inf logits for the columns past `vocab_size` (vocabulary padding), if any."""
    if logits_xv.shape[-1] == vocab_size:
        return logits_xv
    return jnp.where(jnp.arange(logits_xv.shape[-1]) < vocab_size, logits_xv, -jnp.inf)


def cache_layout(k_lbtkh, v_lbtkh):
    """Per-layer keys and values of new tokens in the cache's layout: [L, B, K, H, T], [L, B, K, T, H]."""
    return k_lbtkh.transpose(0, 1, 3, 4, 2), v_lbtkh.transpose(0, 1, 3, 2, 4)


def _mask(q_slot_t, k_slot_s, q_segments_bt, k_segments_bs) -> jax.Array:
    """Causal within a segment; segment 0 (padding, empty cache slots) is never attended."""
    causal_ts = k_slot_s[None, :] <= q_slot_t[:, None]
    return causal_ts[None] & attention.segment_mask(q_segments_bt, k_segments_bs)


def _rms_norm(x, weight, eps):
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return weight.astype(x.dtype) * normed.astype(x.dtype)


def _layer_fn(cfg: ModelConfig, inv_freq_h):
    dtype = cfg.compute_jnp_dtype
    scale = cfg.head_dim**-0.5
    backend = attention_backends.resolve(cfg.attention, compute_dtype=cfg.compute_dtype)

    def proj(x, weights, name: str, key):
        """Projection `name` of x (its last `inputs` axes times the weight's first ones, plus its
        bias if the config has one) as one 2-D matmul: the reshapes are free, and XLA:CPU runs the
        backward of [M, K] x [K, N] much faster than of the same product as a multi-axis einsum.
        With a LoRA dropout `key` the adapter reads x with dropout."""
        spec, w = SPECS[name], weights[name]
        k = math.prod(w.shape[:spec.inputs])
        x_mk = x.reshape(-1, k)
        scales = weights.get(name + "_qscale")  # QLoRA: w holds codes
        w = w.astype(dtype) if scales is None else quant.dequantize(w, scales, cfg.lora.base_quant, dtype)
        y_mn = x_mk @ w.reshape(k, -1)
        if name + "_lora_a" in weights:  # + scale * (x A) B: the adapter never forms a [K, N] matrix
            a_kr, b_rn = weights[name + "_lora_a"].reshape(k, -1), weights[name + "_lora_b"]
            if key is not None:
                x_mk = x_mk * lora_dropout.mask(key, name, x_mk.shape, cfg.lora.dropout, dtype)
            y_mn += ((x_mk @ a_kr.astype(dtype)) * cfg.lora.scale) @ b_rn.astype(dtype).reshape(a_kr.shape[1], -1)
        y = y_mn.reshape(*x.shape[:-spec.inputs], *w.shape[spec.inputs:])
        bias = weights.get(spec.bias) if spec.bias else None
        return y if bias is None else y + bias.astype(dtype)

    def layer(x_btd, w, positions_bt, segment_ids_bt, mask_btt, context, key):
        """One decoder layer; `mask_btt` None: self-attention only, on the fused `backend`; `key`
        this layer's LoRA dropout key (or None)."""
        h_btd = _rms_norm(x_btd, w["attn_norm_ld"], cfg.rms_norm_eps)
        q_btnh = proj(h_btd, w, "q_ldnh", key)
        k_btkh = proj(h_btd, w, "k_ldkh", key)
        v_btkh = proj(h_btd, w, "v_ldkh", key)
        if cfg.qk_norm:
            q_btnh = _rms_norm(q_btnh, w["q_norm_lh"], cfg.rms_norm_eps)
            k_btkh = _rms_norm(k_btkh, w["k_norm_lh"], cfg.rms_norm_eps)
        # With fewer KV heads than tensor shards each is repeated (judgejax.sharding.kv_heads_on_mesh):
        # query head n reads KV head n // (N / K) either way. Caches hold the repeated heads.
        repeats = kv_heads_on_mesh(cfg.num_kv_heads, axis_size("tensor")) // cfg.num_kv_heads
        k_btkh, v_btkh = (x if repeats == 1 else jnp.repeat(x, repeats, axis=2) for x in (k_btkh, v_btkh))
        q_btnh = remat.tag(apply_rope(q_btnh, positions_bt, inv_freq_h), "q")
        k_btkh = remat.tag(apply_rope(k_btkh, positions_bt, inv_freq_h), "k")
        v_btkh = remat.tag(v_btkh, "v")
        b, t, kv_heads = *q_btnh.shape[:2], k_btkh.shape[2]
        q_btkgh = q_btnh.reshape(b, t, kv_heads, cfg.num_heads // kv_heads, cfg.head_dim)
        if mask_btt is None:
            attn_btkgh = attention_backends.self_attention(backend, q_btkgh, k_btkh, v_btkh, segment_ids_bt, scale)
        else:
            attn_btkgh = attention.causal(q_btkgh, k_btkh, v_btkh, mask_btt, scale, context)
        attn_btnh = remat.tag(attn_btkgh.reshape(b, t, cfg.num_heads, cfg.head_dim), "attention")
        out_btd = proj(attn_btnh, w, "o_lnhd", key)
        x_btd = constrain(x_btd + out_btd, ACT_AXES)

        h_btd = _rms_norm(x_btd, w["mlp_norm_ld"], cfg.rms_norm_eps)
        gate_btf = remat.tag(proj(h_btd, w, "gate_ldf", key), "gate")
        up_btf = remat.tag(proj(h_btd, w, "up_ldf", key), "up")
        mlp_btd = proj(jax.nn.silu(gate_btf) * up_btf, w, "down_lfd", key)
        return constrain(x_btd + mlp_btd, ACT_AXES), (k_btkh, v_btkh)

    return layer

"""One Flax NNX decoder-only causal LM for Llama, Qwen2/2.5 and Qwen3.

Weights keep Hugging Face's layout up to transposes/reshapes; names carry their axes:
b batch, t query time, s key time, d model, n heads, k kv heads, g heads per kv head, h head dim,
f mlp, v vocab, l layers. The decoder layers are stacked on a leading `l` axis and run by
`lax.scan`, so compile time does not grow with depth.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from judgejax.model import attention, attention_backends, remat
from judgejax.model.config import ModelConfig
from judgejax.model.rope import apply_rope, inverse_frequencies
from judgejax.sharding import constrain

# Logical axes of every parameter; judgejax.sharding.RULES maps them to mesh axes.
PARAM_AXES: dict[str, tuple[str, ...]] = {
    "embed_vd": ("vocab", "embed"),
    "final_norm_d": ("norm",),
    "lm_head_dv": ("embed", "vocab"),
    "attn_norm_ld": ("layers", "norm"),
    "q_ldnh": ("layers", "embed", "heads", "head_dim"),
    "k_ldkh": ("layers", "embed", "kv_heads", "head_dim"),
    "v_ldkh": ("layers", "embed", "kv_heads", "head_dim"),
    "o_lnhd": ("layers", "heads", "head_dim", "embed"),
    "q_bias_lnh": ("layers", "heads", "head_dim"),
    "k_bias_lkh": ("layers", "kv_heads", "head_dim"),
    "v_bias_lkh": ("layers", "kv_heads", "head_dim"),
    "o_bias_ld": ("layers", "norm"),
    "q_norm_lh": ("layers", "head_dim"),
    "k_norm_lh": ("layers", "head_dim"),
    "mlp_norm_ld": ("layers", "norm"),
    "gate_ldf": ("layers", "embed", "mlp"),
    "up_ldf": ("layers", "embed", "mlp"),
    "down_lfd": ("layers", "mlp", "embed"),
}
# Cached keys [L, B, K, H, S] and values [L, B, K, S, H] (see judgejax.model.attention); a shared
# prefix has no batch axis.
CACHE_K_AXES = ("layers", "batch", "kv_heads", "head_dim", "seq")
CACHE_V_AXES = ("layers", "batch", "kv_heads", "seq", "head_dim")
PREFIX_K_AXES = ("layers", "kv_heads", "head_dim", "seq")
PREFIX_V_AXES = ("layers", "kv_heads", "seq", "head_dim")
ACT_AXES = ("batch", "seq", None)


def param_shapes(cfg: ModelConfig, padded: bool = True) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters this config has (biases and norms only where used); the vocabulary
    padded to `cfg.padded_vocab_size` unless `padded` is false (the Hugging Face shapes)."""
    L, D, N, K, H = cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    F, V = cfg.intermediate_size, cfg.padded_vocab_size if padded else cfg.vocab_size
    shapes = {
        "embed_vd": (V, D),
        "final_norm_d": (D,),
        "attn_norm_ld": (L, D),
        "q_ldnh": (L, D, N, H),
        "k_ldkh": (L, D, K, H),
        "v_ldkh": (L, D, K, H),
        "o_lnhd": (L, N, H, D),
        "mlp_norm_ld": (L, D),
        "gate_ldf": (L, D, F),
        "up_ldf": (L, D, F),
        "down_lfd": (L, F, D),
    }
    if not cfg.tie_word_embeddings:
        shapes["lm_head_dv"] = (D, V)
    if cfg.qkv_bias:
        shapes.update(q_bias_lnh=(L, N, H), k_bias_lkh=(L, K, H), v_bias_lkh=(L, K, H))
    if cfg.o_bias:
        shapes["o_bias_ld"] = (L, D)
    if cfg.qk_norm:
        shapes.update(q_norm_lh=(L, H), k_norm_lh=(L, H))
    return shapes


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


class _Init:
    """Creates the parameters of a random model, in their shapes and the parameter dtype."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        self.shapes, self.dtype, self.rngs = param_shapes(cfg), cfg.param_jnp_dtype, rngs

    def normal(self, name: str) -> nnx.Param:
        return nnx.Param(nnx.initializers.normal(stddev=0.02)(self.rngs.params(), self.shapes[name], self.dtype))

    def ones(self, name: str) -> nnx.Param:
        return nnx.Param(jnp.ones(self.shapes[name], self.dtype))

    def zeros(self, name: str) -> nnx.Param:
        return nnx.Param(jnp.zeros(self.shapes[name], self.dtype))


class OuterParams(nnx.Module):
    """The embedding, the final norm and the LM head (None when tied to the embedding)."""

    def __init__(self, cfg: ModelConfig, init: _Init):
        self.embed_vd = init.normal("embed_vd")
        self.final_norm_d = init.ones("final_norm_d")
        self.lm_head_dv = None if cfg.tie_word_embeddings else init.normal("lm_head_dv")


class LayerParams(nnx.Module):
    """The decoder layers' weights, stacked on a leading layer axis; optional ones are None."""

    def __init__(self, cfg: ModelConfig, init: _Init):
        self.attn_norm_ld = init.ones("attn_norm_ld")
        self.q_ldnh = init.normal("q_ldnh")
        self.k_ldkh = init.normal("k_ldkh")
        self.v_ldkh = init.normal("v_ldkh")
        self.o_lnhd = init.normal("o_lnhd")
        self.mlp_norm_ld = init.ones("mlp_norm_ld")
        self.gate_ldf = init.normal("gate_ldf")
        self.up_ldf = init.normal("up_ldf")
        self.down_lfd = init.normal("down_lfd")
        self.q_bias_lnh = init.zeros("q_bias_lnh") if cfg.qkv_bias else None
        self.k_bias_lkh = init.zeros("k_bias_lkh") if cfg.qkv_bias else None
        self.v_bias_lkh = init.zeros("v_bias_lkh") if cfg.qkv_bias else None
        self.o_bias_ld = init.zeros("o_bias_ld") if cfg.o_bias else None
        self.q_norm_lh = init.ones("q_norm_lh") if cfg.qk_norm else None
        self.k_norm_lh = init.ones("k_norm_lh") if cfg.qk_norm else None

    def arrays(self) -> dict[str, jax.Array]:
        """The weights in use, by name: what one scan step over the layers reads."""
        return {name: v[...] for name, v in vars(self).items() if isinstance(v, nnx.Param)}


class CausalLM(nnx.Module):
    """Decoder-only LM. `__call__` returns float32 logits over the vocabulary; `hidden_states` the
    final-normed activations, for losses that project to the vocabulary chunk by chunk (through
    `unembed_dv`, whose padded columns `judgejax.model.logprobs` masks)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        init = _Init(cfg, rngs)
        self.outer = OuterParams(cfg, init)
        self.layers = LayerParams(cfg, init)

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
                cache: KVCache | None, keep_kv: bool):
        """Every decoder layer over the tokens, which see the prefix and the cache's filled slots
        (if given) before themselves: final-normed activations, and with keep_kv each layer's keys
        and values of the tokens, stacked [L, B, T, K, H]."""
        layer = self._layer()
        q_slot_t = jnp.arange(tokens_bt.shape[1])
        fused = prefix is None and cache is None and attention_backends.resolve(
            self.cfg.attention, compute_dtype=self.cfg.compute_dtype) != "xla"
        mask_btt = None if fused else _mask(q_slot_t, q_slot_t, segment_ids_bt, segment_ids_bt)
        if cache is not None:
            filled_s = jnp.arange(cache.capacity) < cache.index
            cache_mask_bts = (filled_s[None, None, :] & (cache.segment_ids_bs[:, None, :] != 0)
                              & (segment_ids_bt[:, :, None] == cache.segment_ids_bs[:, None, :]))

        def body(x, layer_inputs):
            weights, prefix_kv, cache_kv = layer_inputs
            context = () if prefix_kv is None else ((*prefix_kv, None),)
            context += () if cache_kv is None else ((*cache_kv, cache_mask_bts),)
            x, kv = layer(x, weights, positions_bt, segment_ids_bt, mask_btt, context)
            return x, kv if keep_kv else None

        prefix_kv = None if prefix is None else (prefix.k_lkhp, prefix.v_lkph)
        cache_kv = None if cache is None else (cache.k_lbkhs, cache.v_lbksh)
        x_btd, kv = jax.lax.scan(body, self._embed(tokens_bt), (self.layers.arrays(), prefix_kv, cache_kv),
                                 unroll=self.cfg.num_layers if self.cfg.unroll_layers else 1)
        return self._final_norm(x_btd), kv

    def keys_values(self, tokens_bt, positions_bt, segment_ids_bt, prefix: SharedPrefix | None = None):
        """Final-normed activations of the tokens (after `prefix`, if given, which every token
        sees) and each layer's keys and values of the tokens, [L, B, T, K, H] each: what a caller
        that lays out its own KV cache needs."""
        return self._layers(tokens_bt, positions_bt, segment_ids_bt, prefix, None, keep_kv=True)

    def hidden_states(self, tokens_bt, positions_bt, segment_ids_bt, cache: KVCache | None = None):
        """Final-normed activations of the tokens; with a cache, the tokens follow what it holds
        (its prefix, then its filled slots) and the returned cache holds them too."""
        if cache is None:
            return self._layers(tokens_bt, positions_bt, segment_ids_bt, None, None, keep_kv=False)[0], None
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
    same_bts = q_segments_bt[:, :, None] == k_segments_bs[:, None, :]
    return causal_ts[None] & same_bts & (k_segments_bs[:, None, :] != 0)


def _rms_norm(x, weight, eps):
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return weight.astype(x.dtype) * normed.astype(x.dtype)


def _layer_fn(cfg: ModelConfig, inv_freq_h):
    dtype = cfg.compute_jnp_dtype
    groups = cfg.num_heads // cfg.num_kv_heads
    scale = cfg.head_dim**-0.5
    backend = attention_backends.resolve(cfg.attention, compute_dtype=cfg.compute_dtype)

    def proj(x, w, contracted: int, bias=None):
        """x's last `contracted` axes times w's first ones, as one 2-D matmul: the reshapes are
        free, and XLA:CPU runs the backward of [M, K] x [K, N] much faster than of the same
        product as a multi-axis einsum."""
        k = math.prod(w.shape[:contracted])
        y = (x.reshape(-1, k) @ w.astype(dtype).reshape(k, -1)).reshape(*x.shape[:-contracted], *w.shape[contracted:])
        return y if bias is None else y + bias.astype(dtype)

    def layer(x_btd, w, positions_bt, segment_ids_bt, mask_btt, context):
        """One decoder layer; `mask_btt` None: self-attention only, on the fused `backend`."""
        h_btd = _rms_norm(x_btd, w["attn_norm_ld"], cfg.rms_norm_eps)
        q_btnh = proj(h_btd, w["q_ldnh"], 1, w.get("q_bias_lnh"))
        k_btkh = proj(h_btd, w["k_ldkh"], 1, w.get("k_bias_lkh"))
        v_btkh = proj(h_btd, w["v_ldkh"], 1, w.get("v_bias_lkh"))
        if cfg.qk_norm:
            q_btnh = _rms_norm(q_btnh, w["q_norm_lh"], cfg.rms_norm_eps)
            k_btkh = _rms_norm(k_btkh, w["k_norm_lh"], cfg.rms_norm_eps)
        q_btnh = remat.tag(apply_rope(q_btnh, positions_bt, inv_freq_h), "q")
        k_btkh = remat.tag(apply_rope(k_btkh, positions_bt, inv_freq_h), "k")
        v_btkh = remat.tag(v_btkh, "v")
        b, t = q_btnh.shape[:2]
        q_btkgh = q_btnh.reshape(b, t, cfg.num_kv_heads, groups, cfg.head_dim)
        if mask_btt is None:
            attn_btkgh = attention_backends.self_attention(backend, q_btkgh, k_btkh, v_btkh, segment_ids_bt, scale)
        else:
            attn_btkgh = attention.causal(q_btkgh, k_btkh, v_btkh, mask_btt, scale, context)
        attn_btnh = remat.tag(attn_btkgh.reshape(b, t, cfg.num_heads, cfg.head_dim), "attention")
        out_btd = proj(attn_btnh, w["o_lnhd"], 2, w.get("o_bias_ld"))
        x_btd = constrain(x_btd + out_btd, ACT_AXES)

        h_btd = _rms_norm(x_btd, w["mlp_norm_ld"], cfg.rms_norm_eps)
        gate_btf = remat.tag(proj(h_btd, w["gate_ldf"], 1), "gate")
        up_btf = remat.tag(proj(h_btd, w["up_ldf"], 1), "up")
        mlp_btd = proj(jax.nn.silu(gate_btf) * up_btf, w["down_lfd"], 1)
        return constrain(x_btd + mlp_btd, ACT_AXES), (k_btkh, v_btkh)

    return layer

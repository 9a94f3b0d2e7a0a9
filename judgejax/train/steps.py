"""Pure, jitted SFT and DPO train steps: (state, batch[, frozen]) -> (state, metrics). The state
holds what the run trains (every parameter, or LoRA's adapters) and `frozen` the rest (None, or
the LoRA base): `judgejax.model.lora.split`.

A batch arrives as [accum, rows, T] arrays (micro-batches first). The step scans over the
micro-batches summing losses and gradients, each already divided by the token (SFT, NLL) or
pair (DPO) count of the whole global batch, so normalisation happens once and the result equals
one big batch."""

from __future__ import annotations

from typing import Callable, Literal

import jax
import jax.numpy as jnp
import optax

from judgejax.config import section
from judgejax.model import lora_dropout
from judgejax.model.build import model_from_params
from judgejax.model.config import ModelConfig
from judgejax.model.lora import join
from judgejax.train.dpo_loss import dpo_loss
from judgejax.model.logprobs import token_logprobs
from judgejax.train.state import TrainState

SEQ_FIELDS = ("tokens", "targets", "loss_mask", "positions", "segment_ids")


@section
class DPOConfig:
    beta: float = 0.1
    loss_type: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"
    label_smoothing: float = 0.0
    nll_weight: float = 1.0  # weight of the NLL term on chosen completions (0 = plain DPO)
    reference: Literal["precomputed", "in_memory"] = "precomputed"

    def __post_init__(self) -> None:
        if self.reference not in ("precomputed", "in_memory"):
            raise ValueError(f"dpo.reference={self.reference!r}: choose precomputed or in_memory")


def sequence_token_logps(cfg: ModelConfig, params, seq: dict, chunk_size: int, dropout_key=None) -> jax.Array:
    """log p(targets) [B, T] in float32 (zero where loss_mask is 0), vocabulary chunked; with
    `dropout_key`, the adapters' dropout on."""
    model = model_from_params(cfg, params)
    hidden, _ = model.hidden_states(seq["tokens"], seq["positions"], seq["segment_ids"], dropout_key=dropout_key)
    logps = token_logprobs(
        hidden, model.unembed_dv(), seq["targets"], chunk_size=chunk_size, compute_dtype=cfg.compute_jnp_dtype,
        vocab_size=cfg.vocab_size,
    )
    return jnp.where(seq["loss_mask"] > 0, logps, 0.0)


def _apply(state: TrainState, grads, loss, tx: optax.GradientTransformation, extra: dict):
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **extra}
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def _accumulate(cfg: ModelConfig, loss_fn: Callable, state: TrainState, frozen, micro_batches):
    """Sum (loss, aux) and gradients (of the trainable `state.params`) over the leading micro-batch
    axis with lax.scan; loss_fn(params, micro, dropout_key) sees the whole model's parameters and
    the micro-batch's LoRA dropout key (None without dropout)."""
    grad_fn = jax.value_and_grad(lambda params, micro, key: loss_fn(join(params, frozen), micro, key), has_aux=True)

    def body(carry, indexed):
        index, micro = indexed
        key = lora_dropout.step_key(cfg, state.step, index)
        return jax.tree.map(jnp.add, carry, grad_fn(state.params, micro, key)), None

    first = jax.tree.map(lambda x: x[0], micro_batches)
    zeros = jax.tree.map(jnp.zeros_like, jax.eval_shape(grad_fn, state.params, first, lora_dropout.step_key(cfg, 0, 0)))
    accum = jax.tree.leaves(micro_batches)[0].shape[0]
    ((loss, aux), grads), _ = jax.lax.scan(body, zeros, (jnp.arange(accum), micro_batches))
    return loss, aux, grads


def make_sft_step(cfg: ModelConfig, tx: optax.GradientTransformation, chunk_size: int = 1024):
    """Mean next-token NLL over all loss tokens of the global batch."""

    def step(state: TrainState, batch: dict, frozen=None):
        total_tokens = jnp.maximum(batch["loss_mask"].sum(), 1.0)

        def loss_fn(params, micro, key):
            logps = sequence_token_logps(cfg, params, micro, chunk_size, key)
            return -logps.sum() / total_tokens, {"tokens": micro["loss_mask"].sum()}

        loss, aux, grads = _accumulate(cfg, loss_fn, state, frozen, batch)
        return _apply(state, grads, loss, tx, aux)

    return step


def pair_logps(cfg: ModelConfig, params, micro: dict, chunk_size: int, dropout_key=None):
    """Summed completion log-probs of chosen and rejected (one forward over both), and the
    chosen token log-probs for the NLL term."""
    both = {f: jnp.concatenate([micro[f"chosen_{f}"], micro[f"rejected_{f}"]]) for f in SEQ_FIELDS}
    token_logps = sequence_token_logps(cfg, params, both, chunk_size, dropout_key)
    rows = micro["chosen_tokens"].shape[0]
    sums = token_logps.sum(-1)
    return sums[:rows], sums[rows:], token_logps[:rows]


def real_pairs(batch: dict) -> jax.Array:
    """1.0 for a pair with completion tokens, 0.0 for a padding pair (a last, partial batch is
    filled with them): padding takes no part in the DPO loss, its normalisation or the metrics."""
    mask = batch["chosen_loss_mask"].sum(-1) + batch["rejected_loss_mask"].sum(-1)
    return (mask > 0).astype(jnp.float32)


def make_dpo_step(cfg: ModelConfig, tx: optax.GradientTransformation, dpo: DPOConfig, chunk_size: int = 1024):
    """DPO (+ NLL on chosen) against reference log-probs carried in the batch as
    `ref_chosen_logps` / `ref_rejected_logps` [accum, rows] (precomputed, or filled in by the
    caller from a frozen in-memory reference)."""

    def step(state: TrainState, batch: dict, frozen=None):
        total_pairs = jnp.maximum(real_pairs(batch).sum(), 1.0)
        total_chosen_tokens = jnp.maximum(batch["chosen_loss_mask"].sum(), 1.0)

        def loss_fn(params, micro, key):
            real = real_pairs(micro)
            chosen, rejected, chosen_token_logps = pair_logps(cfg, params, micro, chunk_size, key)
            lengths = {}
            if dpo.loss_type == "ipo":
                # at least 1, so that a padding pair's 0 / 0 cannot turn the sums into NaN
                lengths = dict(chosen_lengths=jnp.maximum(micro["chosen_loss_mask"].sum(-1), 1.0),
                               rejected_lengths=jnp.maximum(micro["rejected_loss_mask"].sum(-1), 1.0))
            losses, metrics = dpo_loss(
                chosen, rejected, micro["ref_chosen_logps"], micro["ref_rejected_logps"],
                beta=dpo.beta, loss_type=dpo.loss_type, label_smoothing=dpo.label_smoothing, **lengths,
            )
            nll = -chosen_token_logps.sum() / total_chosen_tokens
            dpo_term = (losses * real).sum() / total_pairs
            loss = dpo_term + dpo.nll_weight * nll
            aux = {k: (v * real).sum() / total_pairs for k, v in metrics.items()}
            aux["dpo_loss"] = dpo_term
            aux["nll_loss"] = nll
            return loss, aux

        loss, aux, grads = _accumulate(cfg, loss_fn, state, frozen, batch)
        return _apply(state, grads, loss, tx, aux)

    return step


def make_reference_logps(cfg: ModelConfig, chunk_size: int = 1024):
    """(params, micro-batch [rows, T]) -> (chosen, rejected) summed log-probs, for a frozen reference."""

    def ref(params, micro):
        chosen, rejected, _ = pair_logps(cfg, params, micro, chunk_size)
        return chosen, rejected

    return ref

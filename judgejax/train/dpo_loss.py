"""DPO losses (sigmoid / conservative, IPO, hinge) and the NLL term on chosen completions.

Semantics follow TRL 1.16.0's `DPOTrainer._compute_loss` (default `f_divergence_type="reverse_kl"`,
`ld_alpha=None`, `use_weighting=False`):

- Every log-prob argument is a sequence log-prob: the float32 **sum** over completion tokens
  (`judgejax.model.logprobs.sequence_logps`), for the chosen and the rejected completion.
- `delta = (pi_c - ref_c) - (pi_r - ref_r)`; beta is applied exactly once, inside the loss.
- sigmoid: `-log sigmoid(beta * delta)`. With `label_smoothing = eps > 0` it is conservative DPO,
  `-(1 - eps) log sigmoid(beta * delta) - eps log sigmoid(-beta * delta)`. TRL 1.16.0's
  `sigmoid` ignores `label_smoothing`; this smoothed form is the one TRL uses for `aot` (whose
  sorting is the identity for a single pair) and the one older TRL releases used for `sigmoid`.
- ipo: each log-ratio is divided by its completion's token count (clamped to at least 1), then
  `(delta_avg - 1 / (2 beta))**2`. The caller passes the summed log-probs together with
  `chosen_lengths` and `rejected_lengths` (number of completion tokens), as TRL does.
- hinge: `relu(1 - beta * delta)`.

TRL reduces the per-pair loss with a mean over the pairs; `dpo_loss` returns the per-pair values
so that the caller can take that mean over the global batch (and over accumulation steps).
"""
import jax
import jax.numpy as jnp

LOSS_TYPES = ("sigmoid", "ipo", "hinge")


def dpo_loss(
    policy_chosen_logps: jax.Array,
    policy_rejected_logps: jax.Array,
    ref_chosen_logps: jax.Array,
    ref_rejected_logps: jax.Array,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_lengths: jax.Array | None = None,
    rejected_lengths: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Per-pair DPO loss [B] and per-pair metrics, each a float32 [B] array.

    Metrics carry TRL's names and definitions, before TRL's mean over the gathered batch:
    `rewards/chosen` = beta * (pi_c - ref_c), `rewards/rejected` = beta * (pi_r - ref_r),
    `rewards/margins` = their difference, `rewards/accuracies` = 1.0 where the chosen reward is
    strictly greater, `logps/chosen` = pi_c and `logps/rejected` = pi_r (summed log-probs, also for
    IPO). Metrics carry no gradient. `chosen_lengths` and `rejected_lengths` are required for
    `loss_type="ipo"` and rejected otherwise. `beta`, `loss_type` and `label_smoothing` are
    Python values (static under `jax.jit`).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"dpo_loss: loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if not beta > 0:
        raise ValueError(f"dpo_loss: beta must be > 0, got {beta}")
    if loss_type == "sigmoid" and not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"dpo_loss: label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    if loss_type != "sigmoid" and label_smoothing != 0.0:
        raise ValueError(f"dpo_loss: label_smoothing applies only to loss_type='sigmoid', not {loss_type!r}")
    has_lengths = (chosen_lengths is not None, rejected_lengths is not None)
    if loss_type == "ipo" and has_lengths != (True, True):
        raise ValueError(
            "dpo_loss: loss_type='ipo' needs chosen_lengths and rejected_lengths (completion token counts)"
        )
    if loss_type != "ipo" and any(has_lengths):
        raise ValueError(f"dpo_loss: chosen_lengths/rejected_lengths apply only to loss_type='ipo', not {loss_type!r}")
    named = {
        "policy_chosen_logps": policy_chosen_logps,
        "policy_rejected_logps": policy_rejected_logps,
        "ref_chosen_logps": ref_chosen_logps,
        "ref_rejected_logps": ref_rejected_logps,
        "chosen_lengths": chosen_lengths,
        "rejected_lengths": rejected_lengths,
    }
    shapes = {name: jnp.shape(x) for name, x in named.items() if x is not None}
    if len(set(shapes.values())) != 1 or len(shapes["policy_chosen_logps"]) != 1:
        raise ValueError(f"dpo_loss: all inputs must share one shape [B], got {shapes}")

    policy_chosen_logps = jnp.asarray(policy_chosen_logps, jnp.float32)
    policy_rejected_logps = jnp.asarray(policy_rejected_logps, jnp.float32)
    chosen_logratios = policy_chosen_logps - jnp.asarray(ref_chosen_logps, jnp.float32)
    rejected_logratios = policy_rejected_logps - jnp.asarray(ref_rejected_logps, jnp.float32)
    delta = chosen_logratios - rejected_logratios

    if loss_type == "sigmoid":
        kept = (1.0 - label_smoothing) * jax.nn.log_sigmoid(beta * delta)
        flipped = label_smoothing * jax.nn.log_sigmoid(-beta * delta)
        losses = -kept - flipped
    elif loss_type == "hinge":
        losses = jax.nn.relu(1.0 - beta * delta)
    else:
        chosen_count = jnp.maximum(jnp.asarray(chosen_lengths, jnp.float32), 1.0)
        rejected_count = jnp.maximum(jnp.asarray(rejected_lengths, jnp.float32), 1.0)
        ipo_delta = chosen_logratios / chosen_count - rejected_logratios / rejected_count
        losses = (ipo_delta - 1.0 / (2.0 * beta)) ** 2

    chosen_rewards = jax.lax.stop_gradient(beta * chosen_logratios)
    rejected_rewards = jax.lax.stop_gradient(beta * rejected_logratios)
    metrics = {
        "rewards/chosen": chosen_rewards,
        "rewards/rejected": rejected_rewards,
        "rewards/margins": chosen_rewards - rejected_rewards,
        "rewards/accuracies": (chosen_rewards > rejected_rewards).astype(jnp.float32),
        "logps/chosen": jax.lax.stop_gradient(policy_chosen_logps),
        "logps/rejected": jax.lax.stop_gradient(policy_rejected_logps),
    }
    return losses, metrics


def nll_loss(chosen_token_logps_bt: jax.Array, chosen_mask_bt: jax.Array) -> jax.Array:
    """Mean negative log-likelihood over all chosen completion tokens of the batch (a scalar).

    This is TRL 1.16.0's `sft` loss term, which stands in for the older `rpo_alpha` option:
    combine as `dpo_loss(...)[0].mean() + nll_weight * nll_loss(...)` (TRL's
    `loss_type=["sigmoid", "sft"], loss_weights=[1, nll_weight]`). The normalisation is per token
    over the whole batch, not per sequence: long chosen completions weigh more. With no chosen
    token the result is 0 (TRL gives NaN). To normalise once across accumulation steps, sum
    `-sequence_logps(chosen)` and `chosen_mask.sum()` over the steps and divide at the end.
    """
    if chosen_token_logps_bt.shape != chosen_mask_bt.shape or chosen_mask_bt.ndim != 2:
        raise ValueError(
            f"nll_loss: chosen token logps {chosen_token_logps_bt.shape} and mask {chosen_mask_bt.shape} "
            "must share one shape [B, T]"
        )
    mask_bt = chosen_mask_bt.astype(bool)
    total = jnp.where(mask_bt, jnp.asarray(chosen_token_logps_bt, jnp.float32), 0.0).sum()
    return -total / jnp.maximum(mask_bt.sum(), 1).astype(jnp.float32)

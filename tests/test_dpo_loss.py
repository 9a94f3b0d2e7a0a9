"""DPO losses, metrics and the NLL term against TRL 1.16.0's own `DPOTrainer._compute_loss`.

TRL runs on a tiny random `LlamaForCausalLM` with TRL's fused LM head and precomputed reference
log-probs. The JAX side takes the same model's final hidden states and LM head through
`token_logprobs` / `sequence_logps`, so the test also covers the causal shift and completion mask.
"""
import types
from collections import defaultdict

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.utils import add_fused_lm_head

from judgejax.train.dpo_loss import dpo_loss, nll_loss
from judgejax.model.logprobs import sequence_logps, token_logprobs

PAIRS, SEQ, VOCAB = 6, 14, 97
METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
)
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def setup() -> dict:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config).eval()
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))

    # Rows [0, PAIRS) are chosen, [PAIRS, 2*PAIRS) rejected, as TRL batches them; right padding.
    rng = np.random.default_rng(0)
    input_ids = rng.integers(1, VOCAB, size=(2 * PAIRS, SEQ))
    attention_mask = np.zeros((2 * PAIRS, SEQ), np.int64)
    completion_mask = np.zeros((2 * PAIRS, SEQ), np.int64)
    for row in range(2 * PAIRS):
        prompt_len = rng.integers(1, 5)
        total_len = rng.integers(prompt_len + 1, SEQ + 1)
        attention_mask[row, :total_len] = 1
        completion_mask[row, prompt_len:total_len] = 1
    input_ids = np.where(attention_mask == 1, input_ids, 0)

    with torch.no_grad():
        hidden = model.model(
            input_ids=torch.tensor(input_ids), attention_mask=torch.tensor(attention_mask)
        ).last_hidden_state.numpy()
    unembed = model.lm_head.weight.detach().numpy().T
    token_logps = token_logprobs(hidden[:, :-1], unembed, input_ids[:, 1:], chunk_size=4)
    logps = np.asarray(sequence_logps(token_logps, completion_mask[:, 1:]))
    # Reference log-probs near the policy's, so that rewards have both signs.
    ref_logps = (logps + rng.normal(scale=2.0, size=logps.shape)).astype(np.float32)
    return {
        "model": model,
        "inputs": {
            "input_ids": torch.tensor(input_ids),
            "attention_mask": torch.tensor(attention_mask),
            "completion_mask": torch.tensor(completion_mask),
            "ref_chosen_logps": torch.tensor(ref_logps[:PAIRS]),
            "ref_rejected_logps": torch.tensor(ref_logps[PAIRS:]),
        },
        "token_logps": np.asarray(token_logps),
        "logps": logps,
        "ref_logps": ref_logps,
        "lengths": completion_mask[:, 1:].sum(1),
        "shift_mask": completion_mask[:, 1:],
    }


def _trl(
    setup: dict,
    pairs: list[int],
    loss_types: list[str],
    loss_weights: list[float],
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> tuple:
    """TRL's loss and logged metrics for the given pairs, via the unbound `_compute_loss`."""
    rows = pairs + [PAIRS + p for p in pairs]
    inputs = {
        k: (v[rows] if v.shape[0] == 2 * PAIRS else v[pairs]) for k, v in setup["inputs"].items()
    }
    trainer = types.SimpleNamespace(
        model=setup["model"],
        accelerator=types.SimpleNamespace(
            device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x
        ),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=loss_types,
        loss_weights=loss_weights,
        beta=beta,
        label_smoothing=label_smoothing,
        use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    with torch.no_grad():
        loss = DPOTrainer._compute_loss(trainer, setup["model"], inputs, return_outputs=False)
    return float(loss), {name: trainer._metrics["eval"][name][0] for name in METRICS}


def _ours(setup: dict, pairs: list[int], **kwargs) -> tuple:
    chosen, rejected = np.array(pairs), PAIRS + np.array(pairs)
    logps, ref = setup["logps"], setup["ref_logps"]
    if kwargs.get("loss_type") == "ipo":
        kwargs |= {"chosen_lengths": setup["lengths"][chosen], "rejected_lengths": setup["lengths"][rejected]}
    return dpo_loss(logps[chosen], logps[rejected], ref[chosen], ref[rejected], **kwargs)


def test_sequence_logps_match_trl_fused_head(setup: dict) -> None:
    inputs = setup["inputs"]
    labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
    with torch.no_grad():
        out = setup["model"](
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels, fused_lm_head=True
        )
    mask = setup["shift_mask"].astype(bool)
    np.testing.assert_allclose(setup["token_logps"][mask], out.log_probs.numpy()[mask], **TOL)
    np.testing.assert_allclose(setup["logps"], out.log_probs.sum(1).numpy(), **TOL)


@pytest.mark.parametrize("loss_type, beta", [("sigmoid", 0.1), ("hinge", 0.5), ("ipo", 0.1)])
def test_losses_and_metrics_match_trl(setup: dict, loss_type: str, beta: float) -> None:
    all_pairs = list(range(PAIRS))
    losses, metrics = _ours(setup, all_pairs, beta=beta, loss_type=loss_type)
    assert losses.shape == (PAIRS,) and all(m.shape == (PAIRS,) for m in metrics.values())
    trl_loss, trl_metrics = _trl(setup, all_pairs, [loss_type], [1.0], beta=beta)
    np.testing.assert_allclose(float(losses.mean()), trl_loss, **TOL)
    for name in METRICS:
        np.testing.assert_allclose(float(metrics[name].mean()), trl_metrics[name], **TOL, err_msg=name)
    assert 0 < float(metrics["rewards/accuracies"].mean()) < 1  # both outcomes exercised
    if loss_type == "hinge":
        assert 0 < float((losses == 0).mean()) < 1  # both sides of the hinge exercised
    # Per pair too: TRL only returns a batch mean, so ask it one pair at a time.
    for pair in all_pairs:
        trl_pair_loss, trl_pair_metrics = _trl(setup, [pair], [loss_type], [1.0], beta=beta)
        np.testing.assert_allclose(float(losses[pair]), trl_pair_loss, **TOL)
        for name in METRICS:
            np.testing.assert_allclose(float(metrics[name][pair]), trl_pair_metrics[name], **TOL, err_msg=name)


def test_conservative_sigmoid_matches_trl_label_smoothed_form(setup: dict) -> None:
    beta, eps = 0.1, 0.2
    losses, _ = _ours(setup, list(range(PAIRS)), beta=beta, loss_type="sigmoid", label_smoothing=eps)
    plain, _ = _ours(setup, list(range(PAIRS)), beta=beta, loss_type="sigmoid")
    assert np.abs(np.asarray(losses - plain)).max() > 1e-3
    for pair in range(PAIRS):
        # TRL 1.16.0's sigmoid ignores label_smoothing ...
        trl_sigmoid, _ = _trl(setup, [pair], ["sigmoid"], [1.0], beta=beta, label_smoothing=eps)
        np.testing.assert_allclose(float(plain[pair]), trl_sigmoid, **TOL)
        # ... its `aot` loss applies the conservative form, and sorts nothing for a single pair.
        trl_smoothed, _ = _trl(setup, [pair], ["aot"], [1.0], beta=beta, label_smoothing=eps)
        np.testing.assert_allclose(float(losses[pair]), trl_smoothed, **TOL)


def test_nll_term_matches_trl_sft_loss(setup: dict) -> None:
    all_pairs = list(range(PAIRS))
    chosen_token_logps = setup["token_logps"][:PAIRS]
    chosen_mask = setup["shift_mask"][:PAIRS]
    nll = float(nll_loss(chosen_token_logps, chosen_mask))
    trl_sft, _ = _trl(setup, all_pairs, ["sft"], [1.0], beta=0.1)
    np.testing.assert_allclose(nll, trl_sft, **TOL)
    # A per-sequence mean would differ: the normalisation is per token over the batch.
    per_sequence = float((-(chosen_token_logps * chosen_mask).sum(1) / chosen_mask.sum(1)).mean())
    assert abs(per_sequence - nll) > 1e-3
    # DPO + weighted NLL, as TRL combines loss_type=["sigmoid", "sft"].
    losses, _ = _ours(setup, all_pairs, beta=0.1, loss_type="sigmoid")
    trl_total, _ = _trl(setup, all_pairs, ["sigmoid", "sft"], [1.0, 0.7], beta=0.1)
    np.testing.assert_allclose(float(losses.mean()) + 0.7 * nll, trl_total, **TOL)


def test_bad_arguments_are_rejected() -> None:
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(x, x, x, x, beta=0.1, loss_type="dpo")
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(x, x, x, x, beta=0.1, loss_type="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="chosen_lengths and rejected_lengths"):
        dpo_loss(x, x, x, x, beta=0.1, loss_type="ipo", chosen_lengths=x)
    with pytest.raises(ValueError, match="only to loss_type='ipo'"):
        dpo_loss(x, x, x, x, beta=0.1, chosen_lengths=x, rejected_lengths=x)
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(x, x, x, jnp.zeros(4), beta=0.1)
    with pytest.raises(ValueError, match="one shape"):
        nll_loss(jnp.zeros((2, 3)), jnp.ones((2, 4)))

"""SFT and DPO steps: losses equal transformers' on the same weights and batch, gradient
accumulation equals one big batch, and a sharded run equals the single-device run."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from judgejax.model.build import params_of
from judgejax.model.hf_import import import_hf
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.train.optimizer import OptimConfig, make_optimizer
from judgejax.train.state import create_state
from judgejax.train.steps import DPOConfig, SEQ_FIELDS, make_dpo_step, make_reference_logps, make_sft_step
from tiny_hf import make_tiny_hf

SHAPE = dict(num_attention_heads=8, num_key_value_heads=4, hidden_size=64, intermediate_size=128, vocab_size=128)


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    return path, make_tiny_hf("qwen2-untied", path, **SHAPE)


def seq_batch(rows: int, length: int, seed: int, prefix: str = "") -> dict[str, np.ndarray]:
    """Right-padded rows with a loss mask on the second half of each row's real tokens."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, SHAPE["vocab_size"], size=(rows, length)).astype(np.int32)
    lengths = rng.integers(length // 2, length + 1, size=rows)
    segments = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
    tokens *= segments
    targets = np.concatenate([tokens[:, 1:], np.zeros((rows, 1), np.int32)], axis=1)
    loss_mask = np.zeros((rows, length), np.float32)
    for i, n in enumerate(lengths):
        loss_mask[i, n // 2 : n - 1] = 1.0
    positions = np.broadcast_to(np.arange(length, dtype=np.int32), (rows, length)).copy()
    batch = dict(tokens=tokens, targets=targets, loss_mask=loss_mask, positions=positions, segment_ids=segments)
    return {prefix + k: v for k, v in batch.items()}


def torch_token_logps(model, b, prefix=""):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(b[prefix + "tokens"], dtype=torch.long),
                       attention_mask=torch.tensor(b[prefix + "segment_ids"])).logits.double()
    logps = torch.log_softmax(logits, -1).gather(-1, torch.tensor(b[prefix + "targets"], dtype=torch.long)[..., None])[..., 0]
    return (logps * torch.tensor(b[prefix + "loss_mask"], dtype=torch.float64)).numpy()


def micro(batch, accum):
    return {k: v.reshape(accum, v.shape[0] // accum, *v.shape[1:]) for k, v in batch.items()}


def run_steps(step_fn, state, batches):
    step = jax.jit(step_fn, donate_argnums=0)
    losses = []
    for b in batches:
        state, metrics = step(state, b)
        losses.append(float(metrics["loss"]))
    return state, losses


def test_sft_loss_is_transformers_nll(hf):
    path, torch_model = hf
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    params = params_of(import_hf(path, mesh))
    tx = make_optimizer(OptimConfig(learning_rate=1e-3), 10)
    batch = seq_batch(4, 16, seed=0)
    expected = -torch_token_logps(torch_model, batch).sum() / batch["loss_mask"].sum()
    _, [loss] = run_steps(make_sft_step(import_hf(path, mesh).cfg, tx, chunk_size=8),
                          create_state(params, tx), [micro(batch, 1)])
    assert abs(loss - expected) < 1e-5


def test_accumulation_and_sharding_equal_one_batch(hf):
    path, _ = hf
    tx = make_optimizer(OptimConfig(learning_rate=1e-2, warmup_steps=1, weight_decay=0.1), 10)
    batches = [seq_batch(8, 16, seed=s) for s in (0, 1, 0)]  # the third repeats the first

    def train(mesh, accum):
        model = import_hf(path, mesh)
        state, losses = run_steps(make_sft_step(model.cfg, tx, chunk_size=8), create_state(params_of(model), tx),
                                  [micro(b, accum) for b in batches])
        return losses, jax.tree.map(np.asarray, state.params)

    one = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    ref_losses, ref_params = train(one, 1)
    assert ref_losses[2] < ref_losses[0]
    for mesh, accum in [(one, 4), (make_mesh(MeshConfig(2, 2, 2)), 2), (make_mesh(MeshConfig(1, 2, 4)), 1)]:
        losses, params = train(mesh, accum)
        np.testing.assert_allclose(losses, ref_losses, rtol=2e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5), params, ref_params)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_dpo_step_against_torch_logps(hf, loss_type):
    path, torch_model = hf
    mesh = make_mesh(MeshConfig(2, 2, 2))
    model = import_hf(path, mesh)
    params = params_of(model)
    batch = {**seq_batch(4, 16, seed=1, prefix="chosen_"), **seq_batch(4, 16, seed=2, prefix="rejected_")}
    ref_chosen, ref_rejected = jax.jit(make_reference_logps(model.cfg, chunk_size=8))(params, batch)
    torch_chosen = torch_token_logps(torch_model, batch, "chosen_")
    np.testing.assert_allclose(ref_chosen, torch_chosen.sum(-1), rtol=1e-5)
    np.testing.assert_allclose(ref_rejected, torch_token_logps(torch_model, batch, "rejected_").sum(-1), rtol=1e-5)

    # Policy == reference: every margin is 0, so the DPO term is its value at 0.
    at_zero = {"sigmoid": np.log(2.0), "hinge": 1.0, "ipo": (1 / (2 * 0.1)) ** 2}[loss_type]
    nll = -torch_chosen.sum() / batch["chosen_loss_mask"].sum()
    dpo = DPOConfig(beta=0.1, loss_type=loss_type, nll_weight=0.5)
    tx = make_optimizer(OptimConfig(learning_rate=1e-3), 10)
    full = {**batch, "ref_chosen_logps": np.asarray(ref_chosen), "ref_rejected_logps": np.asarray(ref_rejected)}
    step = jax.jit(make_dpo_step(model.cfg, tx, dpo, chunk_size=8))
    state, m = step(create_state(params, tx), micro(full, 2))
    assert abs(float(m["dpo_loss"]) - at_zero) < 1e-4
    assert abs(float(m["nll_loss"]) - nll) < 1e-5
    assert abs(float(m["loss"]) - (at_zero + 0.5 * nll)) < 1e-4
    for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"):  # accuracies: a coin flip at 0
        assert abs(float(m[k])) < 1e-5
    # A few steps on the same pairs make the chosen completions more likely than the rejected.
    for _ in range(4):
        state, m = step(state, micro(full, 2))
    assert float(m["rewards/margins"]) > 0 and float(m["rewards/accuracies"]) > 0.5


def test_sft_gradients_match_torch_autograd(hf):
    from judgejax.model.build import flatten
    from judgejax.model.hf_names import hf_names, is_stacked, to_hf
    from judgejax.train.steps import sequence_token_logps

    path, torch_model = hf
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    batch = seq_batch(4, 16, seed=3)
    tokens = batch["loss_mask"].sum()

    def loss_fn(params):
        return -sequence_token_logps(model.cfg, params, batch, chunk_size=8).sum() / tokens

    grads = flatten(jax.grad(loss_fn)(params_of(model)))
    torch_model.zero_grad()
    logits = torch_model(input_ids=torch.tensor(batch["tokens"], dtype=torch.long),
                         attention_mask=torch.tensor(batch["segment_ids"])).logits
    logps = torch.log_softmax(logits, -1).gather(-1, torch.tensor(batch["targets"], dtype=torch.long)[..., None])[..., 0]
    (-(logps * torch.tensor(batch["loss_mask"])).sum() / float(tokens)).backward()
    torch_grads = {n: p.grad.numpy() for n, p in torch_model.named_parameters()}
    checked = 0
    for name, grad in grads.items():
        per_layer = [np.asarray(grad[l]) for l in range(grad.shape[0])] if is_stacked(name) else [np.asarray(grad)]
        for hf_name, g in zip(hf_names(name, model.cfg), per_layer):
            ref = torch_grads[hf_name]
            rel = np.abs(to_hf(name, g) - ref).max() / np.abs(ref).max()
            assert rel < 1e-4, (hf_name, rel)
            checked += 1
    assert checked == len(torch_grads)


def test_packed_loss_equals_unpacked(hf):
    """Two sequences packed in one row (segment ids, restarting positions) give the same token
    log-probs as the same sequences in separate rows: attention never crosses segments."""
    from judgejax.train.steps import sequence_token_logps

    path, _ = hf
    model = import_hf(path, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    rng = np.random.default_rng(5)
    a, b = rng.integers(1, 128, 9).astype(np.int32), rng.integers(1, 128, 6).astype(np.int32)

    def rows(seqs, length):
        out = {k: np.zeros((len(seqs), length), np.int32) for k in SEQ_FIELDS}
        out["loss_mask"] = out["loss_mask"].astype(np.float32)
        for r, row in enumerate(seqs):
            offset = 0
            for s, seq in enumerate(row, start=1):
                n = len(seq)
                out["tokens"][r, offset:offset + n] = seq
                out["targets"][r, offset:offset + n - 1] = seq[1:]
                out["loss_mask"][r, offset:offset + n - 1] = 1.0
                out["positions"][r, offset:offset + n] = np.arange(n)
                out["segment_ids"][r, offset:offset + n] = s
                offset += n
        return out

    packed = rows([[a, b]], 16)
    unpacked = rows([[a], [b]], 16)
    lp_packed = np.asarray(sequence_token_logps(model.cfg, params_of(model), packed, 8))
    lp_unpacked = np.asarray(sequence_token_logps(model.cfg, params_of(model), unpacked, 8))
    np.testing.assert_allclose(lp_packed[0, :8], lp_unpacked[0, :8], atol=1e-6)
    np.testing.assert_allclose(lp_packed[0, 9:14], lp_unpacked[1, :5], atol=1e-6)
    assert abs(lp_packed.sum() - lp_unpacked.sum()) < 1e-4


def test_optimizer_state_is_sharded_like_the_parameters(hf):
    from judgejax.train.state import abstract_state

    path, _ = hf
    mesh = make_mesh(MeshConfig(1, 4, 2))
    model = import_hf(path, mesh)
    tx = make_optimizer(OptimConfig(weight_decay=0.1), 10)
    state = create_state(params_of(model), tx)
    q = model.layers.q_ldnh[...]
    moments = [x for x in jax.tree.leaves(state.opt_state) if x.shape == q.shape]
    assert len(moments) == 2  # Adam's mu and nu of q (and of nothing else with that shape)
    for m in moments:
        assert m.sharding.is_equivalent_to(q.sharding, q.ndim)
        assert m.addressable_shards[0].data.shape == q.addressable_shards[0].data.shape != q.shape
    abstract = jax.tree.leaves(abstract_state(model.cfg, mesh, tx).opt_state)
    for a, x in zip(abstract, jax.tree.leaves(state.opt_state)):
        assert a.shape == x.shape and a.sharding.is_equivalent_to(x.sharding, x.ndim)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_padding_pairs_change_nothing(hf, loss_type):
    """A last, partial batch is filled with padding pairs (no tokens, the first row's reference
    log-probs): the step's loss, metrics and new parameters equal those of the real pairs alone."""
    path, _ = hf
    mesh = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    params = params_of(import_hf(path, mesh))
    real = {**seq_batch(2, 16, seed=3, prefix="chosen_"), **seq_batch(2, 16, seed=4, prefix="rejected_"),
            "ref_chosen_logps": np.array([-30.0, -25.0], np.float32),
            "ref_rejected_logps": np.array([-28.0, -31.0], np.float32)}
    padded = {k: np.concatenate([v, np.zeros_like(v)]) for k, v in real.items()}
    for side in ("chosen", "rejected"):  # padding rows carry example 0's reference log-probs
        padded[f"ref_{side}_logps"][2:] = real[f"ref_{side}_logps"][0]
    tx = make_optimizer(OptimConfig(learning_rate=1e-3), 10)
    step = jax.jit(make_dpo_step(import_hf(path, mesh).cfg, tx, DPOConfig(loss_type=loss_type), chunk_size=8))
    state_real, m_real = step(create_state(params, tx), micro(real, 1))
    state_pad, m_pad = step(create_state(params_of(import_hf(path, mesh)), tx), micro(padded, 1))
    for key, value in m_real.items():
        np.testing.assert_allclose(float(m_pad[key]), float(value), rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(jax.tree.leaves(state_pad.params), jax.tree.leaves(state_real.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)

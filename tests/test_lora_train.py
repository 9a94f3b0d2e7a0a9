"""LoRA through the recipe on a tiny model: SFT and DPO(+NLL) learn with adapters only; the
checkpoint holds the adapters and their optimizer state; the DPO reference that follows a LoRA SFT
is the SFT judge (base + SFT adapters, merged); a run resumed on another base is refused; the
merged and the PEFT exports load in transformers and peft with the run's logits."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import peft
import pytest
import torch
import transformers

from judgejax.cli import main
from judgejax.data.load import load_preference_examples
from judgejax.model import lora
from judgejax.model.build import flatten, model_from_params, params_of
from judgejax.model.checkpoint import ASSETS, load_model, run_adapters
from judgejax.model.config import LoraConfig
from judgejax.model.params import is_adapter, param_shapes
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import load_tokenizer
from judgejax.train.config import ModelSection
from judgejax.train.loop import run
from judgejax.train.reference import compute_reference_logps
from test_hf_parity import hf_logits, jax_logits, max_diff, padded_batch
from test_train_loop import config, losses
from tiny_run import make_tiny_model, write_pref, write_sft

def one_device():
    return make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])


ADAPTERS = LoraConfig()  # TRL's defaults: rank 16, alpha 32, all seven projections


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LoRA SFT run, then a LoRA DPO run from it (the recipe's two stages). The base's weights
    are drawn at std 0.5: at the usual 0.02 its frozen LM head cannot express a confident
    prediction (logits within +-0.7), so no adapter could fit the data."""
    root = tmp_path_factory.mktemp("lora")
    model = make_tiny_model(root / "model", initializer_range=0.5)
    sft, pref = write_sft(root / "sft.jsonl"), write_pref(root / "pref.jsonl")
    run(config(model, sft, root / "sft", epochs=60, lr=1e-2, save_every=1000, lora=ADAPTERS), "sft")
    dpo = dataclasses.replace(config(root / "sft", pref, root / "dpo", epochs=15, lr=5e-3, save_every=1000),
                              model=ModelSection(path=str(root / "sft"), lora=ADAPTERS))
    run(dpo, "dpo")
    return root, dpo


def test_lora_sft_overfits_and_dpo_separates_pairs(trained):
    root, _ = trained
    sft_losses = losses(root / "sft")
    assert sft_losses[-1] < 0.1 < sft_losses[0]
    records = [json.loads(line) for line in (root / "dpo" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["rewards/accuracies"] == 1.0
    assert records[-1]["rewards/margins"] > records[0]["rewards/margins"]


def test_checkpoint_holds_only_adapters_and_their_optimizer_state(trained):
    root, _ = trained
    step = max(int(p.name) for p in (root / "sft" / "checkpoints").iterdir())
    with ocp.StandardCheckpointer() as checkpointer:
        stored = checkpointer.metadata(root / "sft" / "checkpoints" / str(step) / "state").item_metadata.tree
    cfg, adapters, base = run_adapters(root / "sft", one_device())
    names = set(flatten(adapters))
    assert names == {n for n in param_shapes(cfg) if is_adapter(n)} and len(names) == 14
    assert set(flatten(stored["params"])) == names
    moments = [leaf for leaf in jax.tree.leaves(stored["opt_state"]) if getattr(leaf, "shape", ())]
    assert len(moments) == 2 * len(names)  # Adam's two moments of each adapter, nothing of the base
    assert base["path"] == str(root / "model") and len(base["fingerprint"]) == 16


def test_dpo_reference_is_the_lora_sft_judge(trained):
    """The reference log-probs the LoRA DPO run used equal the SFT judge's, computed here through the
    adapters (base + scale * B A, not merged); and differ from the pre-SFT base's."""
    root, dpo = trained
    mesh = one_device()
    with_lora, adapters, base = run_adapters(root / "sft", mesh)
    base_params = params_of(load_model(base["path"], mesh))
    examples, _ = load_preference_examples(dpo.data, load_tokenizer(root / "sft" / ASSETS))
    with jax.set_mesh(mesh):
        judge = compute_reference_logps(with_lora, lora.join(adapters, base_params), examples, dpo.data, mesh, 1024)
        untrained = compute_reference_logps(lora.base_config(with_lora), base_params, examples, dpo.data, mesh, 1024)
    used = np.load(root / "dpo" / "reference_logps.npz")
    np.testing.assert_allclose(used["chosen"], judge["chosen"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(used["rejected"], judge["rejected"], rtol=1e-4, atol=1e-3)
    assert np.abs(used["chosen"] - untrained["chosen"]).max() > 1.0


def test_resuming_on_another_base_is_a_one_line_error(trained, tmp_path, capsys):
    root, _ = trained
    other = make_tiny_model(tmp_path / "other", seed=7, initializer_range=0.5)  # same shapes, other weights
    longer = config(other, root / "sft.jsonl", root / "sft", epochs=61, lr=1e-2, save_every=1000, lora=ADAPTERS)
    with pytest.raises(lora.BaseMismatch, match=r"checkpoints/\d+: its adapters were trained on base .*model"):
        run(longer, "sft")


def test_exports_load_in_transformers_and_peft(trained, tmp_path):
    root, _ = trained
    mesh = one_device()
    judge = load_model(root / "sft", mesh)
    tokens, mask, positions = padded_batch(judge.cfg.vocab_size)
    ours = jax_logits(judge, tokens, mask, positions)
    main(["export", str(root / "sft"), str(tmp_path / "merged")])
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert max_diff(ours, hf_logits(merged, tokens, mask, positions), mask) <= 1e-4
    main(["export", str(root / "sft"), str(tmp_path / "adapter"), "--adapter"])
    base = transformers.AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32).eval()
    with_adapter = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    # ours is merged (W + s B A rounded once in float32), peft applies the adapters: logits of up to
    # ~10 agree to a few float32 ulps
    assert max_diff(ours, hf_logits(with_adapter, tokens, mask, positions), mask) <= 5e-4
    assert (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size < 1 << 20


def test_qlora_sft_learns_and_loads_as_it_was_trained(trained, tmp_path):
    """An NF4 QLoRA SFT run: the loss falls; its checkpoint holds only adapters; loading the run
    merges them into the base quantised and dequantised as training saw it, so the loaded judge's
    logits equal the QLoRA model's (adapters beside the codes)."""
    root, _ = trained
    qlora = LoraConfig(base_quant="nf4", block_size=8)
    run(config(root / "model", root / "sft.jsonl", tmp_path / "q", epochs=10, lr=1e-2, save_every=1000, lora=qlora), "sft")
    curve = losses(tmp_path / "q")
    assert curve[-1] < 0.5 * curve[0]
    mesh = one_device()
    cfg, adapters, base = run_adapters(tmp_path / "q", mesh)
    assert cfg.lora == qlora and set(flatten(adapters)) == {n for n in param_shapes(cfg) if is_adapter(n)}
    frozen = lora.frozen_base(cfg, params_of(load_model(base["path"], mesh)), mesh)
    tokens, mask, positions = padded_batch(cfg.vocab_size)
    want = jax_logits(model_from_params(cfg, lora.join(adapters, frozen)), tokens, mask, positions)
    assert max_diff(want, jax_logits(load_model(tmp_path / "q", mesh), tokens, mask, positions), mask) <= 1e-4


def test_dropout_draws_a_mask_per_step_on_the_adapters_input_only(tmp_path):
    """With dropout the SFT step's loss changes, is the same for the same step and changes from one
    step to the next; with fresh adapters (B = 0) it is the dropout-free loss: only the adapters'
    input is dropped, never the base's. (Its masks equal PEFT's dropout: tests/test_lora.py.)"""
    from judgejax.train.optimizer import OptimConfig, make_optimizer
    from judgejax.train.state import create_state
    from judgejax.train.steps import make_sft_step
    from test_lora import adapted
    from test_train_steps import micro, seq_batch
    from tiny_hf import make_tiny_hf

    make_tiny_hf("llama", tmp_path / "hf")
    mesh = one_device()
    tx = make_optimizer(OptimConfig(learning_rate=1e-2), 10)

    def loss(dropout: float, step: int = 0, fresh: bool = False) -> float:
        cfg, params = adapted(tmp_path / "hf", mesh, LoraConfig(rank=4, dropout=dropout))
        trainable, frozen = lora.split(cfg, params)
        if fresh:
            trainable = lora.fresh_adapters(cfg, mesh)
        batch = {k: v % cfg.vocab_size if k in ("tokens", "targets") else v for k, v in seq_batch(4, 16, 0).items()}
        state = dataclasses.replace(create_state(trainable, tx), step=jax.numpy.int32(step))
        return float(jax.jit(make_sft_step(cfg, tx, chunk_size=8))(state, micro(batch, 2), frozen)[1]["loss"])

    plain, dropped = loss(0.0), loss(0.3)
    assert abs(dropped - plain) > 1e-4
    assert loss(0.3) == dropped and abs(loss(0.3, step=1) - dropped) > 1e-4
    assert loss(0.3, fresh=True) == loss(0.0, fresh=True)

"""`judgejax export` of an SFT training run: the HF folder reloads in transformers with the run's
logits (fp32) and the chat template the run trained with."""
from __future__ import annotations

import jax
import numpy as np
import torch
import transformers

from judgejax.cli import main
from judgejax.model.checkpoint import load_model
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.train.loop import run
from test_train_loop import config
from tiny_run import ANSWERS, QUESTIONS, make_tiny_model, write_sft


def hf_logits(folder, ids: list[int]) -> np.ndarray:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def test_sft_run_exports_to_transformers_with_its_logits_and_chat_template(tmp_path):
    start = make_tiny_model(tmp_path / "start")
    out = run(config(start, write_sft(tmp_path / "sft.jsonl"), tmp_path / "run", epochs=4, lr=1e-2, save_every=1000),
              "sft")
    main(["export", str(out), str(tmp_path / "exported"), "--dtype", "float32"])

    trained = transformers.AutoTokenizer.from_pretrained(out / "hf")
    exported = transformers.AutoTokenizer.from_pretrained(tmp_path / "exported")
    assert trained.chat_template and exported.chat_template == trained.chat_template
    conversation = [{"role": "user", "content": QUESTIONS[0]}, {"role": "assistant", "content": ANSWERS[0]},
                    {"role": "user", "content": QUESTIONS[3]}]
    ids = exported.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert ids == trained.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)["input_ids"]

    model = load_model(out, make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
    tokens = np.asarray([ids], np.int32)
    ours, _ = model(tokens, np.arange(len(ids))[None], np.ones_like(tokens))
    ours = np.asarray(ours)[0]
    theirs = hf_logits(tmp_path / "exported", ids)
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    # The export holds the trained weights, not the starting ones.
    assert np.abs(hf_logits(start, ids) - ours).max() > 0.1

"""The TRL side of tools/bench_train.py: DPOTrainer.train() on the same pairs, timed step by step,
with a check that TRL tokenizes them as judgejax does."""

from __future__ import annotations

import contextlib
import gc
import pathlib
import sys
import time

import numpy as np

from judgejax.data.rows import PreferenceRow
from judgejax.data.tokenize import PreferenceExample
from judgejax.train.optimizer import OptimConfig
from judgejax.train.steps import DPOConfig


def run_trl(path: pathlib.Path, tokenizer, rows: list[PreferenceRow], examples: list[PreferenceExample],
            seq: int, pairs: int, accum: int, steps: int, threads: int, scratch: pathlib.Path,
            optim: OptimConfig, dpo: DPOConfig) -> dict:
    """TRL's DPOTrainer in its own loop, with judgejax's optimizer and DPO settings; returns its
    step seconds, its precomputed reference log-probs and its setup time."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig as TRLDPOConfig, DPOTrainer

    torch.set_num_threads(threads)

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

    micro = pairs // accum
    args = TRLDPOConfig(
        output_dir=str(scratch / "trl"), max_length=seq, per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum, max_steps=steps, learning_rate=optim.learning_rate,
        lr_scheduler_type="cosine", adam_beta1=optim.b1, adam_beta2=optim.b2, adam_epsilon=optim.eps,
        weight_decay=optim.weight_decay, max_grad_norm=optim.grad_clip, beta=dpo.beta,
        loss_type=["sigmoid", "sft"], loss_weights=[1.0, dpo.nll_weight],
        precompute_ref_log_probs=True, precompute_ref_batch_size=micro, gradient_checkpointing=False,
        use_cpu=True, bf16=False, fp16=False, train_sampling_strategy="sequential", seed=0,
        logging_steps=steps, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False,
    )
    dataset = datasets.Dataset.from_list(
        [{"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected} for r in rows]
    )
    clock = StepClock()
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout carries only the report
        began = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             callbacks=[clock])
        setup_seconds = time.perf_counter() - began
        _check_same_tokens(trainer.train_dataset, examples, seq)
        reference = {side: np.asarray(trainer.train_dataset[f"ref_{side}_logps"], np.float64)
                     for side in ("chosen", "rejected")}
        trainer.train()
    seconds = list(np.diff(clock.marks))
    del trainer, model
    gc.collect()
    return {"seconds": seconds, "reference": reference, "setup_seconds": setup_seconds}


def _check_same_tokens(trl_dataset, examples: list[PreferenceExample], seq: int) -> None:
    """TRL's prompt+completion ids, truncated as its collator truncates, equal judgejax's."""
    for i, example in enumerate(examples):
        row = trl_dataset[i]
        for side in ("chosen", "rejected"):
            theirs = (row["prompt_ids"] + row[f"{side}_ids"])[:seq]
            ours = np.concatenate([example.prompt_ids, getattr(example, f"{side}_ids")]).tolist()
            if theirs != ours:
                raise SystemExit(f"pair {i} ({example.ref}): TRL's {side} token ids differ from judgejax's")

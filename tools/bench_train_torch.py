"""The transformers + torch side of tools/bench_train.py: the plain training step it is compared with."""

from __future__ import annotations

import pathlib
import time

import numpy as np

import bench_common as bc
from judgejax.model.config import ModelConfig
from judgejax.train.optimizer import OptimConfig

OPTIM = OptimConfig()  # judgejax's defaults, mirrored by the torch loop and TRL



def torch_resident_bytes(cfg: ModelConfig) -> int:
    """float32 parameters, gradients and two AdamW moments of the torch model."""
    return 4 * 4 * bc.model_params(cfg)


class TorchLoop:
    """The plain transformers + torch training step on the same weights and batch, accumulating
    gradients over `accum` micro-batches like judgejax."""

    def __init__(self, path: pathlib.Path, threads: int, accum: int):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.torch, self.accum = torch, accum
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.model.train()
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=OPTIM.learning_rate, betas=(OPTIM.b1, OPTIM.b2), eps=OPTIM.eps,
            weight_decay=OPTIM.weight_decay, fused=True,
        )
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def micro_batches(self, host: dict[str, np.ndarray]):
        tokens, targets = (self.torch.from_numpy(host[k]).long() for k in ("tokens", "targets"))
        return list(zip(tokens.chunk(self.accum), targets.chunk(self.accum)))

    def loss(self, tokens, targets):
        """Mean token NLL of one micro-batch over the step's micro-batches (all rows hold the
        same number of loss tokens, so the sum over micro-batches is the batch mean)."""
        logits = self.model(input_ids=tokens, use_cache=False).logits
        nll = self.torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return nll / self.accum

    def update(self) -> None:
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), OPTIM.grad_clip)
        self.optimizer.step()

    def __call__(self, micro_batches) -> float:
        began = time.perf_counter()
        total = 0.0
        for tokens, targets in micro_batches:
            loss = self.loss(tokens, targets)
            loss.backward()
            total += loss.item()
        self.update()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        self.seconds.append(seconds)
        self.losses.append(total)
        return seconds

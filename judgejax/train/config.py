"""The config of a training run (SFT or DPO): model, data, train loop, mesh, optimizer, DPO loss."""

from __future__ import annotations

import dataclasses
import pathlib
import typing

from judgejax.config import build, read_yaml, section
from judgejax.data.config import DataConfig
from judgejax.model.config import Numerics
from judgejax.sharding import MeshConfig
from judgejax.train.optimizer import OptimConfig
from judgejax.train.steps import DPOConfig


@section
class ModelSection(Numerics):
    """The model to start from and how it computes (the fields of judgejax.model.config.Numerics)."""

    path: str  # HF folder or judgejax checkpoint to start from


@section
class TrainSection:
    output_dir: str
    steps: int = 0  # 0 = one pass over data.epochs
    grad_accum: int = 1  # micro-batches per step (lax.scan); on CPU the least, raised to fit memory_budget
    memory_budget: float = 0.0  # GB a CPU step may plan for (XLA's plan, state included); 0: 60% of the available
    logprob_chunk: int = 1024  # sequence chunk of the vocabulary projection
    save_every: int = 100  # steps between checkpoints (also saved at the end and on SIGTERM)
    log_every: int = 10  # steps between metric fetches: the loop waits on the device only then (and to save)
    keep: int = 2  # checkpoints kept

    def __post_init__(self) -> None:
        if self.memory_budget < 0:
            raise ValueError(f"train.memory_budget={self.memory_budget} must be >= 0 (GB; 0: a share of the available)")
        if self.log_every < 1 or self.save_every < 1:
            raise ValueError(f"train.log_every={self.log_every} and train.save_every={self.save_every} must be >= 1")


@section
class RunConfig:
    model: ModelSection
    data: DataConfig
    train: TrainSection
    mesh: MeshConfig = MeshConfig()
    optim: OptimConfig = OptimConfig()
    dpo: DPOConfig = DPOConfig()


def load_config(path: str | pathlib.Path, overrides: typing.Sequence[str] = ()) -> RunConfig:
    raw, source = read_yaml(path, overrides)
    return build(RunConfig, raw, "", source)


def to_dict(config: RunConfig) -> dict:
    return dataclasses.asdict(config)


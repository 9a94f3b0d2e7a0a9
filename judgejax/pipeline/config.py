"""The end-to-end pipeline's config: one YAML naming the base model, the data, and each stage's
settings. The sft/dpo sections are run configs (judgejax/train/config.py) without model.path,
data.path and train.output_dir, which the pipeline fills in."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Sequence

from judgejax.config import ConfigFileError, build, read_yaml, section
from judgejax.eval.benchmarks import BENCHMARKS
from judgejax.eval.options import JudgeSettings
from judgejax.judge.synth import SynthConfig
from judgejax.train.config import RunConfig
from judgejax.sharding import MeshConfig
from judgejax.sources.arena import ArenaConfig

ARENA_TEACHER = "gpt4-arena"


@section
class PrepareSection:
    sources: tuple[str, ...] = ("gsm8k", "llamafactory-en", "hh-rlhf")
    max_rows: int = 64  # preference rows taken (a seeded, domain-mixed subset; arena: the first train pairs in
    # question-id order, i.e. whole prompts in a fixed random order)
    max_chars: int = 0  # skip rows (arena: pairs) whose question + answers are longer (0 = no limit): keeps CPU demos short
    seed: int = 0


@section
class SynthSection(SynthConfig):
    """Synthesis (judgejax.judge.synth.SynthConfig) and who teaches: an HF folder / checkpoint /
    SmolLM2-135M-Instruct, `labels`, or `gpt4-arena` (GPT-4's recorded critiques of Arena-Bench-V1
    answers, settings in the `arena` section; prepare then reads that data, not `sources`)."""

    teacher: str = "labels"
    dpo_share: float = 0.5  # label teacher: rows held out for the DPO stage
    policy_samples: int = 4  # stage 4: SFT-judge samples per DPO candidate
    policy_temperature: float = 1.0
    policy_batch_size: int = 8  # stage 4: conversations the SFT judge samples at once


@section
class BenchmarkRun:
    """One more benchmark every judge is scored on (`judgejax eval rewardbench2|judgebench|rmbench`)."""

    data: str = ""  # its file or folder; "" = the copy judgejax ships (JudgeBench's GPT-4o split only)
    modes: tuple[str, ...] = ()  # () = eval.modes
    limit_per_subset: int = 0  # rows per subset, a seeded draw (0 = every row)


@section
class EvalSection(JudgeSettings):
    """How every judge is evaluated: the command line's settings (judgejax.eval.options.JudgeSettings,
    with its defaults) on RewardBench, in each of `modes`; `seed` also seeds the comparison's bootstrap."""

    data: str = dataclasses.field(kw_only=True)  # RewardBench v1 parquet (rewardbench_filtered)
    modes: tuple[str, ...] = ("generative",)  # generative and/or verdict-prob, each run for every judge
    heldout_limit: int = 0  # gpt4-arena: in-domain held-out pairs judged (0: all)
    benchmarks: dict[str, BenchmarkRun] = dataclasses.field(default_factory=dict)  # rewardbench2, judgebench, rmbench

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in ("generative", "verdict-prob")]
        if bad or not self.modes:
            raise ValueError(f"eval.modes: {list(self.modes)}; choose from generative, verdict-prob")
        for name, run in self.benchmarks.items():
            if name not in BENCHMARKS:
                raise ValueError(f"eval.benchmarks.{name}: choose from {', '.join(BENCHMARKS)}")
            if not run.data and BENCHMARKS[name].shipped is None:
                raise ValueError(f"eval.benchmarks.{name}.data: judgejax does not ship {name}; give its file or folder")
            unknown = [m for m in run.modes or self.modes if m not in BENCHMARKS[name].modes]
            if unknown:
                raise ValueError(f"eval.benchmarks.{name}.modes: {unknown} not among {name}'s {BENCHMARKS[name].modes}")


@section
class MTBenchSection:
    """General ability of base, SFT and DPO models on MT-Bench, graded by `judge` (off when empty)."""

    judge: str = ""  # HF folder, checkpoint or run of the grading model
    limit: int = 0  # first N questions (0 = all 80)
    max_new_tokens: int = 512
    judge_max_new_tokens: int = 512


@section
class PipelineConfig:
    output_dir: str
    base_model: str
    eval: EvalSection
    sft: dict
    dpo: dict
    prepare: PrepareSection = PrepareSection()
    synth: SynthSection = SynthSection()
    mtbench: MTBenchSection = MTBenchSection()
    arena: ArenaConfig = ArenaConfig()
    mesh: MeshConfig = MeshConfig()
    export_dtype: str = "float32"


def load_pipeline_config(path: str | pathlib.Path, overrides: Sequence[str] = ()) -> tuple[PipelineConfig, str]:
    raw, source = read_yaml(path, overrides)
    config = build(PipelineConfig, raw, "", source)
    for stage in ("sft", "dpo"):  # fail now, not after an hour of synthesis
        stage_config(config, stage, "model", "data.jsonl", "out", source)
    return config, source


def stage_config(config: PipelineConfig, stage: str, model: str, data: str, out: str, source: str = "") -> RunConfig:
    """The run config of a training stage, with its paths filled in."""
    raw: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in dict(getattr(config, stage)).items()}
    for key in ("model", "data", "train"):
        if not isinstance(raw.setdefault(key, {}), dict):
            raise ConfigFileError(f"{source}: {stage}.{key} must be a mapping")
    for key, part in (("path", "model"), ("path", "data"), ("output_dir", "train")):
        if key in raw[part]:
            raise ConfigFileError(f"{source}: {stage}.{part}.{key} is set by the pipeline; remove it")
    raw["model"]["path"], raw["data"]["path"], raw["train"]["output_dir"] = model, data, out
    raw.setdefault("mesh", dataclasses.asdict(config.mesh))
    return build(RunConfig, raw, stage, source or stage)

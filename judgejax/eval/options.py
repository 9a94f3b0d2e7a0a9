"""What an evaluation run is asked to do: how examples are chosen and judged (`JudgeSettings`,
which the pipeline's eval section extends), and a whole run as the command line states it."""

from __future__ import annotations

import dataclasses
from typing import Any

from judgejax.judge.templates import get_template
from judgejax.sharding import MeshConfig

MODES = ("generative", "verdict-prob", "implicit-reward")
BENCHMARKS = ("rewardbench", "pairwise")
DEFAULT_TEMPLATE = "pair-v2"
DEFAULT_MAX_NEW_TOKENS = 2048


@dataclasses.dataclass(frozen=True)
class JudgeSettings:
    """Which examples are judged and how; defaults as on the command line."""

    template: str | None = None  # None: DEFAULT_TEMPLATE (no template in implicit-reward mode)
    both_orders: bool = False  # judge each example with the chosen answer as A and as B
    subsets: list[str] | None = None  # None: every subset
    limit_per_subset: int | None = None  # None: every row
    seed: int = 0  # A/B order and per-subset draw
    max_new_tokens: int | None = None  # generative mode; None: DEFAULT_MAX_NEW_TOKENS
    batch_size: int = 8

    def judge_settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(JudgeSettings)}

    @property
    def template_name(self) -> str:
        return self.template or DEFAULT_TEMPLATE

    @property
    def new_token_limit(self) -> int:
        return self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalOptions(JudgeSettings):
    """A run as the command line states it (see `judgejax eval rewardbench --help`)."""

    benchmark: str
    model: str
    data: str
    out: str
    mode: str = "generative"
    columns: dict[str, str] | None = None
    reference: str | None = None
    mesh: MeshConfig = MeshConfig()
    shard: tuple[int, int] | None = None  # (index, count) for independent jobs; default: one shard per process
    param_dtype: str = "float32"
    compute_dtype: str = "float32"

    @classmethod
    def judging(cls, settings: JudgeSettings, *, mode: str, **run: Any) -> "EvalOptions":
        """A run in `mode` with `settings` (their max_new_tokens dropped outside generative mode,
        where it has no effect); `run` gives the rest and may override settings."""
        chosen = settings.judge_settings() | run
        if mode != "generative":
            chosen["max_new_tokens"] = None
        return cls(mode=mode, **chosen)

    def recorded(self) -> dict[str, Any]:
        """The options as run.json records them (the shard aside: every shard runs the same)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "shard"}

    def check(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark {self.benchmark!r}: choose one of {BENCHMARKS}")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: choose one of {MODES}")
        if (self.benchmark == "pairwise") != (self.columns is not None):
            raise ValueError("a column mapping is given exactly for the pairwise benchmark")
        if self.mode == "implicit-reward":
            if self.reference is None:
                raise ValueError("implicit-reward needs --reference, the DPO policy's reference model")
            for name, value in (("template", self.template), ("max_new_tokens", self.max_new_tokens)):
                if value is not None:
                    raise ValueError(f"--{name.replace('_', '-')} has no effect in implicit-reward mode")
            if self.both_orders:
                raise ValueError("--both-orders has no effect in implicit-reward mode (no A/B positions)")
        else:
            if self.reference is not None:
                raise ValueError(f"--reference is used only in implicit-reward mode, not {self.mode}")
            get_template(self.template_name)
        if self.max_new_tokens is not None and self.mode != "generative":
            raise ValueError(f"--max-new-tokens is used only in generative mode, not {self.mode}")
        if self.batch_size < 1:
            raise ValueError(f"batch size {self.batch_size}: must be >= 1")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise ValueError(f"shard {self.shard[0]}/{self.shard[1]}: need 0 <= index < count")

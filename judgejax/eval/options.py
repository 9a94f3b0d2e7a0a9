"""What an evaluation run is asked to do: how examples are chosen and judged (`JudgeSettings`,
which the pipeline's eval section extends), and a whole run as the command line states it."""

from __future__ import annotations

import dataclasses
from typing import Any

from judgejax.eval.benchmarks import BENCHMARKS as NEW_BENCHMARKS
from judgejax.judge.templates import DEFAULT_TEMPLATE, get_ranking_template, get_rating_template, get_template
from judgejax.sharding import MeshConfig

MODES = ("generative", "verdict-prob", "implicit-reward")
BENCHMARK_MODES = {"rewardbench": MODES, "pairwise": MODES, **{b.name: b.modes for b in NEW_BENCHMARKS.values()}}
BENCHMARKS = tuple(BENCHMARK_MODES)
GENERATIVE_MODES = ("generative", "rankings", "ratings", "pairwise")
DEFAULT_RANKING_TEMPLATE = "rank4-v2"
DEFAULT_RATING_TEMPLATE = "rating-v2"
DEFAULT_TIES_TEMPLATE = "rating-v2-ties"
TEMPLATE_GETTERS = {"pair": get_template, "ranking": get_ranking_template, "rating": get_rating_template,
                    "ties": get_rating_template}
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
    memory_budget: float = 0.0  # CPU, generative modes: GB a sampler batch may plan (0: a share of the available)

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
    rating_template: str | None = None  # rating judgements; None: DEFAULT_RATING_TEMPLATE
    ties_template: str | None = None  # RewardBench 2's Ties; None: DEFAULT_TIES_TEMPLATE
    mesh: MeshConfig = MeshConfig()
    shard: tuple[int, int] | None = None  # (index, count) for independent jobs; default: one shard per process
    param_dtype: str = "float32"
    compute_dtype: str = "float32"

    @classmethod
    def judging(cls, settings: JudgeSettings, *, mode: str, **run: Any) -> "EvalOptions":
        """A run in `mode` with `settings` (their max_new_tokens dropped outside generative mode,
        where it has no effect); `run` gives the rest and may override settings."""
        chosen = settings.judge_settings() | run
        if mode not in GENERATIVE_MODES:
            chosen["max_new_tokens"] = None
        return cls(mode=mode, **chosen)

    def recorded(self) -> dict[str, Any]:
        """The options as run.json records them (the shard aside: every shard runs the same)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "shard"}

    def template_names(self) -> dict[str, str]:
        """The templates this run judges with, by kind of judgement (pair, ranking, rating, ties)."""
        if self.mode == "implicit-reward":
            return {}
        if self.benchmark == "rewardbench2":
            shown = {"rankings": ("ranking", self.template or DEFAULT_RANKING_TEMPLATE),
                     "pairwise": ("pair", self.template_name),
                     "ratings": ("rating", self.rating_template or DEFAULT_RATING_TEMPLATE)}[self.mode]
            return dict([shown, ("ties", self.ties_template or DEFAULT_TIES_TEMPLATE)])
        if self.mode == "ratings":
            return {"rating": self.rating_template or DEFAULT_RATING_TEMPLATE}
        return {"pair": self.template_name}

    def _check_new_benchmark(self) -> None:
        if self.both_orders:
            raise ValueError(f"{self.benchmark} judges every pair in both orders; both_orders is for rewardbench and "
                             "pairwise runs")
        kinds = self.template_names()
        for flag, value, used in (("template", self.template, "pair" in kinds or "ranking" in kinds),
                                  ("rating-template", self.rating_template, "rating" in kinds),
                                  ("ties-template", self.ties_template, "ties" in kinds)):
            if value is not None and not used:
                raise ValueError(f"--{flag} is not used by {self.benchmark} in {self.mode} mode")
        for kind, name in kinds.items():
            TEMPLATE_GETTERS[kind](name)

    def check(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark {self.benchmark!r}: choose one of {BENCHMARKS}")
        if self.mode not in BENCHMARK_MODES[self.benchmark]:
            raise ValueError(f"mode {self.mode!r}: choose one of {BENCHMARK_MODES[self.benchmark]} for {self.benchmark}")
        if self.benchmark in NEW_BENCHMARKS:
            self._check_new_benchmark()
        elif self.rating_template is not None or self.ties_template is not None:
            raise ValueError(f"rating templates are not used by {self.benchmark}")
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
            if self.benchmark not in NEW_BENCHMARKS:
                get_template(self.template_name)
        if self.max_new_tokens is not None and self.mode not in GENERATIVE_MODES:
            raise ValueError(f"--max-new-tokens is used only in generative mode, not {self.mode}")
        if self.batch_size < 1:
            raise ValueError(f"batch size {self.batch_size}: must be >= 1")
        if self.memory_budget < 0:
            raise ValueError(f"memory budget {self.memory_budget}: must be >= 0 (GB; 0: a share of the available)")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise ValueError(f"shard {self.shard[0]}/{self.shard[1]}: need 0 <= index < count")

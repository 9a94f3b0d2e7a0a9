"""`judgejax pipeline`: prepare -> synth (stages 1-3) -> SFT -> synth (stage 4) -> DPO ->
RewardBench eval of base, SFT and DPO models -> HF export -> report. A stage whose output is
complete is skipped, so a rerun after a crash resumes (training stages from their checkpoints)."""

from __future__ import annotations

import dataclasses
import gc
import json
import pathlib
import sys
import time
from typing import Callable

import jax

from judgejax.data.jsonl import read_appended
from judgejax.eval.benchmarks import BENCHMARKS, decontamination_references
from judgejax.eval.options import EvalOptions
from judgejax.eval.run import evaluate, finish
from judgejax.general.judges import Judge
from judgejax.general.mtbench import run_mtbench
from judgejax.general.mtbench_data import mtbench_references
from judgejax.host import PeakRSS, release_heap, rss
from judgejax.judge.arena_teacher import ArenaTeacher
from judgejax.judge.decontam import Decontaminator, rewardbench_references
from judgejax.judge.templates import TEMPLATES
from judgejax.judge.synth import ChatTeacher, LabelTeacher, language_of, synthesize, synthesize_dpo
from judgejax.model.build import params_of
from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.model.hf_export import export_hf
from judgejax.pipeline.config import ARENA_TEACHER, PipelineConfig, stage_config
from judgejax.pipeline.report import write_report
from judgejax.sample.chat import LocalChat
from judgejax.sharding import make_mesh
from judgejax.sources.arena import SOURCE, build_pairs, read_judgements
from judgejax.sources.config import PrepareConfig
from judgejax.sources.pair import Pair, read_pairs, write_pairs
from judgejax.sources.prepare import prepare
from judgejax.sources.registry import SHIPPED_DIR
from judgejax.train.loop import run as train


MEASURES = ("seconds", "peak_rss_gb", "rss_after_gb")  # what `Pipeline.stage` adds to each stage's summary


def release() -> float | None:
    """Free what the finished stage left (cycles, compiled programs) and return the process's
    freed heap to the system (host.release_heap): the process then holds little more than at
    start instead of its peak. Returns what is resident after, in GB."""
    gc.collect()
    jax.clear_caches()
    release_heap()
    after = rss()
    return after and round(after / 1e9, 2)


def within(pair: Pair, max_chars: int) -> bool:
    """Whether a preference pair's question and answers together fit in `max_chars` (0: no limit)."""
    return not max_chars or len(pair.question) + len(pair.chosen) + len(pair.rejected) <= max_chars


class Pipeline:
    def __init__(self, config: PipelineConfig, command: str):
        self.config = config
        self.out = pathlib.Path(config.output_dir)
        self.command = command
        self.mesh = make_mesh(config.mesh)
        self.times: dict[str, float] = {}

    def path(self, *parts: str) -> pathlib.Path:
        return self.out.joinpath(*parts)

    def stage(self, name: str, work: Callable[[], dict]) -> dict:
        """Run `work` unless its done-marker exists; the marker holds the stage's summary, with its
        wall time and peak resident memory. The memory the stage freed goes back to the system
        when it ends (see `release`), so each stage's peak is its own."""
        marker = self.path("done", f"{name}.json")
        if marker.exists():
            print(f"[pipeline] {name}: done before, skipped", file=sys.stderr)
            return json.loads(marker.read_text())
        print(f"[pipeline] {name}: running", file=sys.stderr)
        began = time.time()
        with PeakRSS() as peak:
            summary = work()
        seconds, peak_gb = round(time.time() - began, 1), round(peak.bytes / 1e9, 2)
        summary = {**summary, **dict(zip(MEASURES, (seconds, peak_gb, release())))}
        print(f"[pipeline] {name}: {summary['seconds']} s, peak resident {summary['peak_rss_gb']} GB "
              f"({summary['rss_after_gb']} GB resident after it)", file=sys.stderr)
        if jax.process_index() == 0:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def write_pairs(self, name: str, pairs: list[Pair]) -> None:
        self.path("data").mkdir(parents=True, exist_ok=True)
        write_pairs(pairs, self.path("data", name))

    def prepare(self) -> dict:
        if self.config.synth.teacher == ARENA_TEACHER:
            return self.prepare_arena()
        section = self.config.prepare
        prepared = prepare(SHIPPED_DIR, PrepareConfig(sources=section.sources, seed=section.seed))
        pairs = [p for p in prepared.pairs if within(p, section.max_chars)]
        by_source: dict[str, list[Pair]] = {}
        for p in pairs:  # round-robin over sources, each in its seeded order
            by_source.setdefault(p.source, []).append(p)
        longest = max((len(g) for g in by_source.values()), default=0)
        mixed = [g[i] for i in range(longest) for g in by_source.values() if i < len(g)][: section.max_rows]
        self.write_pairs("prefs.jsonl", mixed)
        counts = {s: sum(p.source == s for p in mixed) for s in by_source}
        return {"read": len(prepared.pairs), "within_max_chars": len(pairs), "kept": len(mixed), "by_source": counts}

    def prepare_arena(self) -> dict:
        """Train and in-domain held-out pairs from GPT-4's critiques, decontaminated against the
        RewardBench prompts of `eval.data` and the MT-Bench questions."""
        by_question, skipped = read_judgements()
        named = [f"{name}={run['data']}" for name, run in self.benchmarks().items() if name in BENCHMARKS]
        checker = Decontaminator(rewardbench_references(self.config.eval.data) + mtbench_references()
                                 + decontamination_references(named))
        split = build_pairs(by_question, self.config.arena, lambda question: checker.check(question) is not None)
        languages = {TEMPLATES[name].language for name in self.config.synth.templates or TEMPLATES}

        def fits(pair: Pair) -> bool:
            return language_of(pair.question) in languages and within(pair, self.config.prepare.max_chars)

        train = [p for p in split.train if fits(p)]
        test = [p for p in split.test if fits(p)][: self.config.eval.heldout_limit or None]
        unfit, train = len(split.train) - len(train), train[: self.config.prepare.max_rows]
        self.write_pairs("prefs.jsonl", train)
        self.write_pairs("heldout.jsonl", test)
        sft_min_gap = self.config.arena.sft_min_gap
        return {"read": sum(map(len, by_question.values())), "skipped": dict(skipped), **dict(split.counts),
                "train_over_max_chars_or_language": unfit, "kept": len(train), "kept_sft_gap": sum(p.grading.gap >= sft_min_gap for p in train),
                "heldout": len(test), "by_source": {SOURCE: len(train)}}

    def teacher(self):
        s = self.config.synth
        if s.teacher == "labels":
            return LabelTeacher(s.dpo_share, s.seed)
        if s.teacher == ARENA_TEACHER:
            return ArenaTeacher(read_pairs(self.path("data", "prefs.jsonl")), self.config.arena.sft_min_gap)
        return ChatTeacher(LocalChat(s.teacher, self.mesh))

    def synth(self) -> dict:
        return synthesize(read_pairs(self.path("data", "prefs.jsonl")), self.path("synth"), self.teacher(),
                          self.config.synth)

    def synth_dpo(self) -> dict:
        s = self.config.synth
        policy = ChatTeacher(LocalChat(str(self.path("sft")), self.mesh, batch_size=s.policy_batch_size))
        fallback = self.teacher() if s.teacher in ("labels", ARENA_TEACHER) else None
        return synthesize_dpo(self.path("synth"), policy,
                              dataclasses.replace(s, samples=s.policy_samples, temperature=s.policy_temperature), fallback)

    def train(self, stage: str, model: str, data: pathlib.Path) -> dict:
        run_config = stage_config(self.config, stage, model, str(data), str(self.path(stage)))
        train(run_config, stage)
        records = read_appended(self.path(stage, "metrics.jsonl"))
        return {"steps": len(records), "first_loss": records[0]["loss"] if records else None,
                "last_loss": records[-1]["loss"] if records else None,
                "last_metrics": records[-1] if records else {}}

    def benchmarks(self) -> dict[str, dict]:
        """Each benchmark a judge is scored on: RewardBench (with the eval section's subsets and
        limit), with the arena teacher every in-domain held-out pair, and `eval.benchmarks`."""
        e = self.config.eval
        out = {"rewardbench": dict(benchmark="rewardbench", data=e.data)}
        for name, run in e.benchmarks.items():
            out[name] = dict(benchmark=name, data=run.data or str(BENCHMARKS[name].shipped), modes=run.modes,
                             subsets=None, limit_per_subset=run.limit_per_subset or None, both_orders=False)
        if self.config.synth.teacher == ARENA_TEACHER:
            out["heldout"] = dict(benchmark="pairwise", data=str(self.path("data", "heldout.jsonl")),
                                  columns={"prompt": "question", "a": "chosen", "b": "rejected", "id": "id"},
                                  subsets=None, limit_per_subset=None)
        return out

    def evaluate(self, name: str, model: str) -> dict:
        """Every benchmark in every mode; {"<benchmark>-<mode>": summary}."""
        e, results = self.config.eval, {}
        for bench, data in self.benchmarks().items():
            for mode in data.pop("modes", ()) or e.modes:
                run = f"{bench}-{mode}"
                opts = EvalOptions.judging(e, mode=mode, model=model, out=str(self.path("eval", name, run)),
                                           mesh=self.config.mesh, **data)
                results[run] = evaluate(opts, self.mesh) or {}
        return results

    def mtbench(self) -> dict:
        m = self.config.mtbench
        models = [(name, LocalChat(path, self.mesh, max_new_tokens=m.max_new_tokens))
                  for name, path in (("base", self.config.base_model), ("sft", str(self.path("sft"))),
                                     ("dpo", str(self.path("dpo"))))]
        judge = Judge(LocalChat(m.judge, self.mesh, max_new_tokens=m.judge_max_new_tokens), pathlib.Path(m.judge).name)
        files = run_mtbench(self.path("mtbench"), models=models, judge=judge, limit=m.limit or None,
                            seed=self.config.prepare.seed, command=self.command)
        return {"report": str(files["md"]), "scores": json.loads(pathlib.Path(files["json"]).read_text())}

    def export(self) -> dict:
        model = load_model(self.path("dpo"), self.mesh)
        out = export_hf(params_of(model), model.cfg, assets_dir(self.path("dpo")), self.path("judge-hf"),
                        dtype=self.config.export_dtype)
        return {"folder": str(out)}

    def report_so_far(self) -> pathlib.Path:
        """The report of the finished stages (training must be done) and of every finished
        evaluation run, each merged again from its per-example records."""
        summaries = {p.stem: json.loads(p.read_text()) for p in sorted(self.path("done").glob("*.json"))}
        missing = [s for s in ("prepare", "synth", "sft", "synth_dpo", "dpo") if s not in summaries]
        if missing:
            raise ValueError(f"{self.out}: stages {missing} not finished; the report needs the training stages")
        for name in ("base", "sft", "dpo"):
            finished = {}
            for run in sorted(self.path("eval", name).glob("*/run.json")):
                try:
                    finished[run.parent.name] = finish(run.parent)
                except ValueError as error:  # MergeError: judgements missing; or a shard cut short
                    print(f"[pipeline] {run.parent}: not finished ({error}), left out of the report", file=sys.stderr)
            summaries[f"eval_{name}"] = {**finished, **{k: v for k, v in summaries.get(f"eval_{name}", {}).items()
                                                       if k in MEASURES}}
        return write_report(self.out, self.config, summaries, self.command)

    def run(self) -> pathlib.Path:
        if not pathlib.Path(self.config.eval.data).is_file():
            raise FileNotFoundError(f"eval.data={self.config.eval.data}: RewardBench parquet not found (see README: "
                                    "the filtered split of allenai/reward-bench)")
        base = self.config.base_model
        summaries = {
            "prepare": self.stage("prepare", self.prepare),
            "synth": self.stage("synth", self.synth),
            "sft": self.stage("sft", lambda: self.train("sft", base, self.path("synth", "sft.jsonl"))),
            "synth_dpo": self.stage("synth_dpo", self.synth_dpo),
            "dpo": self.stage("dpo", lambda: self.train("dpo", str(self.path("sft")), self.path("synth", "dpo.jsonl"))),
            "eval_base": self.stage("eval_base", lambda: self.evaluate("base", base)),
            "eval_sft": self.stage("eval_sft", lambda: self.evaluate("sft", str(self.path("sft")))),
            "eval_dpo": self.stage("eval_dpo", lambda: self.evaluate("dpo", str(self.path("dpo")))),
            "export": self.stage("export", self.export),
        }
        if self.config.mtbench.judge:
            summaries["mtbench"] = self.stage("mtbench", self.mtbench)
        return write_report(self.out, self.config, summaries, self.command)

"""Running a pairwise evaluation: pick the examples, split the judgements over shards (one per
process by default), judge this shard's pending ones in length-sorted batches, and when every
shard is done, merge, score and report.

Output folder:
  run.json                   what determines the results (checked on resume), expected keys, the options
  shard-{i}-of-{n}.jsonl     per-judgement records of shard i, appended as they are made
  results.jsonl              the merged records (exactly the expected ones, once each)
  summary.json, report.md, scores.png
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from tqdm import tqdm

from judgejax.budget import sampler_budget
from judgejax.data.hashing import file_sha256
from judgejax.data.jsonl import append_jsonl, read_appended
from judgejax.eval import benchmarks
from judgejax.eval.batching import ids_hash
from judgejax.eval.examples import (Item, PairExample, load_pairwise, load_rewardbench, make_items,
                                    select_examples)
from judgejax.eval.generative import GenerativeJudge
from judgejax.eval.implicit_reward import ImplicitRewardJudge
from judgejax.eval.options import GENERATIVE_MODES, TEMPLATE_GETTERS, EvalOptions
from judgejax.eval.report import write_report
from judgejax.eval.shards import MergeError, merge_shards, record_key, shard_path, write_merged
from judgejax.eval.summary import json_ready, summarize
from judgejax.eval.verdict_prob import VerdictProbJudge
from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sample.buckets import DEFAULT_BUCKETS
from judgejax.sharding import data_parallel_size, make_mesh
from judgejax.tokenizer import assets_stop_ids, load_tokenizer

RUN_FILE = "run.json"
SUMMARY = "summary.json"


class Judge(Protocol):
    """One evaluation mode: encodes an item (its prompt ids and whatever else it scores) and
    judges a batch of encoded items into per-item record fields, `result` among them."""

    mode: str

    def encode(self, item: Item) -> Any: ...

    def length(self, encoded: Any) -> int: ...

    def prompt_ids(self, encoded: Any) -> list[int]: ...

    def judge(self, items: Sequence[Item], encoded: Sequence[Any]) -> list[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """Everything that determines an evaluation's records; a resumed run must match it exactly."""

    benchmark: str
    mode: str
    model: str
    reference: str | None
    data: str
    data_sha256: str
    columns: dict[str, str] | None
    template: str | None
    seed: int
    both_orders: bool
    max_new_tokens: int | None
    subsets: list[str] | None
    limit_per_subset: int | None
    num_shards: int
    param_dtype: str
    compute_dtype: str
    rating_template: str | None = None
    ties_template: str | None = None


def fingerprint(path: str | Path) -> str:
    """SHA-256 of a data file, or of a folder's files (names and bytes, in name order)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + bytes.fromhex(file_sha256(file)))
    return digest.hexdigest()


def load_examples(opts: EvalOptions) -> list[PairExample]:
    if opts.benchmark == "rewardbench":
        examples = load_rewardbench(opts.data)
    else:
        examples = load_pairwise(opts.data, opts.columns or {})
    return select_examples(examples, opts.subsets, opts.limit_per_subset, opts.seed)


def plan_items(opts: EvalOptions, examples: Sequence[PairExample]) -> list[Item]:
    if opts.mode == "implicit-reward":
        return [Item(e, False, True) for e in examples]
    return make_items(examples, opts.seed, opts.both_orders)


def plan_run(opts: EvalOptions) -> tuple[list[Any], dict[str, Any] | None]:
    """The judgements of a run, and (for the benchmarks of `benchmarks.BENCHMARKS`) the input rows
    skipped, by reason."""
    if opts.benchmark not in benchmarks.BENCHMARKS:
        return plan_items(opts, load_examples(opts)), None
    bench = benchmarks.BENCHMARKS[opts.benchmark]
    rows, bad = bench.load(opts.data)
    rows = select_examples(rows, opts.subsets, opts.limit_per_subset, opts.seed)
    return bench.plan(rows, opts.mode, opts.seed), bad.as_dict()


def prepare_run(out_dir: Path, spec: EvalSpec, items: Sequence[Any], options: dict[str, Any],
                bad_input: dict[str, Any] | None = None) -> None:
    """Write run.json, or check that the one there describes the same run (then record the options
    of this, the latest, invocation, and the input rows skipped)."""
    run = {"spec": dataclasses.asdict(spec), "expected": [list(item.key) for item in items], "options": options}
    if bad_input is not None:
        run["bad_input"] = bad_input
    path = out_dir / RUN_FILE
    if path.exists():
        stored = json.loads(path.read_text())
        different = sorted(k for k in run["spec"] if stored["spec"].get(k) != run["spec"][k])
        if different or stored["expected"] != run["expected"]:
            details = "; ".join(f"{k}: {stored['spec'].get(k)!r} there, {run['spec'][k]!r} now" for k in different)
            raise ValueError(f"{out_dir} holds another run ({details or 'different examples'}); "
                             "use a new --out folder or the same settings")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(run, indent=1))
    tmp.replace(path)


def _base_record(item: Item, prompt_ids: list[int]) -> dict[str, Any]:
    return item.record_fields() | {"prompt_hash": ids_hash(prompt_ids), "n_prompt_tokens": len(prompt_ids)}


def run_shard(judge: Judge, items: Sequence[Item], out_dir: Path, shard: int, count: int, batch_size: int,
              show_progress: bool = True) -> int:
    """Judge this shard's items (every `count`-th, from `shard`) that its file does not hold yet,
    longest first in batches of `batch_size`; returns how many were judged now."""
    path = shard_path(out_dir, shard, count)
    mine = list(items[shard::count])
    done = {record_key(r) for r in read_appended(path)}
    stray = done - {item.key for item in mine}
    if stray:
        raise ValueError(f"{path} holds {len(stray)} judgements that are not this shard's, e.g. {sorted(stray)[:3]}")
    pending = [item for item in mine if item.key not in done]
    if not pending:
        return 0
    encoded = [judge.encode(item) for item in tqdm(pending, desc="tokenizing", disable=not show_progress)]
    longest = max(DEFAULT_BUCKETS)
    for item, enc in zip(pending, encoded):
        if judge.length(enc) > longest:
            e = item.example
            raise ValueError(f"row {e.row} ({e.swap_key}): {judge.length(enc)} tokens exceed the longest "
                             f"supported length {longest}")
    order = sorted(range(len(pending)), key=lambda i: -judge.length(encoded[i]))
    with tqdm(total=len(mine), initial=len(done), desc=f"{judge.mode} {shard + 1}/{count}",
              disable=not show_progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            fields = judge.judge([pending[i] for i in batch], [encoded[i] for i in batch])
            append_jsonl(path, [_base_record(pending[i], judge.prompt_ids(encoded[i])) | f for i, f in zip(batch, fields)])
            bar.update(len(batch))
    return len(pending)


def finish(out_dir: str | Path) -> dict[str, Any]:
    """Merge the shard files (failing unless every expected judgement is there exactly once),
    write results.jsonl, summary.json and the report; returns the summary."""
    out_dir = Path(out_dir)
    path = out_dir / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(f"{out_dir}: no {RUN_FILE}; not an evaluation folder")
    run = json.loads(path.read_text())
    spec = run["spec"]
    records = merge_shards(out_dir, spec["num_shards"], [(row, swapped) for row, swapped in run["expected"]])
    write_merged(out_dir, records)
    if spec["benchmark"] in benchmarks.BENCHMARKS:
        summary = json_ready(benchmarks.summarize(records, run))
        (out_dir / SUMMARY).write_text(json.dumps(summary, indent=1, allow_nan=False))
        benchmarks.write_report(out_dir, summary, run)
        return summary
    summary = summarize(records, benchmark=spec["benchmark"], mode=spec["mode"], both_orders=spec["both_orders"])
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=1, allow_nan=False))
    write_report(out_dir, summary, run)
    return summary


def build_judge(opts: EvalOptions, mesh: Mesh, share_and_pack: bool = True) -> Judge:
    """Load the model(s) and tokenizer and make the mode's judge. `share_and_pack=False` prefills
    every prompt whole in a row of its own (same results; for comparing the speed of both)."""
    dtypes = dict(param_dtype=opts.param_dtype, compute_dtype=opts.compute_dtype)
    assets = assets_dir(opts.model)
    tokenizer = load_tokenizer(assets)
    model = load_model(opts.model, mesh, **dtypes)
    multiple = data_parallel_size(mesh)
    if opts.mode == "implicit-reward":
        reference_tokenizer = load_tokenizer(assets_dir(opts.reference))
        if reference_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise ValueError(f"the reference {opts.reference} has another vocabulary than the policy {opts.model}")
        reference = load_model(opts.reference, mesh, **dtypes)
        return ImplicitRewardJudge(model, reference, tokenizer, source=opts.data, batch_multiple=multiple)
    templates = {kind: TEMPLATE_GETTERS[kind](name) for kind, name in opts.template_names().items()}
    if opts.mode == "verdict-prob":
        return VerdictProbJudge(model, tokenizer, templates["pair"], batch_multiple=multiple,
                                share_and_pack=share_and_pack)
    return GenerativeJudge(model, tokenizer, templates.get("pair"), stop_ids=assets_stop_ids(tokenizer, assets),
                           batch_multiple=multiple, memory_budget=sampler_budget(opts.memory_budget, "eval.memory_budget"),
                           max_new_tokens=opts.new_token_limit, share_and_pack=share_and_pack,
                           rating_template=templates.get("rating"), ties_template=templates.get("ties"),
                           ranking_template=templates.get("ranking"))


def _spec(opts: EvalOptions, num_shards: int) -> EvalSpec:
    names = opts.template_names()
    return EvalSpec(
        benchmark=opts.benchmark, mode=opts.mode, model=str(Path(opts.model).resolve()),
        reference=str(Path(opts.reference).resolve()) if opts.reference else None,
        data=str(Path(opts.data).resolve()), data_sha256=fingerprint(opts.data), columns=opts.columns,
        template=names.get("pair", names.get("ranking")), rating_template=names.get("rating"),
        ties_template=names.get("ties"), seed=opts.seed, both_orders=opts.both_orders,
        max_new_tokens=opts.new_token_limit if opts.mode in GENERATIVE_MODES else None,
        subsets=list(opts.subsets) if opts.subsets else None, limit_per_subset=opts.limit_per_subset,
        num_shards=num_shards, param_dtype=opts.param_dtype, compute_dtype=opts.compute_dtype,
    )


def evaluate(opts: EvalOptions, mesh: Mesh | None = None) -> dict[str, Any] | None:
    """Run this process's shard; then, once every shard is done, merge and report. Returns the
    summary where this call merged, None where other shards are still to finish.

    Without `opts.shard`, each JAX process is one shard and evaluates it on a mesh of its own
    local devices (the model is loaded on every host); process 0 merges after all are done.
    """
    opts.check()
    processes = jax.process_count()
    if opts.shard is not None and processes > 1:
        raise ValueError("--shard is for independent single-process jobs; this run has "
                         f"{processes} JAX processes, which are its shards")
    shard, count = opts.shard or (jax.process_index(), processes)
    items, bad_input = plan_run(opts)
    out_dir = Path(opts.out)
    prepare_run(out_dir, _spec(opts, count), items, opts.recorded(), bad_input)
    if mesh is None:
        mesh = make_mesh(opts.mesh, devices=jax.local_devices())
    with jax.set_mesh(mesh):
        judge = build_judge(opts, mesh)
        run_shard(judge, items, out_dir, shard, count, opts.batch_size, show_progress=jax.process_index() == 0)
    if processes > 1:
        multihost_utils.sync_global_devices("judgejax eval: every shard written")
        return finish(out_dir) if jax.process_index() == 0 else None
    try:
        return finish(out_dir)
    except MergeError as error:
        if opts.shard is None or error.duplicated or error.unexpected:
            raise
        print(f"shard {shard}/{count} done; {len(error.missing)} judgements of other shards still missing. When all "
              f"{count} shards are done, the last one merges, or run: judgejax eval merge {out_dir}")
        return None

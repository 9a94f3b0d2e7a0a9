"""Does a judge tell the two A/B orders of a pair apart? Teacher-forced, on its SFT data.

Each SFT row of a judge's training data (a pipeline's synth/sft.jsonl: one row per pair and A/B
order, the teacher's analysis and verdict as the target) has a twin: the same pair shown in the
other order, whose target says the opposite about each slot. For every row, this scores the
judge's summed log-probability of its own target and of its twin's target, both after the row's
own prompt. A judge that reads which answer sits in which slot finds its own target likelier; one
that writes the critiques from the question alone finds the two about equally likely. Unlike a
generative eval, no sampling is involved: it asks whether the judge prefers the right critique,
not whether greedy decoding writes it.

Prints, per model: rows, the share whose own target is likelier and the mean log-probability
margin (nats per row and per target token), each with a 95% bootstrap interval resampling pairs
(a pair's two orders together).

  python tools/order_probe.py --sft runs/learning-curve/pipeline/synth/sft.jsonl \\
      --ids runs/learning-curve/train-sample.jsonl \\
      --models SmolLM2-135M-Instruct runs/learning-curve/lr-5e-05/sft
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys
import tempfile


from judgejax.commands.common import model_path
from judgejax.data.config import DataConfig
from judgejax.data.jsonl import read_appended, write_jsonl
from judgejax.data.load import load_preference_examples
from judgejax.eval.bootstrap import format_interval, mean_interval
from judgejax.model.build import params_of
from judgejax.model.checkpoint import assets_dir, load_model
from judgejax.sharding import MeshConfig, make_mesh
from judgejax.tokenizer import load_tokenizer
from judgejax.train.reference import compute_reference_logps


def twin_rows(sft_rows: list[dict], ids: set[str] | None) -> list[dict]:
    """Preference rows: the row's prompt, its own target as `chosen`, its twin's as `rejected`."""
    by_pair = collections.defaultdict(dict)
    for row in sft_rows:
        if ids is None or row["id"] in ids:
            by_pair[row["id"], row["template"], row["sample"]][row["swapped"]] = row
    out = []
    for (pair_id, _, _), orders in sorted(by_pair.items()):
        if len(orders) != 2:
            continue
        for swapped, row in orders.items():
            out.append({"id": pair_id, "swapped": swapped, "prompt": row["messages"][:-1],
                        "chosen": [row["messages"][-1]], "rejected": [orders[not swapped]["messages"][-1]]})
    return out


def probe(model: str, rows_path: pathlib.Path, rows: list[dict], mesh, max_length: int) -> dict:
    path = model_path(model)
    loaded = load_model(path, mesh)
    buckets = tuple(sorted({b for b in (256, 512, 768, 1024) if b < max_length} | {max_length}))
    data = DataConfig(str(rows_path), max_length=max_length, bucket_lengths=buckets, global_batch_size=8)
    examples, stats = load_preference_examples(data, load_tokenizer(assets_dir(path)))
    if stats.kept != len(rows):
        sys.exit(f"{rows_path}: {len(rows) - stats.kept} of {len(rows)} rows were dropped or cut at "
                 f"--max-length {max_length}; raise it")
    logps = compute_reference_logps(loaded.cfg, params_of(loaded), examples, data, mesh, 1024)
    margins, per_token, wins = (collections.defaultdict(list) for _ in range(3))
    for row, example, own, twin in zip(rows, examples, logps["chosen"], logps["rejected"]):
        margin = float(own - twin)
        margins[row["id"]].append(margin)
        per_token[row["id"]].append(margin / (len(example.chosen_ids) + len(example.rejected_ids)) * 2)
        wins[row["id"]].append(float(margin > 0))
    return {"model": model, "rows": len(rows), "own_likelier": mean_interval(wins),
            "margin_nats": mean_interval(margins), "margin_nats_per_token": mean_interval(per_token)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sft", required=True, help="a pipeline's synth/sft.jsonl")
    parser.add_argument("--ids", help="keep only the pairs whose `id` is in this JSONL (e.g. a sample of them)")
    parser.add_argument("--models", nargs="+", required=True, help="judges: paths, runs or SmolLM2-135M-Instruct")
    parser.add_argument("--max-length", type=int, default=1536, help="prompt + target tokens; longer rows stop the probe")
    parser.add_argument("--out", help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    ids = {row["id"] for row in read_appended(args.ids, repair=False)} if args.ids else None
    rows = twin_rows(read_appended(args.sft, repair=False), ids)
    if not rows:
        sys.exit(f"{args.sft}: no pair has both orders" + (f" among the ids of {args.ids}" if ids else ""))
    mesh = make_mesh(MeshConfig(data=-1))
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = pathlib.Path(tmp) / "twins.jsonl"
        write_jsonl(rows_path, rows)
        results = [probe(model, rows_path, rows, mesh, args.max_length) for model in args.models]
    print(f"\n{len(rows)} rows ({len(rows) // 2} pairs x 2 orders) of {args.sft}; own target vs the other order's, "
          "teacher-forced; 95% intervals resample pairs\n")
    print("| judge | own target likelier | margin, nats per row | margin, nats per token |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {format_interval(r['own_likelier'])}% | {format_interval(r['margin_nats'], 1, 2)} "
              f"| {format_interval(r['margin_nats_per_token'], 1, 4)} |")
    print("\nReproduce: `python tools/order_probe.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

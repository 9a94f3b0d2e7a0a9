"""Two judges' evaluations of the same examples side by side: each one's both-order accuracy,
consistency and P(verdict=A) with 95% bootstrap intervals, and the paired interval of each
difference (second minus first) over the examples both judged, the same draws for both.

  python tools/compare_evals.py runs/learning-curve/lr-5e-05/step-100/heldout-generative \\
      runs/learning-curve/dpo-step10/heldout-generative --cluster-by-prompt

Reads each folder's merged records (`judgejax eval ... --out FOLDER`, both orders). With
--cluster-by-prompt, arena pairs of one prompt are resampled together (they share its question),
as the pipeline's report does for the in-domain held-out pairs.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from judgejax.data.jsonl import read_appended
from judgejax.eval.bootstrap import format_interval, run_differences, run_intervals
from judgejax.eval.shards import MERGED
from judgejax.sources.arena import prompt_of_example

SHOWN = (("mean_accuracy", "both-order accuracy"), ("consistency", "consistency"), ("p_verdict_a", "P(verdict=A)"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=pathlib.Path, help="evaluation folder of the first judge")
    parser.add_argument("second", type=pathlib.Path, help="evaluation folder of the second judge")
    parser.add_argument("--cluster-by-prompt", action="store_true",
                        help="resample arena pairs by prompt (ids arena-bench-v1/<prompt>/...)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    records = []
    for folder in (args.first, args.second):
        if not (folder / MERGED).is_file():
            sys.exit(f"{folder}: no {MERGED} (an unfinished evaluation? `judgejax eval merge {folder}`)")
        records.append(read_appended(folder / MERGED, repair=False))
    cluster = prompt_of_example if args.cluster_by_prompt else None
    first, second = (run_intervals(r, str, seed=args.seed, cluster_of=cluster)["overall"] for r in records)
    try:
        diff = run_differences(*records, str, seed=args.seed, cluster_of=cluster)["overall"]
    except ValueError as error:  # no example in common
        sys.exit(f"{args.first} and {args.second}: {error}")
    print(f"{diff['num_examples']} examples judged by both ({diff['num_clusters']} resampled units), 95% intervals\n")
    print("| metric | first | second | second - first |\n|---|---|---|---|")
    for key, name in SHOWN:
        scale = 1 if key == "p_verdict_a" else 100
        digits = 2 if key == "p_verdict_a" else 1
        print(f"| {name} | {format_interval(first[key], scale, digits)} | {format_interval(second[key], scale, digits)} "
              f"| {format_interval(diff[key], scale, digits)} |")
    print(f"\nfirst: {args.first}\nsecond: {args.second}")


if __name__ == "__main__":
    main()

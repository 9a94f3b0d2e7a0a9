"""`judgejax data prepare`: every preference source -> one JSONL of pairs, decontaminated, deduplicated, balanced."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Turn the preference sources into one JSONL file of pairs
  {"id", "source", "source_row", "domain", "question", "prompt_messages", "chosen", "rejected"}
that the DPO trainer reads (data.columns.prompt: prompt_messages) and the judge synthesis builds judge
instructions from.

Sources (the layout of shared/data/preferences; see each adapter in judgejax/sources/):
  hh-rlhf          safety   HH-RLHF harmless-base test transcripts, split at the last "\\n\\nAssistant:"
  coconot          safety   CoCoNot contrast set: answer rather than over-refuse        (not shipped)
  llamafactory-en  general  LLaMA-Factory DPO demo conversations, English
  llamafactory-zh  general  LLaMA-Factory DPO demo conversations, Chinese
  prm800k          math     PRM800K step ratings: a correct vs a flawed continuation of one partial solution
  gsm8k            math     GSM8K reference solution vs a model solution with a wrong final answer
  debugbench       code     DebugBench oracle code vs the same code with one implanted bug   (not shipped)

Rows listed in decontam_exclusions.json are dropped; so are empty or identical answers and duplicates. Caps per
source and per domain keep a seeded random subset. A table of counts per source and per drop reason is printed.
Without --source-dir the subsets shipped in judgejax/pref_data are read (see its README.md for provenance and
licences).

Config (YAML, all keys optional; overrides as KEY=VALUE after the options):
  sources: [hh-rlhf, gsm8k]          default: every source found in the source dir
  max_per_source: {prm800k: 1000}    default: no cap
  max_per_domain: {safety: 1500}     default: no cap
  seed: 0                            the order of the output and which pairs a cap keeps
  on_error: raise                    or skip: count malformed source rows instead of stopping

Example:
  judgejax data prepare --source-dir shared/data/preferences --config configs/prepare-balanced.yaml \\
      --out runs/prefs.jsonl max_per_domain.safety=1000
"""


def register(sub) -> None:
    p = sub.add_parser("data", help="preference data: build the training pairs from the sources",
                       description="Preference data tools.")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = actions.add_parser("prepare", help="sources -> one decontaminated, balanced preference JSONL",
                           description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--out", required=True, help="JSONL file to write")
    q.add_argument("--source-dir", help="folder laid out like shared/data/preferences "
                                        "(default: the copies shipped in judgejax/pref_data)")
    q.add_argument("--config", help="YAML prepare config (e.g. configs/prepare-balanced.yaml)")
    q.add_argument("--exclusions", help="decontam_exclusions.json to apply (default: SOURCE_DIR/decontam_exclusions.json)")
    q.add_argument("--decontaminate", nargs="+", metavar="[BENCHMARK=]PATH",
                   help="also drop pairs whose question overlaps these evaluation prompts (13-gram check): a "
                        "RewardBench v1 parquet, or rewardbench2=PATH, judgebench=PATH, rmbench=PATH (default: only "
                        "the exclusions file)")
    q.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. seed=1 on_error=skip max_per_domain.safety=500 'sources=[gsm8k]'")
    q.set_defaults(func=main, single_process=True)  # files only: never joins a multi-host run


def main(args: argparse.Namespace) -> None:
    from judgejax.sources.config import load_prepare_config
    from judgejax.sources.pair import write_pairs
    from judgejax.sources.prepare import format_report, prepare
    from judgejax.sources.registry import SHIPPED_DIR

    source_dir = args.source_dir or SHIPPED_DIR
    try:
        config = load_prepare_config(args.config, args.overrides)
        prepared = prepare(source_dir, config, args.exclusions)
    except (ValueError, FileNotFoundError) as e:  # bad config, source row (DataError) or missing file
        raise SystemExit(f"judgejax data prepare: {e}") from e
    pairs = prepared.pairs
    if args.decontaminate:
        from judgejax.eval.benchmarks import decontamination_references
        from judgejax.judge.decontam import Decontaminator

        checker = Decontaminator(decontamination_references(args.decontaminate))
        pairs = [p for p in pairs if checker.check(p.question) is None]
        print(f"dropped {len(prepared.pairs) - len(pairs):,} pairs overlapping {', '.join(args.decontaminate)}",
              file=sys.stderr)
    n = write_pairs(pairs, args.out)
    print(format_report(prepared))
    print(f"wrote {n:,} pairs from {source_dir} to {args.out}", file=sys.stderr)

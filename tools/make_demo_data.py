"""Rebuild judgejax/demo_data/ from LLaMA-Factory's dpo_en_demo.json (Apache-2.0).

    python tools/make_demo_data.py /path/to/dpo_en_demo.json --exclusions /path/to/decontam_exclusions.json

Keeps the shortest 96 rows (so CPU demos stay fast), converts ShareGPT turns to chat messages,
and writes a preference file (prompt messages, chosen, rejected) and an SFT file (the prompt
followed by the chosen answer)."""

from __future__ import annotations

import argparse
import json
import pathlib

ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "judgejax" / "demo_data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="LLaMA-Factory data/dpo_en_demo.json")
    parser.add_argument("--exclusions", help="decontam_exclusions.json: rows overlapping evaluation sets are dropped")
    parser.add_argument("--rows", type=int, default=96)
    args = parser.parse_args()
    rows = json.loads(pathlib.Path(args.source).read_text())
    if args.exclusions:
        listed = json.loads(pathlib.Path(args.exclusions).read_text())["llamafactory/dpo_en_demo.json"]["rows"]
        dropped = {r["index"] for r in listed}
        rows = [r for i, r in enumerate(rows) if i not in dropped]
        print(f"dropped {len(dropped)} rows listed in {args.exclusions}")
    rows = sorted(rows, key=lambda r: len(json.dumps(r)))[: args.rows]
    with (OUT / "pref_en.jsonl").open("w") as pref, (OUT / "sft_en.jsonl").open("w") as sft:
        for row in rows:
            prompt = [{"role": ROLES[t["from"]], "content": t["value"]} for t in row["conversations"]]
            chosen, rejected = row["chosen"]["value"], row["rejected"]["value"]
            pref.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}, ensure_ascii=False) + "\n")
            sft.write(json.dumps({"messages": prompt + [{"role": "assistant", "content": chosen}]}, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()

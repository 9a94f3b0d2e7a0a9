"""Rebuild judgejax/pref_data/ (the preference data shipped with judgejax) from a full copy of the sources.

    python tools/vendor_preference_data.py SOURCE_DIR [--out judgejax/pref_data]

SOURCE_DIR is laid out like shared/data/preferences. Every input file is checked against the SHA-256 its README
states, then copied or cut to a prefix of its records, keeping the original's own serialisation, so a shipped row
is byte for byte the source's row with the same record index:
- hh-rlhf/harmless-base_test.jsonl.gz: the whole file (MIT).
- gsm8k/example_model_solutions.jsonl: the first 400 lines (MIT).
- llamafactory/dpo_en_demo.json, dpo_zh_demo.json: the first 100 / 150 list items, written as the originals are
  (json.dumps(indent=2, ensure_ascii=False) and a newline; checked to reproduce the full originals) (Apache-2.0).
- prm800k/phase1_train_plus.stepwise-critic.parquet: the first 200 runs of consecutive rows of one problem (the
  file keeps each problem's rows together; 4 of its 900 problems recur later), written by pyarrow with snappy
  compression and no pandas metadata (MIT).
- decontam_exclusions.json: the whole file.
CoCoNot and DebugBench are not shipped (licence; see judgejax/pref_data/README.md). MANIFEST.json records each
file's origin, the rule applied, the record counts and the SHA-256 of input and output. The same inputs give the same
bytes (the tests check the shipped copy against a fresh run). LICENSE and README files are kept by hand.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import pathlib

import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parent.parent / "judgejax" / "pref_data"
# SHA-256 of the inputs, from shared/data/preferences/README.md (the exclusions file: measured when vendored).
SHA256 = {
    "hh-rlhf/harmless-base_test.jsonl.gz": "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03",
    "llamafactory/dpo_en_demo.json": "b949be2421cfa62744afcf1b479f95b299d643d1a4c1c97d1341b314a1aa5cb3",
    "llamafactory/dpo_zh_demo.json": "9ea7206bc1a45df8b7811d1fc02d5555c65379d05905f343da88f221ff145376",
    "prm800k/phase1_train_plus.stepwise-critic.parquet": "dc9bcd2e6b3589055bdb2a7c90b8e09e2adb93612dc323e6b97852dc576c0444",
    "gsm8k/example_model_solutions.jsonl": "4bc62db838f8418365d51c627bd66294cbdca9fb7f01519cb13f0dce8c51580b",
    "decontam_exclusions.json": "82585f6618ffcfa3b3c38b070c7f8b708f7cd97ff6cafa032a79e7084958e9e3",
}
GSM8K_LINES = 400
LLAMAFACTORY_ITEMS = {"llamafactory/dpo_en_demo.json": 100, "llamafactory/dpo_zh_demo.json": 150}
PRM800K_PROBLEMS = 200


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def whole(raw: bytes) -> tuple[bytes, str, int, int]:
    return raw, "the whole file", -1, -1


def jsonl_prefix(raw: bytes, lines: int) -> tuple[bytes, str, int, int]:
    kept = raw.splitlines(keepends=True)
    return b"".join(kept[:lines]), f"the first {lines} lines", min(lines, len(kept)), len(kept)


def json_list_prefix(raw: bytes, items: int, name: str) -> tuple[bytes, str, int, int]:
    rows = json.loads(raw)

    def dump(value: list) -> bytes:
        return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    if dump(rows) != raw:
        raise SystemExit(f"{name}: json.dumps(indent=2, ensure_ascii=False) does not reproduce the file; "
                         "cannot cut it keeping its serialisation")
    return dump(rows[:items]), f"the first {items} list items", min(items, len(rows)), len(rows)


def parquet_problems(raw: bytes, problems: int) -> tuple[bytes, str, int, int]:
    table = pq.read_table(io.BytesIO(raw))
    instructions = table.column("instruction").to_pylist()
    starts = [i for i in range(len(instructions)) if i == 0 or instructions[i] != instructions[i - 1]]
    end = starts[problems] if problems < len(starts) else len(instructions)
    out = io.BytesIO()
    pq.write_table(table.slice(0, end).replace_schema_metadata(None), out, compression="snappy")
    return out.getvalue(), f"the first {problems} runs of rows of one problem", end, len(instructions)


RULES = {
    "hh-rlhf/harmless-base_test.jsonl.gz": whole,
    "gsm8k/example_model_solutions.jsonl": lambda raw: jsonl_prefix(raw, GSM8K_LINES),
    "llamafactory/dpo_en_demo.json": lambda raw: json_list_prefix(raw, LLAMAFACTORY_ITEMS["llamafactory/dpo_en_demo.json"], "dpo_en_demo.json"),
    "llamafactory/dpo_zh_demo.json": lambda raw: json_list_prefix(raw, LLAMAFACTORY_ITEMS["llamafactory/dpo_zh_demo.json"], "dpo_zh_demo.json"),
    "prm800k/phase1_train_plus.stepwise-critic.parquet": lambda raw: parquet_problems(raw, PRM800K_PROBLEMS),
    "decontam_exclusions.json": whole,
}


def vendor(source_dir: pathlib.Path, out: pathlib.Path) -> dict:
    """Writes the shipped files and MANIFEST.json into `out`; returns the manifest."""
    manifest = {}
    for name, rule in RULES.items():
        raw = (source_dir / name).read_bytes()
        if sha256(raw) != SHA256[name]:
            raise SystemExit(f"{source_dir / name}: SHA-256 {sha256(raw)} is not the expected {SHA256[name]}")
        data, subset, kept, total = rule(raw)
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
        entry = {"subset": subset, "source_sha256": SHA256[name], "sha256": sha256(data), "bytes": len(data)}
        if kept >= 0:
            entry["records"] = f"{kept} of {total}"
        manifest[name] = entry
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source_dir", type=pathlib.Path, help="full copy of the sources, e.g. shared/data/preferences")
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help=f"folder to write (default: {OUT})")
    args = parser.parse_args()
    manifest = vendor(args.source_dir, args.out)
    total = sum(entry["bytes"] for entry in manifest.values())
    for name, entry in manifest.items():
        print(f"{entry['bytes']:>9,}  {name}  ({entry['subset']})")
    print(f"{total:>9,}  bytes in all, written to {args.out}")


if __name__ == "__main__":
    main()

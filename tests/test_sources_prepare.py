"""`judgejax data prepare`: decontamination, checks, dedupe, balancing, errors, the shipped data and its vendoring,
and loading the output for DPO."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data_tokenizer import chatml_tokenizer
from test_sources_adapters import preferences_dir

from judgejax.cli import main as cli_main
from judgejax.data.columns import Columns
from judgejax.data.config import DataConfig
from judgejax.data.errors import DataError
from judgejax.data.load import load_preference_examples
from judgejax.sources.config import PrepareConfig, load_prepare_config
from judgejax.sources.pair import write_pairs
from judgejax.sources.prepare import format_report, prepare
from judgejax.sources.registry import SHIPPED_DIR

ROOT = Path(__file__).resolve().parents[1]
HH = "hh-rlhf/harmless-base_test.jsonl.gz"
SHIPPED_SOURCES = ("hh-rlhf", "llamafactory-en", "llamafactory-zh", "prm800k", "gsm8k")


@pytest.fixture(scope="module")
def shipped():
    return prepare(SHIPPED_DIR, PrepareConfig())


def test_shipped_data_is_what_the_vendor_script_makes(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools/vendor_preference_data.py"), str(preferences_dir()),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert made == ["MANIFEST.json", "decontam_exclusions.json", "gsm8k/example_model_solutions.jsonl", HH,
                    "llamafactory/dpo_en_demo.json", "llamafactory/dpo_zh_demo.json",
                    "prm800k/phase1_train_plus.stepwise-critic.parquet"]
    for name in made:
        assert (SHIPPED_DIR / name).read_bytes() == (tmp_path / name).read_bytes(), name
    hand_kept = sorted(p.relative_to(SHIPPED_DIR).as_posix() for p in SHIPPED_DIR.rglob("*")
                       if p.is_file() and p.relative_to(SHIPPED_DIR).as_posix() not in made)
    assert hand_kept == ["README.md", "gsm8k/LICENSE", "hh-rlhf/LICENSE", "llamafactory/LICENSE", "prm800k/LICENSE",
                         "prm800k/LICENSE.openai-prm800k"]
    assert sum((SHIPPED_DIR / name).stat().st_size for name in made) < 3_100_000
    # The HH file is the source's bytes; the others are prefixes of the sources' records.
    assert (SHIPPED_DIR / HH).read_bytes() == (preferences_dir() / HH).read_bytes()
    gsm8k = "gsm8k/example_model_solutions.jsonl"
    assert (preferences_dir() / gsm8k).read_bytes().startswith((SHIPPED_DIR / gsm8k).read_bytes())
    for name in ("llamafactory/dpo_en_demo.json", "llamafactory/dpo_zh_demo.json"):
        part, full = (json.loads((d / name).read_text()) for d in (SHIPPED_DIR, preferences_dir()))
        assert part == full[: len(part)]
    prm = "prm800k/phase1_train_plus.stepwise-critic.parquet"
    part, full = (pq.read_table(d / prm) for d in (SHIPPED_DIR, preferences_dir()))
    assert part.to_pylist() == full.slice(0, part.num_rows).to_pylist() and part.num_rows == 11642
    problems = part.column("instruction").to_pylist()
    runs = 1 + sum(a != b for a, b in zip(problems, problems[1:]))
    assert runs == 200 and len(set(problems)) == 199  # one problem's rows come in two runs
    assert full.column("instruction")[part.num_rows].as_py() != problems[-1]  # cut at the end of a run


def test_prepare_on_shipped_data_counts_and_exclusions(shipped):
    tallies = shipped.tallies
    assert list(tallies) == list(SHIPPED_SOURCES) and set(shipped.absent) == {"coconot", "debugbench"}
    assert tallies["hh-rlhf"].dropped == {"transcripts_diverge": 5, "decontam": 1, "empty_answer": 4}
    assert tallies["hh-rlhf"].kept == 2312 - 10
    assert (tallies["llamafactory-en"].kept, tallies["llamafactory-zh"].kept) == (100, 148)
    assert tallies["llamafactory-zh"].dropped == {"duplicate": 2}  # rows 136 and 82 repeat rows 1 and 46
    assert tallies["gsm8k"].dropped == {"no_wrong_final_answer": 55, "decontam": 1} and tallies["gsm8k"].kept == 344
    assert tallies["prm800k"].records == 11642 and tallies["prm800k"].kept == 564
    ids = {p.id for p in shipped.pairs}
    assert len(ids) == len(shipped.pairs) == 3458
    assert {"hh-rlhf/75", "gsm8k/326", "llamafactory-zh/136", "llamafactory-zh/82", "hh-rlhf/86"}.isdisjoint(ids)
    assert {"hh-rlhf/74", "gsm8k/325", "llamafactory-zh/1", "llamafactory-zh/46"} <= ids
    assert not any("rob a casino" in p.question for p in shipped.pairs)
    # The counts the README states are this run's.
    assert "```text\n" + format_report(shipped) + "\n```" in (SHIPPED_DIR / "README.md").read_text()


def test_shipped_pairs_equal_those_of_the_full_copy(shipped):
    full = prepare(preferences_dir(), PrepareConfig(sources=SHIPPED_SOURCES))
    by_id = {p.id: p.to_json() for p in full.pairs}
    assert all(by_id[p.id] == p.to_json() for p in shipped.pairs)


def test_decontam_drops_exactly_the_listed_rows(tmp_path):
    listed = json.loads((preferences_dir() / "decontam_exclusions.json").read_text())
    sources = ("hh-rlhf", "llamafactory-en", "gsm8k", "debugbench")
    kept = prepare(preferences_dir(), PrepareConfig(sources=sources))
    nothing = {k: ({**v, "rows": [], "invalid_pairs": []} if not k.startswith("_") else v) for k, v in listed.items()}
    (tmp_path / "none.json").write_text(json.dumps(nothing))
    unfiltered = prepare(preferences_dir(), PrepareConfig(sources=sources), tmp_path / "none.json")
    dropped = {p.id for p in unfiltered.pairs} - {p.id for p in kept.pairs}
    slugs = {row["slug"] for row in listed["debugbench/*.json"]["rows"]}
    slug_of = {f"debugbench/{f.stem}/{i}": row["slug"] for f in (preferences_dir() / "debugbench").glob("*.json")
               for i, row in enumerate(json.loads(f.read_text()))}
    by_slug = {pair_id for pair_id, slug in slug_of.items() if slug in slugs}
    assert len(by_slug) == sum(row["rows"] for row in listed["debugbench/*.json"]["rows"]) == 34
    assert dropped == {"hh-rlhf/75", "llamafactory-en/113", "llamafactory-en/250", "gsm8k/326"} | by_slug
    assert "debugbench/java_illegal_keywords/1" not in {p.id for p in unfiltered.pairs}  # equal answers anyway
    assert unfiltered.tallies["debugbench"].dropped["same_answers"] == 1
    assert kept.tallies["debugbench"].dropped["listed_invalid"] == 1
    casino = [p for p in unfiltered.pairs if p.id == "hh-rlhf/75"]
    assert casino[0].question == "How can I rob a casino?"


def test_prm800k_decontam_drops_every_pair_of_a_listed_problem(tmp_path):
    listed = json.loads((preferences_dir() / "decontam_exclusions.json").read_text())
    prm = "prm800k/phase1_train_plus.stepwise-critic.parquet"
    problems = {row["instruction"] for row in listed[prm]["rows"]}
    table = pq.read_table(SHIPPED_DIR / prm).column("instruction")
    assert len(problems & set(table.to_pylist())) == 2  # two listed problems are in the shipped rows
    (tmp_path / "none.json").write_text(json.dumps({prm: {**listed[prm], "rows": []}}))
    unfiltered = prepare(SHIPPED_DIR, PrepareConfig(sources=("prm800k",)), tmp_path / "none.json")
    result = prepare(SHIPPED_DIR, PrepareConfig(sources=("prm800k",)))
    listed_pairs = {p.id for p in unfiltered.pairs if p.question in problems}
    assert len(listed_pairs) == result.tallies["prm800k"].dropped["decontam"] == 4
    assert {p.id for p in unfiltered.pairs} - {p.id for p in result.pairs} == listed_pairs


def test_caps_keep_the_lowest_seeded_ranks_and_the_output_is_reproducible(tmp_path, shipped):
    config = PrepareConfig(max_per_source={"hh-rlhf": 100}, max_per_domain={"math": 50}, seed=3)
    capped = prepare(SHIPPED_DIR, config)
    counts = Counter(p.source for p in capped.pairs)
    domains = Counter(p.domain for p in capped.pairs)
    assert counts["hh-rlhf"] == 100 and domains == {"safety": 100, "math": 50, "general": 248}
    rank = lambda pair_id: hashlib.sha256(f"3\0{pair_id}".encode()).hexdigest()  # noqa: E731
    hh_all = sorted((p.id for p in shipped.pairs if p.source == "hh-rlhf"), key=rank)
    math_all = sorted((p.id for p in shipped.pairs if p.domain == "math"), key=rank)
    assert {p.id for p in capped.pairs if p.source == "hh-rlhf"} == set(hh_all[:100])
    assert {p.id for p in capped.pairs if p.domain == "math"} == set(math_all[:50])
    assert [p.id for p in capped.pairs] == sorted((p.id for p in capped.pairs), key=rank)
    assert capped.tallies["hh-rlhf"].dropped["over_source_cap"] == 2302 - 100
    assert sum(capped.tallies[s].dropped["over_domain_cap"] for s in ("prm800k", "gsm8k")) == 908 - 50
    write_pairs(capped.pairs, tmp_path / "a.jsonl")
    write_pairs(prepare(SHIPPED_DIR, config).pairs, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    other = prepare(SHIPPED_DIR, PrepareConfig(max_per_source={"hh-rlhf": 100}, seed=4))
    assert {p.id for p in other.pairs if p.source == "hh-rlhf"} != set(hh_all[:100])


def write_hh(folder: Path, lines: list[str]) -> Path:
    (folder / "hh-rlhf").mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / HH, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    (folder / "decontam_exclusions.json").write_text(json.dumps({HH: {"key": "0-based line number", "rows": []}}))
    return folder


def hh_line(question: str, chosen: str, rejected: str) -> str:
    return json.dumps({"chosen": f"\n\nHuman: {question}\n\nAssistant: {chosen}",
                       "rejected": f"\n\nHuman: {question}\n\nAssistant: {rejected}"})


def test_duplicates_and_equal_answers_are_dropped(tmp_path):
    lines = [hh_line("Hi?", "Hello.", "Go away."), hh_line("Hi?", "Hello.", "Go away."),
             hh_line("Hi?", "Hello.", " Hello. "), hh_line("Hi?", "Hello!", "Go away.")]
    result = prepare(write_hh(tmp_path, lines), PrepareConfig())
    assert result.tallies["hh-rlhf"].dropped == {"duplicate": 1, "same_answers": 1}
    assert sorted(p.id for p in result.pairs) == ["hh-rlhf/0", "hh-rlhf/3"]


def test_malformed_rows_name_file_line_and_field_or_are_counted(tmp_path):
    lines = [hh_line("Hi?", "Hello.", "Go away."), json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello."}),
             "{not json", json.dumps({"chosen": "Hello.", "rejected": "\n\nHuman: Hi?\n\nAssistant: x"})]
    folder = write_hh(tmp_path, lines)
    with pytest.raises(DataError, match=r"harmless-base_test\.jsonl\.gz line 2, field 'rejected': field is missing "
                                        r"or null \[missing_field\]"):
        prepare(folder, PrepareConfig())
    result = prepare(folder, PrepareConfig(on_error="skip"))
    tally = result.tallies["hh-rlhf"]
    assert tally.records == 4 and tally.kept == 1
    assert tally.skipped == {"missing_field": 1, "invalid_json": 1, "no_assistant_turn": 1}
    assert "skipped malformed rows of hh-rlhf: invalid_json 1, missing_field 1, no_assistant_turn 1" in format_report(result)


def test_malformed_rows_of_each_format(tmp_path):
    exclusions = {"llamafactory/dpo_en_demo.json": {"key": "0-based list index", "rows": []}}
    (tmp_path / "llamafactory").mkdir()
    good = {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello"},
            "rejected": {"from": "gpt", "value": "No"}}
    bad = {**good, "conversations": [{"from": "bot", "value": "Hi"}]}
    (tmp_path / "llamafactory/dpo_en_demo.json").write_text(json.dumps([good, bad]))
    (tmp_path / "decontam_exclusions.json").write_text(json.dumps(exclusions))
    with pytest.raises(DataError, match=r"dpo_en_demo\.json row 1, field 'conversations\[0\]\.from': unknown speaker "
                                        r"'bot'"):
        prepare(tmp_path, PrepareConfig(sources=("llamafactory-en",)))

    (tmp_path / "gsm8k").mkdir()
    solution = {"is_correct": False, "solution": "2 + 2 = 5\nA: 5"}
    row = {"question": "2 + 2?", "ground_truth": "2 + 2 = 4\nA: 4", "175b_verification": {**solution, "is_correct": "no"},
           "175b_finetuning": solution, "6b_verification": solution, "6b_finetuning": solution}
    (tmp_path / "gsm8k/example_model_solutions.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"example_model_solutions\.jsonl line 1, field '175b_verification\.is_correct'"):
        prepare(tmp_path, PrepareConfig(sources=("gsm8k",)))

    (tmp_path / "prm800k").mkdir()
    step = {"instruction": "1+1?", "responses": [], "next_response": "2", "answer": None, "is_human_response": False,
            "is_solution": True, "is_preferred_response": True, "rating": 2.0, "error_reason": None}
    pq.write_table(pa.Table.from_pylist([step]), tmp_path / "prm800k/phase1_train_plus.stepwise-critic.parquet")
    with pytest.raises(DataError, match=r"stepwise-critic\.parquet row 0, field 'rating': expected 1, 0, -1 or null"):
        prepare(tmp_path, PrepareConfig(sources=("prm800k",)))


def test_config_errors_name_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("seed: 1\nmax_per_domain: {math: 10}\nmax_per_source: {gsm8k: 5}\n")
    config = load_prepare_config(tmp_path / "c.yaml", ["max_per_domain.safety=7", "on_error=skip", "sources=[gsm8k]"])
    assert config == PrepareConfig(sources=("gsm8k",), max_per_source={"gsm8k": 5},
                                   max_per_domain={"math": 10, "safety": 7}, seed=1, on_error="skip")
    for overrides, message in ((["colour=red"], r"unknown key colour \(known: sources, "),
                               (["max_per_domain.cooking=3"], r"max_per_domain\.cooking: unknown name"),
                               (["max_per_source.gsm8k=-1"], r"max_per_source\.gsm8k must be a count >= 0"),
                               (["sources=[gsm9k]"], "unknown source 'gsm9k'"),
                               (["on_error=ignore"], "on_error='ignore': Input should be 'raise' or 'skip'"),
                               (["seed"], "expected key=value")):
        with pytest.raises(ValueError, match=message):
            load_prepare_config(tmp_path / "c.yaml", overrides)
    with pytest.raises(FileNotFoundError, match=r"source 'coconot' is configured but .* lacks coconot/coconot_pref\.jsonl"):
        prepare(SHIPPED_DIR, PrepareConfig(sources=("coconot",)))
    balanced = load_prepare_config(ROOT / "configs/prepare-balanced.yaml")
    assert balanced.max_per_domain == {"general": 2000, "safety": 2000, "math": 2000, "code": 2000}


def test_prepared_pairs_load_for_dpo_with_the_prompt_messages_column(tmp_path, shipped):
    sample = []
    for source in SHIPPED_SOURCES:
        rows = [p for p in shipped.pairs if p.source == source]
        sample += sorted(rows, key=lambda p: len(p.prompt_messages), reverse=True)[:3] + rows[:3]
    write_pairs(sample, tmp_path / "pairs.jsonl")
    config = DataConfig(path=str(tmp_path / "pairs.jsonl"), columns=Columns(prompt="prompt_messages"),
                        max_length=16384, bucket_lengths=(16384,))
    tokenizer = chatml_tokenizer()
    examples, stats = load_preference_examples(config, tokenizer)
    assert stats.rows_read == stats.kept == len(examples) == len(sample) == 30
    assert not stats.skipped and not stats.dropped and stats.truncated == 0
    for pair, example in zip(sample, examples):
        prompt = tokenizer.decode(example.prompt_ids)
        assert prompt.endswith(f"<|im_start|>user\n{pair.prompt_messages[-1]['content']}<|im_end|>\n<|im_start|>assistant\n")
        assert prompt.count("<|im_start|>") == len(pair.prompt_messages) + 1
        assert tokenizer.decode(example.chosen_ids) == pair.chosen + "<|im_end|>\n"
        assert tokenizer.decode(example.rejected_ids) == pair.rejected + "<|im_end|>\n"


def test_cli_writes_pairs_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "prefs.jsonl"
    assert cli_main(["data", "prepare", "--out", str(out), "sources=[llamafactory-en, gsm8k]", "seed=5"]) == 0
    printed = capsys.readouterr().out
    assert "| llamafactory-en | general |     100 |       0 |        100 |" in printed
    assert "kept per domain: general 100, safety 0, math 344, code 0" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 444 and set(rows[0]) == {"id", "source", "source_row", "domain", "question", "prompt_messages",
                                                 "chosen", "rejected"}
    with pytest.raises(SystemExit, match=r"judgejax data prepare: .*max_per_domain\.cooking: unknown name"):
        cli_main(["data", "prepare", "--out", str(out), "max_per_domain.cooking=3"])
    copy = shutil.copytree(SHIPPED_DIR, tmp_path / "copy")
    (copy / "decontam_exclusions.json").unlink()
    with pytest.raises(SystemExit, match=r"decontam_exclusions\.json: no exclusions file"):
        cli_main(["data", "prepare", "--out", str(out), "--source-dir", str(copy)])
    with pytest.raises(SystemExit):
        cli_main(["data", "prepare", "--help"])
    assert "--source-dir" in capsys.readouterr().out


def test_data_prepare_drops_pairs_overlapping_the_benchmarks(tmp_path, capsys):
    from judgejax.cli import main
    from test_bench_eval import rb2_rows, write_rb2

    plain = tmp_path / "plain.jsonl"
    main(["data", "prepare", "--out", str(plain), "sources=[llamafactory-en]"])
    pairs = [json.loads(line) for line in plain.read_text().splitlines()]
    rows = rb2_rows()
    rows[0]["prompt"] = pairs[3]["question"]  # a RewardBench 2 prompt that is a training question
    data = write_rb2(tmp_path / "rb2.parquet", rows)
    checked = tmp_path / "checked.jsonl"
    main(["data", "prepare", "--out", str(checked), "sources=[llamafactory-en]", "--decontaminate", f"rewardbench2={data}"])
    kept = [json.loads(line) for line in checked.read_text().splitlines()]
    assert [p["id"] for p in kept] == [p["id"] for p in pairs if p["question"] != pairs[3]["question"]]
    assert f"dropped {len(pairs) - len(kept)} pairs overlapping rewardbench2=" in capsys.readouterr().err

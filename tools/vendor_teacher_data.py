"""Copy the GPT-4 teacher judgements of Arena-Bench-V1 into judgejax/teacher_data in the compact form
`judgejax.sources.arena_teacher` reads: one JSON line per graded answer, gzipped.

    python tools/vendor_teacher_data.py ../shared/data/teacher/arena-bench-v1

Each line: question_id, question (the user turn), model, answer (the graded answer, cut out of the
grader's prompt), judgment (GPT-4's explanation ending in its rating), score (1-10 or null), and
source_row ("<judgment file> row <0-based line>"). Rows are copied as they are, null ratings
included: the adapter counts and skips them."""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "judgejax" / "teacher_data" / "arena-bench-v1"
ANSWER_START = "[The Start of Assistant's Answer]\n"
ANSWER_END = "\n[The End of Assistant's Answer]"


def graded_answer(user_prompt: str, where: str) -> str:
    if ANSWER_START not in user_prompt or ANSWER_END not in user_prompt:
        raise ValueError(f"{where}: field 'user_prompt' has no graded answer between the answer markers")
    return user_prompt.split(ANSWER_START, 1)[1].rsplit(ANSWER_END, 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the arena-bench-v1 folder (question.jsonl, model_judgment/)")
    args = parser.parse_args()
    questions = {}
    for line in (args.source / "question.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        questions[q["question_id"]] = q["turns"][0]
    rows = []
    for path in sorted((args.source / "model_judgment").glob("*.jsonl")):
        for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            j = json.loads(line)
            where = f"{path.name} row {index}"
            rows.append({"question_id": j["question_id"], "question": questions[j["question_id"]], "model": j["model"],
                         "answer": graded_answer(j["user_prompt"], where), "judgment": j["judgment"],
                         "score": j["score"], "source_row": f"model_judgment/{where}"})
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT / "judgements.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    shutil.copy(args.source / "LICENSE", OUT / "LICENSE")
    print(f"{len(rows)} judgements of {len(questions)} questions -> {OUT / 'judgements.jsonl.gz'}")


if __name__ == "__main__":
    main()

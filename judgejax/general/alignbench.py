"""AlignBench end to end: answers of the models under test, multi-dimensional reference-guided
grading by one judge, and the report of every model that judge graded.

Answers follow AlignBench's `get_answers.py`: the question is the only user message, the
temperature comes from `config/temperature.json` by primary category (0.7 otherwise), and empty
answers are asked again, up to 3 more rounds. Answer records are the question record plus
`model_id`, `answer_id` and `answer`; judgment records add `dimensions`, `judge_prompt`,
`judgment`, `rating` and `score`, as the official files do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from judgejax.data.jsonl import append_jsonl
from judgejax.general import alignbench_data as data
from judgejax.general.alignbench_prompt import JUDGEJAX_TEMPLATE, judge_prompt, official_template, parse_judgment
from judgejax.general.judges import Judge
from judgejax.general.layout import Layout, batch_seed, done_keys
from judgejax.general.records import field, read_objects
from judgejax.general.report import write_alignbench_report
from judgejax.general.runner import Run, copy_answers, judge_in_chunks, run_models, temperature_batches
from judgejax.sample.chat import PROMPT_TOO_LONG, Generation, LocalChat

REPREDICT_ROUNDS = 3


def generate_answers(chat: LocalChat, model: str, questions: Sequence[data.AlignQuestion], config: data.AlignConfig,
                     path: Path, *, seed: int) -> int:
    done = done_keys(path, lambda r: r["question_id"])
    pending = [q for q in questions if q.id not in done]
    if not pending:
        return 0
    batches = temperature_batches(pending, lambda q: config.temperature_for(q.category), lambda q: len(q.question),
                                  chat.batch_size)
    with tqdm(total=len(pending), desc=f"alignbench answers {model}", unit="question") as progress:
        for batch in batches:
            temperature = config.temperature_for(batch[0].category)
            seed_0 = batch_seed(seed, [q.id for q in batch])
            replies = [r for [r] in chat.complete([[{"role": "user", "content": q.question}] for q in batch],
                                                  temperature=temperature, seed=seed_0)]
            for round_ in range(1, REPREDICT_ROUNDS + 1):
                empty = [i for i, r in enumerate(replies) if not r.text and r.finish_reason != PROMPT_TOO_LONG]
                if not empty:
                    break
                again = [r for [r] in chat.complete([[{"role": "user", "content": batch[i].question}] for i in empty],
                                                    temperature=temperature, seed=seed_0 + round_)]
                for i, reply in zip(empty, again):
                    if reply.text:
                        replies[i] = reply
            append_jsonl(path, [_answer_record(q, model, r, temperature, chat, seed_0) for q, r in zip(batch, replies)])
            progress.update(len(batch))
    return len(pending)


def _answer_record(q: data.AlignQuestion, model: str, reply: Generation, temperature: float, chat: LocalChat,
                   seed: int) -> dict:
    return {
        "question_id": q.id, "category": q.category, "subcategory": q.subcategory, "question": q.question,
        "reference": q.reference, "model_id": model, "answer_id": f"{q.id}_{model}", "answer": reply.text,
        "generate_params": {"temperature": temperature, "method": repr(chat.method(temperature)),
                            "max_new_tokens": chat.max_new_tokens, "seed": seed},
        "finish_reason": reply.finish_reason, "tokens": reply.tokens,
    }


def load_answers(path: Path) -> dict[int, str]:
    answers = {}
    for ref, record in read_objects(path):
        answer = record.get("answer")
        answers[field(ref, record, "question_id", int)] = answer if isinstance(answer, str) else ""
    return answers


def import_answers(source: str | Path, model: str, layout: Layout) -> None:
    """Copy an answer file in AlignBench's format (question_id and answer per line) to
    `answers/{model}.jsonl`."""
    for ref, record in read_objects(source):
        field(ref, record, "question_id", int)
        field(ref, record, "answer", (str, type(None)))
    copy_answers(source, layout.answers(model))


def grade(judge: Judge, model: str, questions: Sequence[data.AlignQuestion], config: data.AlignConfig,
          template: tuple[str, str], layout: Layout) -> int:
    path = layout.judgments(judge.name, model)
    done = done_keys(path, lambda r: r["question_id"])
    pending = [q for q in questions if q.id not in done]
    if not pending:
        return 0
    answers_path = layout.answers(model)
    answers = load_answers(answers_path)
    text, source = template
    items = []
    for q in pending:
        if q.id not in answers:
            raise ValueError(f"{answers_path}: no answer to question {q.id}")
        dimensions, prompt = judge_prompt(text, q, answers[q.id], config)
        items.append((q, dimensions, prompt))
    items.sort(key=lambda item: len(item[2]))

    def record(item, reply) -> dict:
        q, dimensions, prompt = item
        rating, score = parse_judgment(reply.text)
        return {"question_id": q.id, "category": q.category, "subcategory": q.subcategory, "model_id": model,
                "answer": answers[q.id], "judge": judge.name, "prompt_source": source,
                "dimensions": dimensions, "judge_prompt": prompt, "judgment": reply.text,
                "rating": rating, "score": score, "finish_reason": reply.finish_reason, "tstamp": time.time()}

    return judge_in_chunks(judge, items, lambda item: [{"role": "user", "content": item[2]}], record, path,
                           f"alignbench judge {judge.name} on {model}")


def run_alignbench(data_dir: str | Path, out: str | Path, **run: Any) -> dict[str, Path] | None:
    """AlignBench read from `data_dir` (an AlignBench folder): `run_models` with the fields of `Run`
    as keywords. The judge prompt is the official one when `data_dir` holds AlignBench's judge.py,
    else judgejax's own."""
    run = Run(**run)
    config = data.load_config(data_dir)
    questions = data.load_questions(data_dir, config)[:run.limit]
    template = official_template(data_dir) or (JUDGEJAX_TEMPLATE, "judgejax wording (no judge.py in --data)")
    return run_models(out, run, import_answers=import_answers,
                      answer=lambda chat, name, path: generate_answers(chat, name, questions, config, path, seed=run.seed),
                      grade=lambda judge, name, layout: grade(judge, name, questions, config, template, layout),
                      report=write_alignbench_report)

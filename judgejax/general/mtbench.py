"""MT-Bench end to end: answers of the models under test, single-answer grading by one judge,
and the report of every model that judge graded.

Answers follow FastChat's `gen_model_answer.py`: one conversation per question in the model's own
chat template; turn 2 is asked after the model's own turn-1 answer; the temperature comes from
the question's category (0 = greedy); one choice per question. Records use FastChat's
`model_answer` format, so answers from FastChat (e.g. the reference models') can be graded too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from judgejax.data.jsonl import append_jsonl
from judgejax.general import mtbench_data as data
from judgejax.general.judges import Judge
from judgejax.general.layout import Layout, batch_seed, done_keys
from judgejax.general.mtbench_prompts import judge_request, parse_rating
from judgejax.general.report import write_mtbench_report
from judgejax.general.runner import Run, copy_answers, judge_in_chunks, run_models, temperature_batches
from judgejax.sample.chat import LocalChat


def generate_answers(chat: LocalChat, model: str, questions: Sequence[data.Question], path: Path, *, seed: int) -> int:
    """Answer the questions not yet in `path`, a batch at a time (one temperature per batch);
    returns how many were answered."""
    done = done_keys(path, lambda r: r["question_id"])
    pending = [q for q in questions if q.id not in done]
    if not pending:
        return 0
    batches = temperature_batches(pending, lambda q: data.temperature_for(q.category), lambda q: len(q.turns[0]),
                                  chat.batch_size)
    with tqdm(total=len(pending), desc=f"mtbench answers {model}", unit="question") as progress:
        for batch in batches:
            temperature = data.temperature_for(batch[0].category)
            seed_1 = batch_seed(seed, [q.id for q in batch])
            first = [a for [a] in chat.complete([[{"role": "user", "content": q.turns[0]}] for q in batch],
                                                temperature=temperature, seed=seed_1)]
            second = [a for [a] in chat.complete([[{"role": "user", "content": q.turns[0]},
                                                   {"role": "assistant", "content": a.text},
                                                   {"role": "user", "content": q.turns[1]}]
                                                  for q, a in zip(batch, first)],
                                                 temperature=temperature, seed=seed_1 + 1)]
            append_jsonl(path, [{
                "question_id": q.id,
                "answer_id": f"{q.id}_{model}",
                "model_id": model,
                "choices": [{"index": 0, "turns": [a1.text, a2.text]}],
                "tstamp": time.time(),
                "generate_params": {"temperature": temperature, "method": repr(chat.method(temperature)),
                                    "max_new_tokens": chat.max_new_tokens, "seed": seed_1},
                "finish_reasons": [a1.finish_reason, a2.finish_reason],
                "tokens": [a1.tokens, a2.tokens],
            } for q, a1, a2 in zip(batch, first, second)])
            progress.update(len(batch))
    return len(pending)


def import_answers(source: str | Path, model: str, layout: Layout) -> None:
    """Copy a FastChat-format answer file (checked) to `answers/{model}.jsonl`."""
    data.load_answers(source)
    copy_answers(source, layout.answers(model))


def grade(judge: Judge, model: str, questions: Sequence[data.Question], layout: Layout) -> int:
    """Judge both turns of every question not yet graded; returns how many judgments were made."""
    path = layout.judgments(judge.name, model)
    done = done_keys(path, lambda r: (r["question_id"], r["turn"]))
    pending = [(q, turn) for turn in (1, 2) for q in questions if (q.id, turn) not in done]
    if not pending:
        return 0
    answers_path = layout.answers(model)
    answers = data.load_answers(answers_path)
    references = data.load_reference_answers()
    prompts = data.load_judge_prompts()
    requests = []
    for q, turn in pending:
        if q.id not in answers:
            raise ValueError(f"{answers_path}: no answer to question {q.id}")
        requests.append((q, turn, judge_request(prompts, q, answers[q.id][0], references.get(q.id), turn)))
    requests.sort(key=lambda item: len(item[2].user_prompt))

    def record(item, reply) -> dict:
        q, turn, request = item
        return {"question_id": q.id, "model": model, "judge": [judge.name, request.prompt_name],
                "user_prompt": request.user_prompt, "judgment": reply.text, "score": parse_rating(reply.text),
                "turn": turn, "tstamp": time.time(), "category": q.category, "finish_reason": reply.finish_reason}

    return judge_in_chunks(judge, requests, lambda item: item[2].messages, record, path,
                           f"mtbench judge {judge.name} on {model}")


def run_mtbench(out: str | Path, **run: Any) -> dict[str, Path] | None:
    """MT-Bench: `run_models` over the shipped questions, with the fields of `Run` as keywords."""
    run = Run(**run)
    questions = data.load_questions()[:run.limit]
    return run_models(out, run, import_answers=import_answers,
                      answer=lambda chat, name, path: generate_answers(chat, name, questions, path, seed=run.seed),
                      grade=lambda judge, name, layout: grade(judge, name, questions, layout),
                      report=write_mtbench_report)


"""A replayable teacher: synthesis stage 2 through the OpenAI Batch API file format.

`write_requests` writes the teacher requests of every instruction not yet in judgements.jsonl as
a Batch API input file; a provider answers them offline, once; `replay` reads its output file
and runs stages 1-3 (`synthesize`) with the recorded replies as the teacher (`BatchReplies`).

Requests: one per (instruction, sample), with n=1, so that any provider takes them and a failed
request loses one sample, not k. Sampling requests carry seed + sample index (the k requests of
an instruction differ); greedy ones (temperature below GREEDY_BELOW) are asked once and the reply
used k times, as the chat backends do. The custom_id is `{row id}|{order}|{sample}|{digest}`, the
digest the first 10 hex digits of SHA-256 of the messages: replies are matched by the whole id
(never parsed), so a reply answers only the exact prompt it was asked, and one written for other
messages (--seed or --templates changed in between) is reported as unknown, never misattributed.

Replies: the first usable line of a custom_id is kept and a later usable one is a duplicate
(ignored, reported); a failed line is no answer, so a success after it (output files of a batch
and of its resubmission, concatenated) is used. A row is judged only when every request of both
its orders is answered; the other rows wait, nothing half-judged is written. Every usable reply
received (under these settings or others) is kept in `batch_replies.jsonl` and fills in what a later output
file lacks, so a rerun of `write_requests` asks only for replies never received."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from typing import Sequence

from judgejax.data.errors import DataError
from judgejax.data.jsonl import read_appended, read_jsonl, write_jsonl
from judgejax.judge.decontam import Decontaminator
from judgejax.judge.records import Instruction, Judgement, read_records
from judgejax.judge.synth import SynthConfig, stage_one, synthesize
from judgejax.judge.templates import TEMPLATES
from judgejax.sample.chat import Generation, distinct_samples, is_greedy
from judgejax.sources.pair import Pair

ENDPOINT = "/v1/chat/completions"
REPLIES = "batch_replies.jsonl"
# Problems with lines of an output file, then `missing_reply`: requests without a usable reply.
REASONS = ("not_json", "missing_custom_id", "unknown_custom_id", "duplicate_custom_id", "failed", "malformed",
           "no_verdict", "missing_reply")


def custom_id(inst: Instruction, sample: int) -> str:
    digest = hashlib.sha256(json.dumps(inst.messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    return f"{inst.id}|{inst.order}|{sample}|{digest[:10]}"


def request_ids(inst: Instruction, config: SynthConfig) -> list[str]:
    """The custom_ids of the requests asked for one instruction."""
    return [custom_id(inst, s) for s in range(distinct_samples(config.samples, config.temperature))]


def request(inst: Instruction, sample: int, model: str, config: SynthConfig) -> dict:
    body = {"model": model, "messages": inst.messages, "max_tokens": config.max_new_tokens,
            "temperature": 0 if is_greedy(config.temperature) else config.temperature}
    if not is_greedy(config.temperature):
        body["seed"] = config.seed + sample
    return {"custom_id": custom_id(inst, sample), "method": "POST", "url": ENDPOINT, "body": body}


class Unusable(Exception):
    """An output line that answers its request with no generation: `reason` failed or malformed."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_reply(record: dict) -> tuple[Generation, str]:
    """The generation of one output line, and the model the reply names ("" if none)."""
    if record.get("error"):
        raise Unusable("failed", f"field 'error': {json.dumps(record['error'])[:300]}")
    response = record.get("response")
    if not isinstance(response, dict):
        raise Unusable("malformed", "field 'response': missing or not an object")
    if response.get("status_code") != 200:
        raise Unusable("failed", f"field 'response.status_code': {response.get('status_code')!r}, "
                                 f"body {json.dumps(response.get('body'))[:300]}")
    body = response.get("body")
    try:
        [choice] = body["choices"]
        content = choice["message"]["content"]
    except (KeyError, TypeError, ValueError):
        raise Unusable("malformed", "field 'response.body.choices': not one choice with a message content")
    if content is not None and not isinstance(content, str):
        raise Unusable("malformed", "field 'response.body.choices[0].message.content': not a string")
    tokens = (body.get("usage") or {}).get("completion_tokens")
    tokens = tokens if isinstance(tokens, int) else 0
    return Generation(content or "", str(choice.get("finish_reason") or "stop"), tokens), str(body.get("model") or "")


def read_replies(path: pathlib.Path, expected: dict[str, Instruction]) -> tuple[dict[str, dict], dict[str, list[dict]], int]:
    """The usable replies of a Batch API output file by custom_id (`expected`: custom_id ->
    instruction), the problems by reason (each with line, custom_id, detail) and the line count."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: batch output file not found")
    replies: dict[str, dict] = {}
    problems: dict[str, list[dict]] = {reason: [] for reason in REASONS}
    lines = 0
    for number, record in read_jsonl(path, skip_bad=True):
        lines += 1
        if isinstance(record, DataError):
            problems["not_json"].append({"line": number, "detail": record.detail})
            continue
        cid = record.get("custom_id") if isinstance(record, dict) else None
        if not isinstance(cid, str) or not cid:
            problems["missing_custom_id"].append({"line": number, "detail": "field 'custom_id': missing or empty"})
            continue
        where = {"line": number, "custom_id": cid}
        if cid not in expected:
            problems["unknown_custom_id"].append({**where, "detail": "field 'custom_id': matches no request"})
            continue
        try:
            generation, model = parse_reply(record)
        except Unusable as e:
            problems[e.reason].append({**where, "detail": e.detail})
            continue
        if cid in replies:
            problems["duplicate_custom_id"].append({**where, "detail": f"answered on line {replies[cid]['line']}; "
                                                                         "this line is ignored"})
            continue
        replies[cid] = {"custom_id": cid, "line": number, "model": model, **dataclasses.asdict(generation)}
        if TEMPLATES[expected[cid].template].parse(generation.text) == "error":
            problems["no_verdict"].append({**where, "detail": "no verdict in the reply; judged as verdict 'error'"})
    return replies, problems, lines


class BatchReplies:
    """A teacher replaying recorded replies: `generations` maps (row id, order) to an instruction's
    n generations. An instruction without them is an error, never a made-up judgement."""

    def __init__(self, name: str, generations: dict[tuple[str, str], list[Generation]]):
        self.name, self.generations = name, generations

    def judge(self, instructions: Sequence[Instruction], n: int, config: SynthConfig,
              desc: str) -> list[list[Generation]]:
        keys = [i.key for i in instructions]
        missing = [key for key in keys if len(self.generations.get(key, ())) != n]
        if missing:
            raise ValueError(f"{self.name}: no {n} recorded replies for instructions {missing[:5]}")
        return [self.generations[key] for key in keys]

    def holds_out(self, row: dict) -> bool:
        return False


def not_judged(out: pathlib.Path, instructions: list[Instruction]) -> list[Instruction]:
    """The instructions not yet in judgements.jsonl."""
    done = {j.key for j in read_records(Judgement, out / "judgements.jsonl", appended=True)}
    return [i for i in instructions if i.key not in done]


def write_requests(pairs: list[Pair], out: pathlib.Path, path: pathlib.Path, model: str, config: SynthConfig,
                   checker: Decontaminator | None = None) -> dict:
    """Stage 1 into `out` (instructions.jsonl, decontamination.jsonl), and the Batch API requests
    for `model` of the instructions not yet judged into `path`, less those whose reply
    batch_replies.jsonl holds."""
    _, _, instructions = stage_one(pairs, out, config, checker)
    todo = not_judged(out, instructions)
    held = {r["custom_id"] for r in read_appended(out / REPLIES)}
    asked = [[(s, cid) for s, cid in enumerate(request_ids(i, config)) if cid not in held] for i in todo]
    requests = [request(i, s, model, config) for i, pending in zip(todo, asked) for s, _ in pending]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, requests)
    return {"requests_file": str(path), "requests": len(requests), "instructions_asked": sum(map(bool, asked)),
            "instructions_already_judged": len(instructions) - len(todo),
            "replies_already_received": sum(cid in held for i in todo for cid in request_ids(i, config))}


def replay(pairs: list[Pair], out: pathlib.Path, path: pathlib.Path, config: SynthConfig,
           checker: Decontaminator | None = None) -> tuple[dict, dict]:
    """Stages 1-3 into `out` with the replies of the Batch API output file `path` (and those
    batch_replies.jsonl holds) as the teacher, for the rows whose requests are all answered;
    returns batch_summary.json (problems by reason, rows awaiting replies) and summary.json."""
    _, _, instructions = stage_one(pairs, out, config, checker)
    todo = not_judged(out, instructions)
    expected = {cid: i for i in instructions for cid in request_ids(i, config)}
    replies, problems, lines = read_replies(path, expected)
    wanted = {cid for i in todo for cid in request_ids(i, config)}
    stored = {r["custom_id"]: r for r in read_appended(out / REPLIES)}  # other settings' replies are kept too
    held = {cid: r for cid, r in stored.items() if cid in wanted}
    known = {**held, **{cid: r for cid, r in replies.items() if cid in wanted}}
    problems["missing_reply"] = [{"custom_id": cid, "detail": "no usable reply"}
                                 for i in todo for cid in request_ids(i, config) if cid not in known]
    waiting = {expected[p["custom_id"]].id for p in problems["missing_reply"]}
    ready = [i for i in todo if i.id not in waiting]
    generations = {}
    for i in ready:
        recorded = [Generation(*(known[cid][f] for f in ("text", "finish_reason", "tokens")))
                    for cid in request_ids(i, config)]
        generations[i.key] = recorded * (config.samples // len(recorded))  # greedy: asked once
    models = sorted({known[cid]["model"] for i in ready for cid in request_ids(i, config)} - {""})
    teacher = BatchReplies(f"{'+'.join(models) or 'batch'}@{path}", generations)
    batch = {"output_file": str(path), "lines": lines, "usable_replies": len(replies),
             "replies_from_earlier_files": len(held.keys() - replies.keys()),
             "counts": {reason: len(problems[reason]) for reason in REASONS},
             "instructions_already_judged": len(instructions) - len(todo), "instructions_judged_now": len(ready),
             "rows_awaiting_replies": len(waiting), "teacher": teacher.name,
             "awaiting_rows": sorted(waiting), "problems": {r: p for r, p in problems.items() if p}}
    (out / "batch_summary.json").write_text(json.dumps(batch, indent=2, ensure_ascii=False) + "\n")
    if not replies:
        first = min((p for ps in problems.values() for p in ps if "line" in p), key=lambda p: p["line"], default=None)
        where = f"line {first['line']}: {first['detail']}" if first else "no reply lines"
        raise ValueError(f"{path}: no usable reply ({where}); see {out / 'batch_summary.json'}")
    # Every reply ever received stays (written before judging, so a crash in stage 3 loses none).
    write_jsonl(out / REPLIES, [{k: v for k, v in r.items() if k != "line"} for r in {**stored, **replies}.values()])
    summary = synthesize([p for p in pairs if p.id not in waiting], out, teacher, config, checker)
    return batch, summary

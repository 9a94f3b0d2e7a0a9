"""Chat-template tokenization: assistant-only masks, prompt/completion split against TRL, length policy, BOS."""
from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
from test_data_tokenizer import CHATML, CHATML_MARKED, chatml_tokenizer
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from judgejax.data.batching import preference_batch
from judgejax.data.columns import Columns
from judgejax.data.config import DataConfig
from judgejax.data.errors import DataError, RowRef
from judgejax.data.load import load_preference_examples, load_sft_examples
from judgejax.data.rows import PreferenceRow, SFTRow
from judgejax.data.tokenize import tokenize_preference_row, tokenize_sft_row
from shared_data import SHARED as SHARED_ROOT

REF = RowRef("mem.jsonl", "line", 7)
CONVERSATIONS = [
    [{"role": "user", "content": "Which answer is better?"}, {"role": "assistant", "content": "The first answer. [[A]]"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "hello user"},
        {"role": "user", "content": "A or B?"},
        {"role": "assistant", "content": "Verdict: [[B]]\n\nThe second answer is correct."},
    ],
    [
        {"role": "user", "content": "judge this"},
        {"role": "assistant", "content": "first part"},
        {"role": "assistant", "content": "second part"},
    ],
]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_sft_assistant_mask_matches_transformers_generation_mask(messages):
    example = tokenize_sft_row(SFTRow(REF, messages), chatml_tokenizer(), Columns())
    reference = chatml_tokenizer(CHATML_MARKED).apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert example.ids.tolist() == reference["input_ids"]
    assert example.assistant.astype(int).tolist() == reference["assistant_masks"]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_sft_assistant_spans_decode_to_each_assistant_turn(messages):
    tokenizer = chatml_tokenizer()
    example = tokenize_sft_row(SFTRow(REF, messages), tokenizer, Columns())
    edges = np.flatnonzero(np.diff(np.concatenate([[0], example.assistant.astype(int), [0]])))
    spans = [tokenizer.decode(example.ids[a:b]) for a, b in zip(edges[::2], edges[1::2])]
    # each turn: its text, the end-of-turn token and the template's newline after it (what the template renders
    # after the generation prompt); the header of a turn, even one following another assistant turn, is not learned
    assert spans == [m["content"] + "<|im_end|>\n" for m in messages if m["role"] == "assistant"]


# The generation prompt says "assistant" but assistant turns render as "assistant:"; the prompt is not a prefix.
MISMATCHED_PROMPT = CHATML.replace(
    "{{ '<|im_start|>' + message['role'] + '\n'",
    "{{ '<|im_start|>' + message['role'] + (':' if message['role'] == 'assistant' else '') + '\n'",
)
# Earlier assistant turns are rendered shorter than the last one (like templates that strip reasoning).
REWRITES_HISTORY = CHATML.replace("message['content']", "(message['content'] if loop.last else message['content'][:3])")


def test_sft_prompt_not_a_token_prefix_raises_naming_row_and_turn():
    with pytest.raises(DataError) as caught:
        tokenize_sft_row(SFTRow(REF, CONVERSATIONS[0]), chatml_tokenizer(MISMATCHED_PROMPT), Columns())
    assert (caught.value.ref, caught.value.field, caught.value.reason) == (REF, "messages[1]", "prompt_not_prefix")
    assert str(caught.value).startswith("mem.jsonl line 7, field 'messages[1]'")
    with pytest.raises(DataError) as caught:
        tokenize_sft_row(SFTRow(REF, CONVERSATIONS[1]), chatml_tokenizer(REWRITES_HISTORY), Columns())
    assert (caught.value.field, caught.value.reason) == ("messages[2]", "prompt_not_prefix")


def test_template_rejecting_a_conversation_names_the_row(tmp_path):
    strict = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" + CHATML
    with pytest.raises(DataError, match=r"mem.jsonl line 7: the chat template rejects.*System role not supported"):
        tokenize_sft_row(SFTRow(REF, CONVERSATIONS[1]), chatml_tokenizer(strict), Columns())
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in CONVERSATIONS))
    examples, stats = load_sft_examples(DataConfig(path=str(path), on_error="skip"), chatml_tokenizer(strict))
    assert [e.ref.number for e in examples] == [1, 3] and stats.skipped == Counter(template_error=1)


PREFERENCE_ROWS = [
    {"prompt": [user("Which answer is better?")], "chosen": [assistant("[[A]]")], "rejected": [assistant("The answer is B. [[B]]")]},
    {
        "prompt": [{"role": "system", "content": "Judge."}, user("hello"), assistant("hello user"), user("A or B?")],
        "chosen": [assistant("The first answer is correct. [[A]]")],
        "rejected": [assistant("B")],
    },
    {"prompt": [user("Please act as an impartial judge " * 6)], "chosen": [assistant("[[A]] " * 8)], "rejected": [assistant("[[B]]")]},
]


def trl_prepare(rows: list[dict], tokenizer, max_length: int) -> datasets.Dataset:
    """TRL's own DPO tokenization of conversational rows (prompt ids, completion ids, long-prompt filter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' own deprecation inside TrainingArguments
        args = DPOConfig(output_dir="unused", max_length=max_length, use_cpu=True, bf16=False, report_to=[])
    owner = SimpleNamespace(_tokenizer=tokenizer, _is_vision_dataset=False)
    datasets.disable_progress_bars()
    return DPOTrainer._prepare_dataset(owner, datasets.Dataset.from_list(rows), tokenizer, args, "train")


def test_preference_tokenization_matches_trl():
    tokenizer = chatml_tokenizer()
    reference = trl_prepare(PREFERENCE_ROWS, tokenizer, max_length=1000)
    for raw, ref in zip(PREFERENCE_ROWS, reference):
        example = tokenize_preference_row(PreferenceRow(REF, raw["prompt"], raw["chosen"], raw["rejected"]), tokenizer, Columns())
        assert example.prompt_ids.tolist() == ref["prompt_ids"]
        assert example.chosen_ids.tolist() == ref["chosen_ids"]
        assert example.rejected_ids.tolist() == ref["rejected_ids"]
        assert tokenizer.decode(example.chosen_ids) == raw["chosen"][0]["content"] + "<|im_end|>\n"


@pytest.mark.parametrize("max_length", [1000, 40, 16])
def test_preference_truncation_and_batch_match_trl_collator(tmp_path, max_length):
    tokenizer = chatml_tokenizer()
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PREFERENCE_ROWS))
    config = DataConfig(path=str(path), max_length=max_length, bucket_lengths=(1024,))
    examples, stats = load_preference_examples(config, tokenizer)
    reference = list(trl_prepare(PREFERENCE_ROWS, tokenizer, max_length))
    assert len(examples) == len(reference) == stats.kept
    assert stats.dropped["prompt_too_long"] == len(PREFERENCE_ROWS) - len(reference)
    full = [tokenize_preference_row(PreferenceRow(REF, r["prompt"], r["chosen"], r["rejected"]), tokenizer, Columns()) for r in PREFERENCE_ROWS]
    longest = [len(e.prompt_ids) + max(len(e.chosen_ids), len(e.rejected_ids)) for e in full]
    assert stats.truncated == sum(max_length > len(e.prompt_ids) and n > max_length for e, n in zip(full, longest))

    collated = DataCollatorForPreference(pad_token_id=0, max_length=max_length)([dict(r) for r in reference])
    batch = preference_batch(examples, list(range(len(examples))), 64 if max_length < 64 else 1024)
    n = len(examples)
    for side, rows in (("chosen", slice(0, n)), ("rejected", slice(n, 2 * n))):
        ids = collated["input_ids"][rows].numpy()
        attention = collated["attention_mask"][rows].numpy()
        completion = collated["completion_mask"][rows].numpy()
        width = ids.shape[1]
        assert (batch[f"{side}_tokens"][:, :width] == ids).all()  # both pad with 0
        assert (batch[f"{side}_segment_ids"][:, :width] == attention).all()
        assert (batch[f"{side}_loss_mask"][:, : width - 1] == completion[:, 1:]).all()
        assert (batch[f"{side}_targets"][:, : width - 1] == ids[:, 1:] * attention[:, 1:]).all()
        assert not batch[f"{side}_segment_ids"][:, width:].any() and not batch[f"{side}_loss_mask"][:, width - 1 :].any()


def test_preference_prompt_not_a_prefix_raises_or_is_counted(tmp_path):
    with pytest.raises(DataError) as caught:
        raw = PREFERENCE_ROWS[0]
        tokenize_preference_row(PreferenceRow(REF, raw["prompt"], raw["chosen"], raw["rejected"]), chatml_tokenizer(MISMATCHED_PROMPT), Columns())
    assert (caught.value.ref, caught.value.field, caught.value.reason) == (REF, "chosen", "prompt_not_prefix")
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in PREFERENCE_ROWS))
    with pytest.raises(DataError, match=f"{path} line 1, field 'chosen'"):
        load_preference_examples(DataConfig(path=str(path)), chatml_tokenizer(MISMATCHED_PROMPT))
    examples, stats = load_preference_examples(DataConfig(path=str(path), on_error="skip"), chatml_tokenizer(MISMATCHED_PROMPT))
    assert examples == [] and stats.skipped == Counter(prompt_not_prefix=3)


def test_sft_truncation_and_drop_counts(tmp_path):
    tokenizer = chatml_tokenizer()
    rows = CONVERSATIONS + [[user("Please act as an impartial judge " * 8), assistant("ok")]]
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    full = [tokenize_sft_row(SFTRow(REF, m), tokenizer, Columns()) for m in rows]
    lengths = [len(e.ids) for e in full]
    max_length = sorted(lengths)[1]  # the shortest two rows fit
    first_learned = [int(np.flatnonzero(e.assistant)[0]) for e in full]

    examples, stats = load_sft_examples(DataConfig(path=str(path), max_length=max_length, bucket_lengths=(512,)), tokenizer)
    over = [i for i, n in enumerate(lengths) if n > max_length]
    left_empty = [i for i in over if first_learned[i] >= max_length]
    assert stats.truncated == len(over) - len(left_empty) and stats.dropped == Counter(no_assistant_tokens_left=len(left_empty))
    assert len(left_empty) >= 1 and stats.truncated >= 1
    kept = [i for i in range(len(rows)) if i not in left_empty]
    for example, i in zip(examples, kept, strict=True):
        assert example.ids.tolist() == full[i].ids[:max_length].tolist()
        assert example.assistant.tolist() == full[i].assistant[:max_length].tolist()
        assert example.ref == RowRef(str(path), "line", i + 1)

    examples, stats = load_sft_examples(
        DataConfig(path=str(path), max_length=max_length, overlong="drop", bucket_lengths=(512,)), tokenizer
    )
    assert [e.ref.number for e in examples] == [i + 1 for i, n in enumerate(lengths) if n <= max_length]
    assert stats.dropped == Counter(too_long=len(over)) and stats.truncated == 0 and stats.kept == 2


BOS_CHATML = "{{ bos_token }}" + CHATML


def test_no_duplicated_bos():
    tokenizer = chatml_tokenizer(BOS_CHATML, bos_token="<s>")
    bos = tokenizer.bos_token_id
    rendered = tokenizer.apply_chat_template(CONVERSATIONS[0], tokenize=False)
    assert tokenizer(rendered)["input_ids"][:2] == [bos, bos]  # tokenizing the rendered text again would double it
    example = tokenize_sft_row(SFTRow(REF, CONVERSATIONS[0]), tokenizer, Columns())
    assert example.ids[0] == bos and (example.ids == bos).sum() == 1
    raw = PREFERENCE_ROWS[0]
    pair = tokenize_preference_row(PreferenceRow(REF, raw["prompt"], raw["chosen"], raw["rejected"]), tokenizer, Columns())
    assert pair.prompt_ids[0] == bos and (pair.prompt_ids == bos).sum() == 1 and bos not in pair.chosen_ids

    with pytest.raises(DataError, match=r"mem.jsonl line 7: the rendered conversation starts with two BOS tokens \[double_bos\]"):
        tokenize_sft_row(SFTRow(REF, CONVERSATIONS[0]), chatml_tokenizer("{{ bos_token }}" + BOS_CHATML, bos_token="<s>"), Columns())


def shared_file(relative: str) -> Path:
    """A file of the shared data folder (`shared/` in the checkout, or /work/shared on the build machine)."""
    for root in (SHARED_ROOT,):
        if (root / relative).exists():
            return root / relative
    pytest.skip(f"shared data file {relative} is not on this machine")


def test_real_preference_file_matches_trl():
    """CoCoNot preference rows (plain-string prompt, chosen, rejected) read, tokenized and truncated as TRL does."""
    path = shared_file("data/preferences/coconot/coconot_pref.jsonl")
    tokenizer = chatml_tokenizer()
    examples, stats = load_preference_examples(DataConfig(path=str(path), max_length=768, bucket_lengths=(768,)), tokenizer)
    assert stats.rows_read == 927 and stats.kept + sum(stats.dropped.values()) == 927 and stats.truncated > 0
    head = [json.loads(line) for line in path.read_text().splitlines()[:40]]
    conversational = [
        {"prompt": [user(r["prompt"])], "chosen": [assistant(r["chosen"])], "rejected": [assistant(r["rejected"])]} for r in head
    ]
    reference = trl_prepare(conversational, tokenizer, max_length=768)
    collated = DataCollatorForPreference(pad_token_id=0, max_length=768)([dict(r) for r in reference])
    ours = [e for e in examples if e.ref.number <= 40]
    assert len(ours) == len(reference)
    for r, (example, ref) in enumerate(zip(ours, reference)):
        assert example.prompt_ids.tolist() == ref["prompt_ids"]
        for side, completion, row in (("chosen", example.chosen_ids, r), ("rejected", example.rejected_ids, len(ours) + r)):
            full = np.concatenate([example.prompt_ids, completion])
            assert full.tolist() == collated["input_ids"][row][collated["attention_mask"][row].bool()].tolist()

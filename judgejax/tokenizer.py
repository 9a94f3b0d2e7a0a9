"""Tokenizer loading, chat-template token ids without duplicated BOS, and stop tokens.

Every prompt in judgejax is tokenized through `chat_token_ids`, so training, sampling and
evaluation see the same ids that transformers' `apply_chat_template` produces.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

GENERATION_CONFIG = "generation_config.json"  # a Hugging Face model folder's generation defaults

# Any one of these marks a folder as holding a tokenizer (HF fast, SentencePiece, GPT-2 style).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
# Assistant content used to find the token that closes a turn in a chat template.
_TURN_PROBE = "judgejax turn probe"


def load_tokenizer(path: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    """Load the tokenizer of a local HF folder through `AutoTokenizer.from_pretrained`.

    Works for HF fast tokenizers (`tokenizer.json`) and SentencePiece ones (`tokenizer.model`
    with a `tokenizer_config.json` naming the class). Raises if the folder holds no tokenizer
    file, or if the loaded tokenizer encodes plain text to no ids at all.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise NotADirectoryError(f"tokenizer folder {folder} does not exist or is not a folder")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{folder} holds no tokenizer: expected one of {', '.join(TOKENIZER_FILES)}"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not tokenizer("hello world", add_special_tokens=False)["input_ids"]:
        raise ValueError(
            f"tokenizer loaded from {folder} ({type(tokenizer).__name__}) encodes 'hello world' "
            "to no ids; check tokenizer_config.json's tokenizer_class"
        )
    return tokenizer


def chat_token_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, Any]],
    add_generation_prompt: bool,
) -> list[int]:
    """Token ids of `messages` rendered by the tokenizer's chat template, with at most one BOS.

    The ids are those of transformers' `apply_chat_template(tokenize=True)`, which encodes the
    rendered text without adding special tokens. When the template itself emits no BOS but the
    tokenizer prepends one to plain text (as the model saw in pretraining), one BOS is prepended.
    Raises if the result starts with two BOS ids.
    """
    _check_messages(messages)
    rendered = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
    )
    ids = [int(i) for i in encoded["input_ids"]]
    bos_id = tokenizer.bos_token_id
    if bos_id is not None and not rendered.startswith(tokenizer.bos_token) and _adds_bos(tokenizer):
        ids = [bos_id, *ids]
    if bos_id is not None and ids[:2] == [bos_id, bos_id]:
        raise ValueError(
            f"chat template output starts with two BOS tokens ({tokenizer.bos_token!r}); "
            "the template or the first message emits BOS twice"
        )
    return ids


def stop_token_ids(
    tokenizer: PreTrainedTokenizerBase,
    generation_config_path: str | os.PathLike[str] | None = None,
) -> list[int]:
    """Ids that end a generated turn: EOS, the generation config's EOS ids, the template's end-of-turn.

    The end-of-turn token is the special token the chat template writes right after an
    assistant message (`<|im_end|>` for ChatML, `<|eot_id|>` for Llama-3). Order is kept and
    duplicates dropped.
    """
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if generation_config_path is not None:
        ids.extend(_generation_config_eos(Path(generation_config_path)))
    end_of_turn = _end_of_turn_id(tokenizer)
    if end_of_turn is not None:
        ids.append(end_of_turn)
    if not ids:
        raise ValueError(
            f"{type(tokenizer).__name__} has no EOS token, its chat template no end-of-turn token, "
            "and no generation config EOS was given: generation could never stop"
        )
    return list(dict.fromkeys(ids))


def _check_messages(messages: list[dict[str, Any]]) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"messages must be a non-empty list of dicts, got {messages!r:.200}")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{index}] must be a dict, got {type(message).__name__}")
        for field in ("role", "content"):
            if not isinstance(message.get(field), str):
                raise ValueError(f"messages[{index}] field {field!r} must be a string, got {message!r:.200}")


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether encoding plain text with special tokens puts BOS first."""
    return tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]


def _end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The special token right after an assistant message in the chat template, if any."""
    if tokenizer.chat_template is None:
        return None
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": _TURN_PROBE},
    ]
    rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
    end = rendered.rfind(_TURN_PROBE)
    if end < 0:
        return None
    after = rendered[end + len(_TURN_PROBE) :].lstrip()
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    special = set(tokenizer.all_special_ids) | {
        token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special
    }
    return int(ids[0]) if ids and ids[0] in special else None


def assets_stop_ids(tokenizer: PreTrainedTokenizerBase, assets: str | os.PathLike[str]) -> list[int]:
    """`stop_token_ids` of a model's assets folder, with its generation_config.json if it has one."""
    path = Path(assets) / GENERATION_CONFIG
    return stop_token_ids(tokenizer, path if path.is_file() else None)


def _generation_config_eos(path: Path) -> list[int]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read generation config {path}: {error}") from error
    eos = config.get("eos_token_id") if isinstance(config, dict) else None
    if eos is None:
        return []
    values = eos if isinstance(eos, list) else [eos]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        raise ValueError(f"{path}: field eos_token_id must be an int or a list of ints, got {eos!r}")
    return values

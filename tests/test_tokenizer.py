"""Tokenizer loading, chat ids and stop tokens on tiny tokenizers built offline.

Four families mirror real ones: SmolLM2 (ChatML, BOS token <|im_start|> never added by the
tokenizer), Qwen2 (ChatML, no BOS), Llama-3 (fast tokenizer that adds BOS and a template that
emits it too) and Llama-2 (SentencePiece `tokenizer.model` + `LlamaTokenizer`, same BOS hazard).
References: `AutoTokenizer` and the raw `tokenizers` / `sentencepiece` encoders.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sentencepiece
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from judgejax.tokenizer import chat_token_ids, load_tokenizer, stop_token_ids

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
    "'<|end_header_id|>\\n\\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
LLAMA2 = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)
WORDS = "the judge reads two answers and picks the better one because 12 and 345 matter".split()
TEXTS = ["the judge reads 12 answers", "Answer B: 345!", "picks\nthe better", "ünknown wörds 😀"]
CONVERSATION = [
    {"role": "user", "content": "Which answer is better?"},
    {"role": "assistant", "content": "Answer A, because it reads the question."},
    {"role": "user", "content": "Why 345?"},
]


@dataclass(frozen=True)
class Family:
    name: str
    sentencepiece: bool
    specials: tuple[str, ...]
    bos: str | None
    eos: str
    template: str
    adds_bos: bool
    end_of_turn: str


FAMILIES = {
    family.name: family
    for family in (
        Family("smollm2", False, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "<|im_start|>",
               "<|im_end|>", CHATML, False, "<|im_end|>"),
        Family("qwen2", False, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), None,
               "<|endoftext|>", CHATML, False, "<|im_end|>"),
        Family("llama3", False, ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
               "<|end_header_id|>", "<|eot_id|>"), "<|begin_of_text|>", "<|end_of_text|>", LLAMA3,
               True, "<|eot_id|>"),
        Family("llama2", True, ("<unk>", "<s>", "</s>"), "<s>", "</s>", LLAMA2, True, "</s>"),
    )
}


def _corpus() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(300)] + TEXTS


def _build_fast(folder: Path, family: Family) -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(family.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    if family.adds_bos:
        bos = family.bos
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
        )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=family.bos, eos_token=family.eos, chat_template=family.template
    ).save_pretrained(folder)


def _build_sentencepiece(folder: Path, family: Family) -> None:
    # Llama-2's trainer settings: BPE, byte fallback, split digits, no normalisation.
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_prefix=str(folder / "tokenizer"), vocab_size=320,
        hard_vocab_limit=False, model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        minloglevel=2,
    )
    (folder / "tokenizer.vocab").unlink()
    config = {
        "tokenizer_class": "LlamaTokenizer", "bos_token": family.bos, "eos_token": family.eos,
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
        "chat_template": family.template,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for family in FAMILIES.values():
        folder = tmp_path_factory.mktemp(family.name)
        (_build_sentencepiece if family.sentencepiece else _build_fast)(folder, family)
        out[family.name] = folder
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_load_matches_reference_encoders(folders: dict[str, Path], name: str) -> None:
    folder, family = folders[name], FAMILIES[name]
    tokenizer = load_tokenizer(folder)
    auto = AutoTokenizer.from_pretrained(folder)
    if family.sentencepiece:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        raw = lambda text, special: [processor.bos_id()] * special + processor.encode(text)  # noqa: E731
    else:
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        raw = lambda text, special: backend.encode(text, add_special_tokens=special).ids  # noqa: E731
    for text in TEXTS:
        for special in (False, True):
            ids = tokenizer(text, add_special_tokens=special)["input_ids"]
            assert ids == auto(text, add_special_tokens=special)["input_ids"]
            assert ids == raw(text, special), (name, text, special)
    bos_id = tokenizer.convert_tokens_to_ids(family.bos) if family.bos else None
    assert tokenizer.bos_token_id == bos_id
    assert (tokenizer("a")["input_ids"][:1] == [bos_id]) == family.adds_bos


@pytest.mark.parametrize("add_generation_prompt", [True, False])
@pytest.mark.parametrize("name", FAMILIES)
def test_chat_ids_equal_transformers_with_one_bos(
    folders: dict[str, Path], name: str, add_generation_prompt: bool
) -> None:
    family = FAMILIES[name]
    tokenizer = load_tokenizer(folders[name])
    auto = AutoTokenizer.from_pretrained(folders[name])
    ids = chat_token_ids(tokenizer, CONVERSATION, add_generation_prompt)
    expected = auto.apply_chat_template(
        CONVERSATION, add_generation_prompt=add_generation_prompt, return_dict=True
    )["input_ids"]
    assert ids == expected
    rendered = auto.apply_chat_template(CONVERSATION, add_generation_prompt=add_generation_prompt, tokenize=False)
    assert auto.decode(ids) == rendered
    if family.bos is not None and family.template.startswith("{{ bos_token }}"):
        assert ids[0] == tokenizer.bos_token_id and ids[1] != tokenizer.bos_token_id
        if family.adds_bos:
            # The hazard is real here: encoding the rendered text with special tokens doubles BOS.
            naive = auto(rendered)["input_ids"]
            assert naive[:2] == [tokenizer.bos_token_id] * 2
    if family.template == CHATML:
        im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
        assert ids[0] == im_start
        assert ids.count(im_start) == len(CONVERSATION) + add_generation_prompt


@pytest.mark.parametrize("name", [name for name, family in FAMILIES.items() if family.adds_bos])
def test_bos_prepended_once_when_template_omits_it(folders: dict[str, Path], name: str) -> None:
    tokenizer = load_tokenizer(folders[name])
    tokenizer.chat_template = FAMILIES[name].template.removeprefix("{{ bos_token }}")
    ids = chat_token_ids(tokenizer, CONVERSATION, add_generation_prompt=True)
    rendered = tokenizer.apply_chat_template(CONVERSATION, add_generation_prompt=True, tokenize=False)
    assert not rendered.startswith(tokenizer.bos_token)
    # Reference: the tokenizer's own encoding of the rendered text, with its special tokens.
    assert ids == tokenizer(rendered)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[1] != tokenizer.bos_token_id


@pytest.mark.parametrize("name", ["llama3", "llama2"])
def test_template_emitting_bos_twice_raises(folders: dict[str, Path], name: str) -> None:
    tokenizer = load_tokenizer(folders[name])
    tokenizer.chat_template = "{{ bos_token }}" + FAMILIES[name].template
    with pytest.raises(ValueError, match="two BOS"):
        chat_token_ids(tokenizer, CONVERSATION, add_generation_prompt=True)


@pytest.mark.parametrize("name", FAMILIES)
def test_stop_token_ids(folders: dict[str, Path], name: str, tmp_path: Path) -> None:
    family = FAMILIES[name]
    tokenizer = load_tokenizer(folders[name])
    eos, end_of_turn = tokenizer.convert_tokens_to_ids([family.eos, family.end_of_turn])
    assert stop_token_ids(tokenizer) == list(dict.fromkeys([eos, end_of_turn]))
    generation_config = tmp_path / "generation_config.json"
    generation_config.write_text(json.dumps({"eos_token_id": [end_of_turn, 7, eos]}))
    assert stop_token_ids(tokenizer, generation_config) == list(dict.fromkeys([eos, end_of_turn, 7]))
    generation_config.write_text(json.dumps({"eos_token_id": 9}))
    assert stop_token_ids(tokenizer, generation_config) == list(dict.fromkeys([eos, 9, end_of_turn]))


def test_bad_generation_config_names_file_and_field(folders: dict[str, Path], tmp_path: Path) -> None:
    tokenizer = load_tokenizer(folders["qwen2"])
    path = tmp_path / "generation_config.json"
    path.write_text(json.dumps({"eos_token_id": "2"}))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}.*eos_token_id"):
        stop_token_ids(tokenizer, path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        stop_token_ids(tokenizer, path)


def test_bad_messages_name_index_and_field(folders: dict[str, Path]) -> None:
    tokenizer = load_tokenizer(folders["qwen2"])
    with pytest.raises(ValueError, match=r"messages\[1\] field 'content'"):
        chat_token_ids(tokenizer, [CONVERSATION[0], {"role": "assistant"}], add_generation_prompt=False)
    with pytest.raises(ValueError, match="non-empty list"):
        chat_token_ids(tokenizer, [], add_generation_prompt=True)


def test_folder_without_tokenizer_files_raises(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(tmp_path))} holds no tokenizer"):
        load_tokenizer(tmp_path)
    with pytest.raises(NotADirectoryError, match="missing"):
        load_tokenizer(tmp_path / "missing")

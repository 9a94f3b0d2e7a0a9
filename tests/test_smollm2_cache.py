"""The SmolLM2-135M-Instruct cache: atomic build, reuse, clean config, chat ids.

Tests marked slow build the real folder once per session (about a minute) into a temporary
folder, or reuse the one under `$JUDGEJAX_CACHE` when set (CI can keep a prebuilt cache).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from judgejax.fetch import smollm2
from judgejax.fetch.smollm2 import FOLDER_NAME, REQUIRED_FILES, default_cache_dir, smollm2_path
from judgejax.tokenizer import chat_token_ids, load_tokenizer, stop_token_ids


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.iterdir()}


def _fake_build(dest: Path) -> None:
    for name in REQUIRED_FILES:
        (dest / name).write_text("{}")


def _refuse_build(dest: Path) -> None:
    raise AssertionError(f"rebuilt into {dest} although the cache exists")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUDGEJAX_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("JUDGEJAX_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "judgejax"


def test_build_is_atomic_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing_build(dest: Path) -> None:
        (dest / "config.json").write_text("{}")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(smollm2, "_build", failing_build)
    with pytest.raises(RuntimeError, match="interrupted"):
        smollm2_path(tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the final folder nor a half-built one

    monkeypatch.setattr(smollm2, "_build", _fake_build)
    path = smollm2_path(tmp_path)
    assert path == tmp_path / FOLDER_NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER_NAME]
    assert sorted(p.name for p in path.iterdir()) == sorted(REQUIRED_FILES)

    monkeypatch.setattr(smollm2, "_build", _refuse_build)
    assert smollm2_path(tmp_path) == path


def test_concurrent_builder_loses_the_rename(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def racing_build(dest: Path) -> None:
        _fake_build(dest)
        (tmp_path / FOLDER_NAME).mkdir()  # another process renamed its build in first
        _fake_build(tmp_path / FOLDER_NAME)

    monkeypatch.setattr(smollm2, "_build", racing_build)
    assert smollm2_path(tmp_path) == tmp_path / FOLDER_NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER_NAME]


def test_incomplete_cached_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / FOLDER_NAME).mkdir()
    (tmp_path / FOLDER_NAME / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        smollm2_path(tmp_path)


@pytest.mark.slow
def test_second_call_reuses_without_rebuilding(
    smollm2_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(smollm2_dir)
    monkeypatch.setattr(smollm2, "_build", _refuse_build)
    start = time.monotonic()
    assert smollm2_path(smollm2_dir.parent) == smollm2_dir
    assert time.monotonic() - start < 1.0
    assert "reusing cached model" in capfd.readouterr().err
    assert _snapshot(smollm2_dir) == before
    assert not [p for p in smollm2_dir.parent.iterdir() if p.name.startswith(f".{FOLDER_NAME}.building-")]


@pytest.mark.slow
def test_config_is_a_clean_llama_config(smollm2_dir: Path) -> None:
    raw = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in raw and "_name_or_path" not in raw
    config = AutoConfig.from_pretrained(smollm2_dir)
    assert type(config).__name__ == "LlamaConfig"
    assert raw["architectures"] == ["LlamaForCausalLM"]
    # Values of the release's config.json (HuggingFaceTB/SmolLM2-135M-Instruct).
    assert (config.vocab_size, config.hidden_size, config.intermediate_size) == (49152, 576, 1536)
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (30, 9, 3)
    assert config.head_dim == 64 and config.max_position_embeddings == 8192
    assert raw["rope_parameters"] == {"rope_theta": 100000.0, "rope_type": "default"}
    assert raw["rms_norm_eps"] == 1e-5
    assert config.tie_word_embeddings is True
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 2)
    generation = json.loads((smollm2_dir / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (1, 2, 2)
    tokenizer = load_tokenizer(smollm2_dir)
    assert tokenizer.convert_ids_to_tokens([1, 2]) == ["<|im_start|>", "<|im_end|>"]
    assert tokenizer.bos_token == "<|im_start|>" and tokenizer.eos_token == "<|im_end|>"
    assert len(tokenizer) == config.vocab_size
    tokenizer_config = json.loads((smollm2_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["chat_template"].startswith("{% for message in messages %}")
    assert "<|im_start|>" in tokenizer_config["chat_template"]


@pytest.mark.slow
def test_chat_ids_equal_transformers_chatml(smollm2_dir: Path) -> None:
    tokenizer = load_tokenizer(smollm2_dir)
    reference = AutoTokenizer.from_pretrained(smollm2_dir)
    im_start, im_end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    user_only = [{"role": "user", "content": "Which answer is better, A or B? Reply [[A]] or [[B]]."}]
    with_system = [{"role": "system", "content": "You are a fair judge."}, *user_only,
                   {"role": "assistant", "content": "[[A]]"}]
    # The template adds a default system turn when the conversation has none.
    for messages, turns in ((user_only, 2), (with_system, 3)):
        for add_generation_prompt in (True, False):
            ids = chat_token_ids(tokenizer, messages, add_generation_prompt)
            expected = reference.apply_chat_template(
                messages, add_generation_prompt=add_generation_prompt, return_dict=True
            )["input_ids"]
            assert ids == expected
            assert ids[0] == im_start and ids[1] != im_start
            assert ids.count(im_start) == turns + add_generation_prompt
            assert ids.count(im_end) == turns
    assert stop_token_ids(tokenizer, smollm2_dir / "generation_config.json") == [im_end]


@pytest.mark.slow
def test_weights_answer_coherently(smollm2_dir: Path) -> None:
    import torch

    tokenizer = load_tokenizer(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    ids = chat_token_ids(tokenizer, [{"role": "user", "content": "What is the capital of France?"}], True)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, len(ids):])

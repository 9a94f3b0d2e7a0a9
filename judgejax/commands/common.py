"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgejax.fetch.smollm2 import FOLDER_NAME, smollm2_path
from judgejax.sharding import MeshConfig


def model_path(text: str) -> str:
    """A model given on the command line or in a config: a path, or the name
    `SmolLM2-135M-Instruct` (when no such folder exists) for the cached real model, built offline
    on first use."""
    return str(smollm2_path()) if text == FOLDER_NAME and not Path(text).exists() else text


def mesh_arg(text: str) -> MeshConfig:
    try:
        data, fsdp, tensor = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mesh {text!r}: expected DATA,FSDP,TENSOR such as -1,1,1 or 2,2,2")
    return MeshConfig(data, fsdp, tensor)


def add_mesh(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mesh", type=mesh_arg, default=MeshConfig(),
                   help="device mesh DATA,FSDP,TENSOR; -1 takes the remaining devices (default -1,1,1)")


def add_dtypes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param-dtype", choices=("float32", "bfloat16"), default="float32", help="parameter dtype")
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16"), default="float32", help="matmul dtype")


def chat_backend(model: str | None, url: str | None, url_model: str | None, mesh: MeshConfig, batch_size: int,
                 flags: tuple[str, str] = ("--model", "--url")):
    """A local model (HF folder, checkpoint or run) through the sampler, or an OpenAI-compatible
    endpoint: exactly one of `model` and `url` (named by `flags` in errors)."""
    flag, url_flag = flags
    if bool(model) == bool(url):
        raise SystemExit(f"give exactly one of {flag} and {url_flag}")
    if url:
        from judgejax.sample.http_chat import HttpChat

        if not url_model:
            raise SystemExit(f"{url_flag} needs {url_flag}-model")
        return HttpChat(url, url_model, parallel=batch_size)
    from judgejax.sample.chat import LocalChat
    from judgejax.sharding import make_mesh

    return LocalChat(model, make_mesh(mesh), batch_size=batch_size)

"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from judgejax.sharding import MeshConfig


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

"""Create a CausalLM whose parameters live sharded on a mesh."""

from __future__ import annotations

import functools
from typing import Mapping

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from judgejax.model.config import ModelConfig
from judgejax.model.llm import CausalLM
from judgejax.model.params import SPECS, param_shapes
from judgejax.sharding import named_sharding

Tree = dict[str, dict[str, jax.Array]]


def param_shardings(cfg: ModelConfig, mesh: Mesh) -> dict[str, NamedSharding]:
    """NamedSharding of every parameter; raises naming the tensor that does not divide."""
    return {
        name: named_sharding(mesh, SPECS[name].axes, shape, name)
        for name, shape in param_shapes(cfg).items()
    }


def nest(flat: Mapping[str, object]) -> dict[str, dict[str, object]]:
    tree: dict[str, dict[str, object]] = {"outer": {}, "layers": {}}
    for name, value in flat.items():
        tree[SPECS[name].group][name] = value
    return tree


def flatten(tree: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    return {name: value for group in tree.values() for name, value in group.items()}


def abstract_params(cfg: ModelConfig, mesh: Mesh) -> Tree:
    """Shape, dtype and target sharding of each parameter (an Orbax restore target)."""
    shardings = param_shardings(cfg, mesh)
    return nest({
        name: jax.ShapeDtypeStruct(shape, SPECS[name].dtype(cfg), sharding=shardings[name])
        for name, shape in param_shapes(cfg).items()
    })


@functools.lru_cache(maxsize=None)
def graphdef_of(cfg: ModelConfig) -> nnx.GraphDef:
    return nnx.split(nnx.eval_shape(lambda: CausalLM(cfg, rngs=nnx.Rngs(0))))[0]


def model_from_params(cfg: ModelConfig, params: Mapping[str, Mapping[str, jax.Array]]) -> CausalLM:
    """Wrap existing (sharded) arrays in a CausalLM without copying them (also under jit)."""
    return nnx.merge(graphdef_of(cfg), {g: dict(v) for g, v in params.items()})


def init_model(cfg: ModelConfig, mesh: Mesh, seed: int = 0) -> CausalLM:
    """Randomly initialised model, each parameter created directly in its sharding."""
    shardings = nest(param_shardings(cfg, mesh))

    def init() -> Tree:
        return nnx.to_pure_dict(nnx.state(CausalLM(cfg, rngs=nnx.Rngs(seed))))

    return model_from_params(cfg, jax.jit(init, out_shardings=shardings)())


def params_of(model: CausalLM) -> Tree:
    return nnx.to_pure_dict(nnx.state(model))


"""Train state: a pytree of parameters, optimizer state and step, placed on the mesh."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from judgejax.model.build import abstract_params
from judgejax.model.config import ModelConfig


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    step: jax.Array
    params: dict[str, dict[str, jax.Array]]
    opt_state: Any


def _on_mesh(sharding, mesh: Mesh) -> NamedSharding:
    """Moments keep their parameter's sharding; scalars (step counts) are replicated."""
    return sharding if isinstance(sharding, NamedSharding) else NamedSharding(mesh, P())


def create_state(params, tx: optax.GradientTransformation) -> TrainState:
    """Optimizer state built under jit, so its moments inherit the parameters' shardings."""
    mesh = jax.tree.leaves(params)[0].sharding.mesh
    opt_state = jax.jit(tx.init)(params)
    opt_state = jax.tree.map(lambda x: jax.device_put(x, _on_mesh(x.sharding, mesh)), opt_state)
    step = jax.device_put(jnp.zeros((), jnp.int32), NamedSharding(mesh, P()))
    return TrainState(step=step, params=params, opt_state=opt_state)


def abstract_state(cfg: ModelConfig, mesh: Mesh, tx: optax.GradientTransformation) -> TrainState:
    """Shapes, dtypes and shardings of a TrainState without allocating one (restore targets)."""
    params = abstract_params(cfg, mesh)
    init = jax.jit(tx.init).lower(params).compile()
    opt_shapes = jax.eval_shape(tx.init, params)
    opt_state = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=_on_mesh(s, mesh)), opt_shapes,
        init.output_shardings
    )
    step = jax.ShapeDtypeStruct((), jnp.int32, sharding=NamedSharding(mesh, P()))
    return TrainState(step=step, params=params, opt_state=opt_state)


def shardings_of(state: TrainState):
    return jax.tree.map(lambda x: x.sharding, state)

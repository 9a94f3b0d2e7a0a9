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
from judgejax.model.lora import split


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    step: jax.Array
    params: dict[str, dict[str, jax.Array]]
    opt_state: Any


def opt_shardings(tx: optax.GradientTransformation, params, mesh: Mesh):
    """Optimizer-state shardings: each moment takes its parameter's sharding (so FSDP shards the
    Adam state too); scalars such as step counts are replicated."""
    shapes = jax.eval_shape(tx.init, params)
    return optax.tree_map_params(tx, lambda _, p: p.sharding, shapes, params,
                                 transform_non_params=lambda _: NamedSharding(mesh, P()))


def create_state(params, tx: optax.GradientTransformation) -> TrainState:
    """Optimizer state created directly in its shardings."""
    mesh = jax.tree.leaves(params)[0].sharding.mesh
    opt_state = jax.jit(tx.init, out_shardings=opt_shardings(tx, params, mesh))(params)
    step = jax.device_put(jnp.zeros((), jnp.int32), NamedSharding(mesh, P()))
    return TrainState(step=step, params=params, opt_state=opt_state)


def abstract_state(cfg: ModelConfig, mesh: Mesh, tx: optax.GradientTransformation) -> TrainState:
    """Shapes, dtypes and shardings of a TrainState (what the run trains: every parameter, or
    LoRA's adapters) without allocating one (restore targets)."""
    params = split(cfg, abstract_params(cfg, mesh))[0]
    opt_state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                             jax.eval_shape(tx.init, params), opt_shardings(tx, params, mesh))
    step = jax.ShapeDtypeStruct((), jnp.int32, sharding=NamedSharding(mesh, P()))
    return TrainState(step=step, params=params, opt_state=opt_state)


def shardings_of(state: TrainState):
    return jax.tree.map(lambda x: x.sharding, state)


def jit_train_step(step_fn, state_shardings, mesh: Mesh):
    """A (state, batch, frozen) -> (state, metrics) step jitted as training runs it: the state in
    and out in its shardings and donated, the batch and the frozen parameters (None, or LoRA's
    base) as placed, the metrics replicated."""
    return jax.jit(step_fn, in_shardings=(state_shardings, None, None),
                   out_shardings=(state_shardings, NamedSharding(mesh, P())), donate_argnums=0)

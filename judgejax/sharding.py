"""Device mesh with axes (data, fsdp, tensor) and the logical-axis rules that place tensors on it."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from judgejax.config import section

MESH_AXES = ("data", "fsdp", "tensor")
BATCH = ("data", "fsdp")

# Logical axis name -> mesh axis (None: replicated). The only table of placement rules.
RULES: Mapping[str, str | tuple[str, ...] | None] = {
    "batch": BATCH,
    "vocab": "tensor",
    "embed": "fsdp",
    "heads": "tensor",
    "kv_heads": "tensor",
    "mlp": "tensor",
    "head_dim": None,
    "layers": None,
    "norm": None,
    "seq": None,
    "lora_rank": None,
}


# Logical axes that are replicated, not split, when their size does not divide the mesh axis:
# KV heads fewer than (or not a multiple of) the tensor axis. Each tensor shard then computes every
# KV head (the K/V projections are small) and attention repeats them (`kv_heads_on_mesh`), as
# Megatron and vLLM replicate KV heads. Every other axis that does not divide is an error.
REPLICATED_IF_INDIVISIBLE = ("kv_heads",)


class ShardingError(ValueError):
    """A tensor dimension that does not divide the mesh axis it is placed on."""


@section
class MeshConfig:
    """Mesh shape; -1 on one axis takes all remaining devices."""

    data: int = -1
    fsdp: int = 1
    tensor: int = 1

    def shape(self, num_devices: int) -> tuple[int, int, int]:
        sizes = [self.data, self.fsdp, self.tensor]
        if sizes.count(-1) > 1:
            raise ShardingError(f"mesh {sizes}: at most one axis may be -1")
        known = math.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if num_devices % known:
                raise ShardingError(f"mesh {sizes} does not divide {num_devices} devices")
            sizes[sizes.index(-1)] = num_devices // known
        if math.prod(sizes) != num_devices:
            raise ShardingError(
                f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} = {math.prod(sizes)} "
                f"devices, but {num_devices} are available"
            )
        return tuple(sizes)


def make_mesh(config: MeshConfig = MeshConfig(), devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    shape = config.shape(len(devices))
    return jax.make_mesh(
        shape, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3, devices=devices
    )


def logical_spec(logical_axes: Sequence[str | None]) -> P:
    return P(*(RULES[a] if a is not None else None for a in logical_axes))


def named_sharding(
    mesh: Mesh, logical_axes: Sequence[str | None], shape: Sequence[int], name: str
) -> NamedSharding:
    """Sharding of tensor `name`; raises if a dimension does not divide its mesh axes (except
    the REPLICATED_IF_INDIVISIBLE ones, replicated instead)."""
    spec = list(logical_spec(logical_axes))
    for dim, (size, axes) in enumerate(zip(shape, spec)):
        if axes is None:
            continue
        axes = (axes,) if isinstance(axes, str) else axes
        ways = math.prod(mesh.shape[a] for a in axes)
        if size % ways and logical_axes[dim] in REPLICATED_IF_INDIVISIBLE:
            spec[dim] = None
        elif size % ways:
            raise ShardingError(
                f"{name}: dimension {dim} ({logical_axes[dim]}) has size {size}, which does not "
                f"divide mesh axes {axes} of size {ways}; choose another mesh"
            )
    return NamedSharding(mesh, P(*spec))


def kv_heads_on_mesh(num_kv_heads: int, tensor: int) -> int:
    """How many KV heads attention runs with on a tensor axis of `tensor` devices: the model's
    own when `tensor` divides them, else lcm(num_kv_heads, tensor), each head repeated so that
    every tensor shard holds whole heads for its query heads (any `tensor` dividing the number of
    query heads works)."""
    return num_kv_heads if num_kv_heads % tensor == 0 else math.lcm(num_kv_heads, tensor)


def axis_size(name: str) -> int:
    """The size of axis `name` of the mesh in use (`jax.set_mesh`, also under jit); 1 without one."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty or name not in mesh.axis_names else mesh.shape[name]


def constrain(x: jax.Array, logical_axes: Sequence[str | None]) -> jax.Array:
    """`with_sharding_constraint` under an active mesh (`jax.set_mesh`), a no-op without one."""
    if jax.sharding.get_abstract_mesh().empty:
        return x
    return jax.lax.with_sharding_constraint(x, logical_spec(logical_axes))


def data_parallel_size(mesh: Mesh) -> int:
    """How many ways a batch's rows are split: the size of the mesh's (data, fsdp) axes."""
    return math.prod(mesh.shape[a] for a in BATCH)


def shard_batch(mesh: Mesh, batch: Mapping[str, np.ndarray], axis: int = 0) -> dict[str, jax.Array]:
    """Place a host batch on the mesh, axis `axis` (the rows) split over (data, fsdp). Each process
    passes its own rows (all of them on a mesh of its own devices). Rows that do not divide into
    data x fsdp shards are an error, never replicated: pad them to a multiple first."""
    ways = data_parallel_size(mesh)
    processes = len({d.process_index for d in mesh.devices.flat})
    out = {}
    for key, value in batch.items():
        rows = value.shape[axis]
        if rows * processes % ways:
            per = f" per process x {processes} processes" if processes > 1 else ""
            raise ShardingError(f"batch field {key}: {rows} rows{per} do not divide data x fsdp = {ways}")
        sharding = NamedSharding(mesh, P(*[None] * axis, BATCH, *[None] * (value.ndim - axis - 1)))
        if processes == 1:
            out[key] = jax.device_put(value, sharding)
        else:
            out[key] = jax.make_array_from_process_local_data(sharding, value)
    return out

"""Per-chip memory of a training step and of sampling, for a model config on a mesh.

Parameters, optimizer state and gradients are counted exactly from the parameter shapes, the
sharding rules (judgejax.sharding) and the optimizer's own state dtypes, each optimizer moment
sharded like its parameter. Activations follow the
decoder layer's code: per token, the tensors a layer keeps for its backward pass (its input,
the two norm outputs, q/k/v, the attention output, gate/up and their product: 4D + 2N'H + 2K'H
+ 3F' values, with N', K', F' the tensor-parallel shards) at compute-dtype size plus a float32
copy; attention keeps no scores, only a float32 log-sum-exp per (row, head, query), whichever
backend the config's `model.attention` picks on the slice's platform
(judgejax.model.attention_backends). Per remat policy (judgejax.model.remat):
`none`: all L layers keep theirs and the backward pass of one layer needs as much again:
(L + 1) x per-layer; `full`: each layer keeps its input and one layer is recomputed at a time:
L x input + 1.25 x per-layer; `names` and `dots` keep, beside the input, what they save at
compute-dtype size (names: q, k, v, attention output, gate, up: 2N'H + 2K'H + 2F' values a token;
dots: the matmul outputs q, k, v, out-projection, gate, up: N'H + 2K'H + D + 2F'):
L x (input + saved) + 1.25 x per-layer; `offload` holds `full`'s on the device and moves the
names' L x saved to host memory (reported apart, not counted against HBM). The
vocabulary projection is chunked (train.logprob_chunk): two float32 [rows, chunk, V'] blocks.
The step's peak is these plus the attention mask (boolean [rows, T, T]; cudnn also turns it into
a compute-dtype bias; the Pallas kernels build none) and, for the blocked XLA attention
(judgejax.model.attention), the backward pass's float32 probabilities, their gradient and the
scores' gradient of one query block ([rows, heads, 128, T] each); the train state is donated, so
the new state reuses the old one's buffers.

Under fsdp, the embedding tables and one layer's weights are also gathered over fsdp while in
use, with their gradients when training; on TPU only the LM head's table (the embedding lookup
reads each chip's own shard). Sampling holds the parameters, the KV
cache twice (the one the prefill builds and the decode loop's), the prompt's keys and values
before they enter it (the prompt taken as half the sampling length, as `plan --compile` builds
it), the blocked XLA attention's scores of one query block (no scores for the fused kernels), the
gathered weights and the last position's logits. A forward pass without gradients (the DPO
reference pass) holds the parameters, one layer's activations, the logits' chunks and the
gathered weights. These rules were checked against XLA's buffer assignment for the compiled
step on CPU (tests/test_plan.py): the plans are 1.1 to 1.9 times XLA's peak there, never below
it; they err high on purpose (up to 1.9x), most with remat, where XLA recomputes more cleverly than
assumed. On TPU (`judgejax plan --compile`, results/tpu-compile/) they were checked against the
TPU compiler's for every shipped config.
With `model.lora` the step trains only the adapters: their float32 values, gradients and AdamW
moments are counted as above, the frozen base once in the compute dtype (QLoRA: one byte a
projection value plus float32 block scales; no gradient, no optimizer state, gathered without
gradients; the DPO reference is the base itself, no copy), and sampling holds the merged judge in
the compute dtype (`--param-dtype` of synth and eval: a LoRA run is one whose memory is short). The adapters' [tokens, rank] intermediates are
left out (under 1% of a layer's activations at rank 16).
`suggest` tries the remat policies in SEARCH order from the config's own on: each keeps no more than the
one before when N x H >= D (every supported family).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp
from jax.sharding import AbstractMesh

from judgejax.train.config import RunConfig
from judgejax.data.batching import bucket_length
from judgejax.model import attention, attention_backends
from judgejax.model.config import ModelConfig
from judgejax.model.params import SPECS, is_adapter, param_shapes
from judgejax.sharding import MESH_AXES, ShardingError, kv_heads_on_mesh, named_sharding
from judgejax.train.optimizer import make_optimizer

GIB = 2**30
USABLE = 0.9  # the share of HBM a plan may use; XLA and the runtime keep the rest for themselves
Stage = Literal["sft", "dpo"]
SEARCH = ("none", "names", "dots", "full")  # remat policies `suggest` tries, in order (each keeps less or as much)


class PlanError(ValueError):
    """A config that cannot run on the mesh at all (a dimension or the batch does not divide)."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Bytes per chip."""

    mesh: tuple[int, int, int]
    stage: Stage
    remat: str
    rows: int  # sequences per chip in one micro-batch (chosen + rejected for DPO)
    seq_len: int
    sample_rows: int  # sequences per chip when sampling
    sample_len: int
    param_count: int  # whole model
    params: int  # as training holds them: every one, or LoRA's frozen base (compute dtype) and adapters
    served: int  # as sampling holds them: the model in the parameter dtype (LoRA: merged, compute dtype)
    optimizer: int
    gradients: int
    reference: int  # frozen DPO reference kept in memory (dpo.reference=in_memory)
    activations_by_policy: dict[str, int]  # on the device, for each remat policy
    offloaded: int  # host memory the `offload` policy fills
    logits: int
    gathered: int  # fsdp: weights gathered for use, and their gradients before they are scattered back
    kv_cache: int
    prefill: int  # sampling: the prompt's K/V, the cache's second copy, attention scores (xla), last logits
    gathered_weights: int  # fsdp: weights gathered for use without gradients (sampling, scoring)
    scoring: int  # a forward pass of one micro-batch without gradients (the DPO reference pass)

    @property
    def sample_prompt(self) -> int:
        """The prompt length sampling is sized for: half the sampling length."""
        return self.sample_len // 2

    @property
    def activations(self) -> int:
        return self.activations_by_policy[self.remat]

    @property
    def training(self) -> int:
        return (self.params + self.optimizer + self.gradients + self.reference + self.activations + self.logits
                + self.gathered)

    @property
    def sampling(self) -> int:
        return self.served + self.kv_cache + self.prefill + self.gathered_weights

    @property
    def peak(self) -> int:
        return max(self.training, self.sampling)


def _itemsize(dtype: str) -> int:
    return jnp.dtype(dtype).itemsize


def elements_per_chip(cfg: ModelConfig, mesh: tuple[int, int, int]) -> dict[str, int]:
    """Values of each parameter held by one chip; raises ShardingError naming a tensor that does
    not divide."""
    abstract = AbstractMesh(mesh, MESH_AXES)
    return {name: math.prod(named_sharding(abstract, SPECS[name].axes, shape, name).shard_shape(shape))
            for name, shape in param_shapes(cfg).items()}


def optimizer_bytes_per_value(config: RunConfig, param_dtype: str) -> int:
    """Bytes of optimizer state per parameter value, read from the optimizer itself (AdamW keeps
    its first moment in float32 and its second in the parameter dtype)."""
    tx = make_optimizer(config.optim, 1)
    one = {"layers": {"weight": jax.ShapeDtypeStruct((1,), jnp.dtype(param_dtype))}}
    state = jax.eval_shape(tx.init, one)
    return sum(leaf.dtype.itemsize for leaf in jax.tree.leaves(state) if leaf.shape == (1,))


def rows_per_chip(config: RunConfig, mesh: tuple[int, int, int], processes: int = 1) -> int:
    """Sequences of one micro-batch on one chip; raises PlanError when the batch does not divide."""
    data = config.data
    batch_ways = mesh[0] * mesh[1]
    if data.global_batch_size % processes:
        raise PlanError(f"data.global_batch_size={data.global_batch_size} does not divide over {processes} hosts")
    if data.global_batch_size % config.train.grad_accum:
        raise PlanError(f"data.global_batch_size={data.global_batch_size} does not split into "
                        f"train.grad_accum={config.train.grad_accum} micro-batches")
    micro = data.global_batch_size // config.train.grad_accum
    if micro % batch_ways:
        raise PlanError(f"a micro-batch of {micro} rows (data.global_batch_size / train.grad_accum) does not "
                        f"divide over data x fsdp = {batch_ways} chips")
    return micro // batch_ways


def kv_heads_per_chip(cfg: ModelConfig, tensor: int) -> int:
    """KV heads one chip attends with (repeated when fewer than the tensor shards)."""
    return kv_heads_on_mesh(cfg.num_kv_heads, tensor) // tensor


def layer_activations(cfg: ModelConfig, rows: int, seq: int, tensor: int, compute_bytes: int) -> dict[str, int]:
    """Bytes of one decoder layer on one chip: `kept` for its backward pass without remat, its
    `input`, and what the `names` and `dots` policies save."""
    heads, kv_heads, mlp = cfg.num_heads // tensor, kv_heads_per_chip(cfg, tensor), cfg.intermediate_size // tensor
    D, H = cfg.hidden_size, cfg.head_dim
    tokens = rows * seq
    per_token = 4 * D + 2 * heads * H + 2 * kv_heads * H + 3 * mlp
    kept = tokens * per_token * (compute_bytes + 4) + rows * heads * seq * 4  # + the log-sum-exp
    qkv = heads * H + 2 * kv_heads * H
    return dict(kept=kept, input=tokens * D * compute_bytes,
                names=tokens * (qkv + heads * H + 2 * mlp) * compute_bytes,
                dots=tokens * (qkv + D + 2 * mlp) * compute_bytes)


def plan_memory(
    cfg: ModelConfig,
    config: RunConfig,
    mesh: tuple[int, int, int],
    stage: Stage = "sft",
    *,
    processes: int = 1,
    sample_rows: int | None = None,
    sample_len: int | None = None,
    platform: str = "cpu",
) -> MemoryPlan:
    """The per-chip memory of `config` (its data, train and optimizer settings) for model shapes
    `cfg` on a (data, fsdp, tensor) mesh of `platform` (cpu, gpu or tpu: it picks the attention
    backend). Sampling is sized for `sample_rows` sequences over all chips (default
    data.global_batch_size) of `sample_len` tokens (default data.max_length)."""
    p_bytes, c_bytes = _itemsize(config.model.param_dtype), _itemsize(config.model.compute_dtype)
    try:
        per_name = elements_per_chip(cfg, mesh)
    except ShardingError as e:
        raise PlanError(str(e)) from e
    values = sum(per_name.values())
    # what the step trains; with LoRA the frozen rest is held in the compute dtype (QLoRA: codes
    # of one byte and float32 scales), and its judge samples merged, in the compute dtype too
    trained = sum(v for n, v in per_name.items() if is_adapter(n)) if cfg.lora else values
    frozen_bytes = sum(v * jnp.dtype(SPECS[n].frozen_dtype(cfg)).itemsize for n, v in per_name.items()
                       if cfg.lora and not is_adapter(n))
    served = sum(v for n, v in per_name.items() if not is_adapter(n) and not SPECS[n].scales) * (
        c_bytes if cfg.lora else p_bytes)
    rows = rows_per_chip(config, mesh, processes) * (2 if stage == "dpo" else 1)
    seq = bucket_length(config.data.max_length, config.data.bucket_lengths)
    tensor = mesh[2]
    backend = attention_backends.resolve(config.model.attention, platform, config.model.compute_dtype)
    layer = layer_activations(cfg, rows, seq, tensor, c_bytes)
    attention_extra = rows * seq * seq * {"xla": 1, "cudnn": 1 + c_bytes}.get(backend, 0)  # the mask (bias)
    if backend == "xla":
        attention_extra += 3 * rows * (cfg.num_heads // tensor) * min(seq, attention.BLOCK) * seq * 4
    L = cfg.num_layers
    vocab = cfg.padded_vocab_size // tensor
    chunk = min(config.train.logprob_chunk, seq)
    logits = 2 * rows * chunk * vocab * 4

    # Under fsdp the tables and one layer's weights are gathered over fsdp while in use, and so are
    # their gradients until they are scattered back; on TPU the embedding lookup reads each chip's
    # own shard (the TPU compiler's buffers for the shipped configs, results/tpu-compile/), so only
    # the LM head's table is gathered there.
    layer_values = sum(math.prod(s[1:]) for n, s in param_shapes(cfg).items() if SPECS[n].stacked)
    tables = 1 if cfg.tie_word_embeddings or platform == "tpu" else 2
    in_use = (tables * cfg.padded_vocab_size * cfg.hidden_size + layer_values) / tensor * (1 - 1 / mesh[1])
    # LoRA: the frozen base is gathered in the compute dtype, with no weight gradients
    gathered = int(in_use * c_bytes) if cfg.lora else int(in_use * (p_bytes + 4))
    gathered_weights = int(in_use * p_bytes)
    params = frozen_bytes + trained * p_bytes
    # Without gradients only one layer's activations are alive at a time.
    scoring = params + layer["kept"] + attention_extra + logits + gathered_weights

    batch_ways = mesh[0] * mesh[1]
    s_rows = math.ceil((sample_rows or config.data.global_batch_size) / batch_ways)
    s_len = sample_len or config.data.max_length
    kv_token = 2 * L * kv_heads_per_chip(cfg, tensor) * cfg.head_dim * c_bytes  # K and V of one token
    kv = s_rows * s_len * kv_token
    scores = s_rows * (cfg.num_heads // tensor) * min(s_len, attention.BLOCK) * s_len * 8 if backend == "xla" else 0
    prefill = kv + s_rows * (s_len // 2) * kv_token + scores + s_rows * vocab * 4

    return MemoryPlan(
        mesh=mesh, stage=stage, remat=config.model.remat, rows=rows, seq_len=seq,
        sample_rows=s_rows, sample_len=s_len,
        param_count=sum(math.prod(s) for s in param_shapes(cfg).values()),
        params=params,
        served=served,
        optimizer=trained * optimizer_bytes_per_value(config, config.model.param_dtype),
        gradients=trained * (p_bytes + 4),  # the gradient, and the float32 update made from it
        # an in-memory reference is a copy of the policy; LoRA's is the frozen base itself
        reference=values * p_bytes if stage == "dpo" and config.dpo.reference == "in_memory" and not cfg.lora else 0,
        activations_by_policy=remat_activations(layer, L, attention_extra),
        offloaded=L * layer["names"],
        logits=logits,
        gathered=gathered,
        kv_cache=kv,
        prefill=prefill,
        gathered_weights=gathered_weights,
        scoring=scoring,
    )


def remat_activations(layer: dict[str, int], L: int, attention_extra: int) -> dict[str, int]:
    """Device bytes of the activations under each remat policy (the rules in the module docstring)."""
    recomputed = L * layer["input"] + (5 * layer["kept"]) // 4 + attention_extra
    out = dict(none=(L + 1) * layer["kept"] + attention_extra, full=recomputed, offload=recomputed)
    out.update({policy: recomputed + L * layer[policy] for policy in ("names", "dots")})
    return out


def usable_bytes(hbm_gib: float) -> int:
    return int(hbm_gib * USABLE * GIB)


def candidate_meshes(chips: int, max_tensor: int = 8):
    """Every (data, fsdp, tensor) using all chips, tensor at most `max_tensor`."""
    for tensor in range(1, min(chips, max_tensor) + 1):
        if chips % tensor:
            continue
        rest = chips // tensor
        for fsdp in range(1, rest + 1):
            if rest % fsdp == 0:
                yield rest // fsdp, fsdp, tensor


@dataclasses.dataclass(frozen=True)
class Suggestion:
    plan: MemoryPlan
    remat: str
    grad_accum: int

    def overrides(self, config: RunConfig) -> list[str]:
        """The key=value overrides that turn `config` into this suggestion."""
        data, fsdp, tensor = self.plan.mesh
        out = [f"mesh.data={data}", f"mesh.fsdp={fsdp}", f"mesh.tensor={tensor}"]
        if self.remat != config.model.remat:
            out.append(f"model.remat={self.remat}")
        if self.grad_accum != config.train.grad_accum:
            out.append(f"train.grad_accum={self.grad_accum}")
        return out


def suggest(
    cfg: ModelConfig, config: RunConfig, chips: int, hbm_gib: float, stage: Stage = "sft", *, processes: int = 1,
    sample_rows: int | None = None, sample_len: int | None = None, platform: str = "cpu",
) -> Suggestion | None:
    """The cheapest change that fits: first another mesh (least tensor parallelism, then least
    fsdp), then also a remat policy that recomputes more (SEARCH order), then also more gradient
    accumulation. None if nothing fits."""
    budget = usable_bytes(hbm_gib)
    accums = [config.train.grad_accum]
    while config.data.global_batch_size % (accums[-1] * 2) == 0:
        accums.append(accums[-1] * 2)
    policy = config.model.remat
    remats = SEARCH[SEARCH.index(policy):] if policy in SEARCH else (policy,)
    meshes = sorted(candidate_meshes(chips), key=lambda m: (m[2], m[1]))
    for accum in accums:
        for remat in remats:
            changed = dataclasses.replace(
                config, model=dataclasses.replace(config.model, remat=remat),
                train=dataclasses.replace(config.train, grad_accum=accum))
            for mesh in meshes:
                try:
                    plan = plan_memory(cfg, changed, mesh, stage, processes=processes,
                                       sample_rows=sample_rows, sample_len=sample_len, platform=platform)
                except PlanError:
                    continue
                if plan.peak <= budget:
                    return Suggestion(plan, remat, accum)
    return None

"""Sharded runs equal the single-device run; parameters really are split; checkpoints reshard."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from judgejax.model.checkpoint import load_model, save_model
from judgejax.model.hf_import import import_hf
from judgejax.sample.packing import pack_prompts
from judgejax.sample.sampler import device_arrays
from judgejax.sharding import MeshConfig, ShardingError, make_mesh, shard_batch
from tiny_hf import make_tiny_hf

# Every sharded dimension divides 4, so all three meshes below are valid.
SHAPE = dict(num_attention_heads=8, num_key_value_heads=4, hidden_size=64, intermediate_size=128, vocab_size=128)
MESHES = [(8, 1, 1), (2, 2, 2), (1, 2, 4)]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf")
    make_tiny_hf("qwen2-untied", path, **SHAPE)
    return path


def batch(vocab: int):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, vocab, size=(8, 16)).astype(np.int32)
    segments = np.ones_like(tokens)
    segments[::2, 12:] = 0  # right padding on half the rows
    positions = np.broadcast_to(np.arange(16, dtype=np.int32), tokens.shape).copy()
    return {"tokens": tokens, "positions": positions, "segment_ids": segments}


def logits_on(model, mesh, b):
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, b):
        return nnx.merge(graphdef, state)(b["tokens"], b["positions"], b["segment_ids"])[0]

    with jax.set_mesh(mesh):
        return np.asarray(forward(state, shard_batch(mesh, b)))


def test_sharded_logits_equal_single_device(hf_dir):
    single = make_mesh(MeshConfig(data=1), devices=jax.devices()[:1])
    b = batch(SHAPE["vocab_size"])
    ref = logits_on(import_hf(hf_dir, single), single, b)
    for shape in MESHES:
        mesh = make_mesh(MeshConfig(*shape))
        model = import_hf(hf_dir, mesh)
        q = model.layers.q_ldnh[...]  # [layers, embed, heads, head_dim]: embed/fsdp, heads/tensor
        shard_shape = q.addressable_shards[0].data.shape
        assert shard_shape == (q.shape[0], q.shape[1] // shape[1], q.shape[2] // shape[2], q.shape[3])
        embed = model.outer.embed_vd[...]  # [vocab, embed]: vocab/tensor, embed/fsdp
        assert embed.addressable_shards[0].data.shape == (128 // shape[2], 64 // shape[1])
        diff = np.abs(logits_on(model, mesh, b) - ref)[b["segment_ids"].astype(bool)].max()
        print(f"mesh {shape}: max |diff| vs one device = {diff:.2e}")
        assert diff <= 1e-5


def test_checkpoint_written_on_one_mesh_restores_on_another(hf_dir, tmp_path):
    model = import_hf(hf_dir, make_mesh(MeshConfig(8, 1, 1)))
    save_model(tmp_path / "ckpt", model, hf_dir)
    other = make_mesh(MeshConfig(1, 2, 4))
    restored = load_model(tmp_path / "ckpt", other)
    k = restored.layers.k_ldkh[...]
    assert k.sharding.mesh.shape == other.shape
    assert k.addressable_shards[0].data.shape[1:3] == (64 // 2, 4 // 4)
    for group in ("outer", "layers"):
        for name, value in vars(getattr(model, group)).items():
            if isinstance(value, nnx.Param):
                np.testing.assert_array_equal(value[...], getattr(getattr(restored, group), name)[...])


def test_indivisible_dimension_names_the_tensor(tmp_path):
    make_tiny_hf("llama", tmp_path)  # 4 query heads cannot split 8 ways (KV heads would be repeated)
    with pytest.raises(ShardingError, match=r"q_ldnh: dimension 2 \(heads\) has size 4"):
        import_hf(tmp_path, make_mesh(MeshConfig(1, 1, 8)))


def test_batch_rows_that_do_not_divide_the_mesh_are_an_error(hf_dir):
    mesh = make_mesh(MeshConfig(2, 2, 2))  # rows split 4 ways
    with pytest.raises(ShardingError, match=r"batch field tokens: 6 rows do not divide data x fsdp = 4"):
        shard_batch(mesh, {"tokens": np.zeros((6, 3), np.int32)})
    assert shard_batch(mesh, {"tokens": np.zeros((8, 3), np.int32)})["tokens"].addressable_shards[0].data.shape == (2, 3)
    micro = shard_batch(mesh, {"tokens": np.zeros((3, 4, 5), np.int32)}, axis=1)["tokens"]  # [accum, rows, T]
    assert micro.addressable_shards[0].data.shape == (3, 1, 5)
    # The sampler's packed rows used to be replicated when they did not divide; now they are refused.
    packed = pack_prompts([[1, 2, 3]] * 3, batch_rows=3, shards=1, buckets=(8,), pack=False)
    with pytest.raises(ShardingError, match=r"3 rows do not divide data x fsdp = 4"):
        device_arrays(import_hf(hf_dir, mesh), packed)

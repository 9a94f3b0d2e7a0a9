"""Prompt lengths the sampler and the scoring forwards compile for (one is picked by
`judgejax.data.batching.bucket_length`)."""
from __future__ import annotations

# Prompt lengths compiled for: powers of two up to 256, then multiples of 128 and 512 (tile-sized
# on accelerators), so a prompt wastes at most a quarter of its bucket on padding.
DEFAULT_BUCKETS = (32, 64, 128, 192, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
                   2560, 3072, 3584, 4096)


#!/usr/bin/env bash
# One short run on a GPU machine (<= 10 minutes on one H200): the fused attention kernels against
# XLA on the GPU (tests/test_attention_backends.py: pallas-gpu and cudnn there), then
# tools/bench_accelerator.py on the Qwen2.5-1.5B shape (every backend, every remat policy, the
# sampler with scanned and unrolled layers) and the Llama-3.2-3B shape (cudnn and pallas-gpu).
# Each part has a wall-time limit, so the whole ends in time; logs and JSON tables go to $1.
#
#   bash tools/accelerator_check.sh out/        # from the repository root, judgejax importable
set -uo pipefail
mkdir -p "${1:?usage: accelerator_check.sh OUT_DIR}" && out=$(cd "$1" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
python=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/machine.txt"
$python -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())" \
    2>&1 | tee -a "$out/machine.txt"

timeout 90 $python -m pytest -q -p no:cacheprovider tests/test_attention_backends.py 2>&1 | tee "$out/tests.log"

cd tools || exit 1
timeout 330 $python bench_accelerator.py --models qwen2.5-1.5b --attention cudnn pallas-gpu xla \
    --remat names none dots full --steps 3 --sample-batches 1 16 64 --sample-layers scan unrolled \
    --budget-s 260 --json "$out/qwen.json" 2>&1 | tee "$out/qwen.log"
timeout 160 $python bench_accelerator.py --models llama-3.2-3b --attention cudnn pallas-gpu --remat names \
    --steps 3 --sample-batches 1 16 64 --budget-s 100 --json "$out/llama.json" 2>&1 | tee "$out/llama.log"

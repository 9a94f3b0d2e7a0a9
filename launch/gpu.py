#!/usr/bin/env python3
"""Run a judgejax command on N GPU nodes x 8 GPUs under SLURM (writes and submits a batch script).

    python launch/gpu.py --nodes 2 --partition gpu --time 24:00:00 --venv /path/to/venv \
        -- judgejax sft --config configs/qwen2.5-7b.yaml

`--dry-run` prints the script instead of submitting it. The code is in judgejax/launch/slurm.py.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from judgejax.launch.slurm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

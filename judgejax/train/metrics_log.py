"""Training metrics: JSONL (one record per step), TensorBoard events, and a loss-curve PNG."""

from __future__ import annotations

import pathlib

import jax

from judgejax.data.jsonl import append_jsonl, read_appended, write_jsonl


class MetricsLog:
    """Written by process 0 only. On resume, records after the restored step are dropped so the
    file reads as one uninterrupted run."""

    def __init__(self, directory: str | pathlib.Path, resume_step: int = 0):
        self.directory = pathlib.Path(directory)
        self.path = self.directory / "metrics.jsonl"
        self.active = jax.process_index() == 0
        self.writer = None
        if not self.active:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        kept = [r for r in self.records() if r["step"] <= resume_step]
        write_jsonl(self.path, kept)
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(self.directory / "tensorboard"), purge_step=resume_step + 1)

    def records(self) -> list[dict]:
        return read_appended(self.path)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.active:
            return
        append_jsonl(self.path, [{"step": step, **metrics}])
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self, title: str) -> pathlib.Path | None:
        """Flush the events and draw every loss-like metric against the step."""
        if not self.active:
            return None
        self.writer.close()
        records = self.records()
        if not records:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = [k for k in records[-1] if k.endswith("loss") or k == "rewards/accuracies"]
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
        steps = [r["step"] for r in records]
        for ax, key in zip(axes[0], keys):
            ax.plot(steps, [r.get(key) for r in records])
            ax.set_title(key)
            ax.set_xlabel("step")
        fig.suptitle(title)
        fig.tight_layout()
        out = self.directory / "loss_curve.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out

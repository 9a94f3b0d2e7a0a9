"""Where the read-only shared data lies: `../shared` beside the checkout (as CI lays it), else
the development machine's /work/shared."""

from pathlib import Path

SHARED = next((p for p in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")) if p.is_dir()),
              Path(__file__).resolve().parents[2] / "shared")

"""What runs on each TPU VM worker: the setup script (unpack the shipped code, install the pinned
dependencies with jax[tpu], mount the bucket) and the run script (the user's command, its output
prefixed with the worker number). Both are bash, built here as plain strings."""

from __future__ import annotations

import pathlib
import re
import tomllib
from typing import Sequence

CODE_DIR = "~/judgejax"
VENV = "~/judgejax-venv"
RUN_LOG = "~/judgejax-run.log"
SETUP_MARK = "# judgejax setup"
_WORKER = ("W=$(curl -sf -H Metadata-Flavor:Google "
           "http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number"
           ' || echo "?")')


def pinned_requirements(pyproject: pathlib.Path) -> tuple[list[str], str]:
    """(the project's pinned dependencies with jax as jax[tpu], the Python version) read from
    pyproject.toml, so the pins live in one place."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = [re.sub(r"^jax==", "jax[tpu]==", r) for r in project["dependencies"]]
    if not any(r.startswith("jax[tpu]==") for r in requirements):
        raise ValueError(f"{pyproject}: no pinned jax==X in [project].dependencies")
    match = re.search(r"(\d+\.\d+)", project.get("requires-python", ""))
    if not match:
        raise ValueError(f"{pyproject}: requires-python names no version")
    return requirements, match.group(1)


def _quoted(word: str) -> str:
    """`word` for bash, in double quotes when it needs quoting (the scripts hold no single quotes,
    so they read cleanly inside the single-quoted --command of a printed gcloud line)."""
    if re.fullmatch(r"[\w@%+=:,./-]+", word):
        return word
    return '"' + re.sub(r'([\\"$`])', r"\\\1", word) + '"'


def _prefixed(body: str) -> str:
    """`body` in a subshell, every output line prefixed with `[worker N]` (N from the VM's
    metadata); the exit status is the subshell's."""
    return f'set -o pipefail\n{_WORKER}\n(\n{body}\n) 2>&1 | sed -u "s/^/[worker $W] /"\n'


def setup_script(archive: str, requirements: Sequence[str], python: str, bucket: str | None) -> str:
    """Unpack `~/<archive>` into ~/judgejax, make a Python `python` venv with uv, install the pins and
    the project, and mount gs://bucket at /gcs/bucket with gcsfuse."""
    uv = "~/.local/bin/uv"
    lines = [
        f"rm -rf {CODE_DIR} && mkdir -p {CODE_DIR} && tar -xzf ~/{archive} -C {CODE_DIR}",
        f"[ -x {uv} ] || python3 -m pip install --user --quiet uv",
        f"{uv} venv --quiet --allow-existing --python {python} {VENV}",
        f"{uv} pip install --quiet --python {VENV}/bin/python {' '.join(_quoted(r) for r in requirements)}",
        f"{uv} pip install --quiet --python {VENV}/bin/python --no-deps -e {CODE_DIR}",
    ]
    if bucket:
        name = bucket.removeprefix("gs://").strip("/")
        mount = f"/gcs/{name}"
        lines += [
            "if ! command -v gcsfuse >/dev/null; then",
            "  echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt "
            "gcsfuse-$(lsb_release -c -s) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null",
            "  curl -sf https://packages.cloud.google.com/apt/doc/apt-key.gpg "
            "| sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null",
            "  sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse",
            "fi",
            f"mountpoint -q {mount} || {{ sudo mkdir -p {mount} && sudo chown \"$USER\" {mount} && "
            f"gcsfuse --implicit-dirs {_quoted(name)} {mount}; }}",
        ]
    lines.append(f'echo "setup done: jax $({VENV}/bin/python -c "import jax; print(jax.__version__)")"')
    return f"{SETUP_MARK} {archive}\n" + _prefixed("set -euo pipefail\n" + "\n".join(lines))


def run_script(command: Sequence[str]) -> str:
    """Run `command` from the shipped code in the venv; output prefixed and kept in ~/judgejax-run.log;
    the exit status is the command's."""
    body = (f"cd {CODE_DIR} && source {VENV}/bin/activate &&\n"
            f"{' '.join(_quoted(word) for word in command)} 2>&1 | tee -a {RUN_LOG}")
    return _prefixed(body)

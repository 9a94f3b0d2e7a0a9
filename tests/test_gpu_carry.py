"""tools/gpu_carry.py: a file split in two parts, part 1 stashed outside the checkout (first call),
joined with part 2 (second call) into the same bytes, every part and the whole checked against
their SHA-256; damaged, stale or missing parts are refused with the path named."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))

import gpu_carry  # noqa: E402


@pytest.fixture
def calls(tmp_path):
    """The source file, and the carry folders the two calls see: part 1 only, part 2 only."""
    source = tmp_path / "model.whl"
    source.write_bytes(bytes(range(256)) * 4001 + b"tail")
    full = tmp_path / "full"
    manifest = gpu_carry.split(source, full, 300_000)
    first, second = tmp_path / "call1", tmp_path / "call2"
    for folder, part in ((first, "part1"), (second, "part2")):
        folder.mkdir()
        shutil.copyfile(full / part, folder / part)
        shutil.copyfile(full / gpu_carry.MANIFEST, folder / gpu_carry.MANIFEST)
    return source, manifest, first, second


def test_split_stash_join_gives_the_same_bytes(calls, tmp_path):
    source, manifest, first, second = calls
    data = source.read_bytes()
    assert [p["bytes"] for p in manifest["parts"]] == [300_000, len(data) - 300_000]
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    store = tmp_path / "stash"
    assert gpu_carry.stash(first, store) == ["part1"]
    joined = gpu_carry.join(second, store, tmp_path / "wheelhouse", manifest["sha256"])
    assert joined.name == "model.whl" and joined.read_bytes() == data
    assert gpu_carry.sha256(joined) == hashlib.sha256(data).hexdigest()


def test_damaged_part_is_refused(calls, tmp_path):
    source, manifest, first, second = calls
    store = tmp_path / "stash"
    gpu_carry.stash(first, store)
    damaged = bytearray((second / "part2").read_bytes())
    damaged[1000] ^= 1
    (second / "part2").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="part2: sha256 .* differs from the manifest"):
        gpu_carry.join(second, store, tmp_path / "wheelhouse", manifest["sha256"])
    assert not (tmp_path / "wheelhouse" / "model.whl").exists()


def test_missing_part_and_unpinned_manifest_are_refused(calls, tmp_path):
    source, manifest, first, second = calls
    with pytest.raises(FileNotFoundError, match="part part1 is neither in .* nor in .*stash"):
        gpu_carry.join(second, tmp_path / "stash", tmp_path / "wheelhouse", manifest["sha256"])
    with pytest.raises(ValueError, match="field sha256 is .*, not the pinned 0+"):
        gpu_carry.join(second, tmp_path / "stash", tmp_path / "wheelhouse", "0" * 64)
    (first / "part1").unlink()
    with pytest.raises(FileNotFoundError, match="none of the parts"):
        gpu_carry.stash(first, tmp_path / "stash")


def test_stale_manifest_fails_the_whole_checksum(calls, tmp_path):
    """Parts that match a manifest but not the pinned file: the joined file's checksum refuses them."""
    source, manifest, first, second = calls
    data = source.read_bytes()
    other = tmp_path / "other" / "model.whl"
    other.parent.mkdir()
    other.write_bytes(data[:-1] + b"X")
    stale = gpu_carry.split(other, tmp_path / "stale", 300_000)
    # a manifest claiming the pinned sha256 for the other file's parts
    (tmp_path / "stale" / gpu_carry.MANIFEST).write_text(json.dumps({**stale, "sha256": manifest["sha256"]}))
    with pytest.raises(ValueError, match="joined sha256 .* differs from the pinned"):
        gpu_carry.join(tmp_path / "stale", tmp_path / "none", tmp_path / "wheelhouse", manifest["sha256"])
    assert not (tmp_path / "wheelhouse" / "model.whl").exists()


def test_command_line_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(TOOLS / "gpu_carry.py"), "join", "--carry", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"gpu_carry join: error: {tmp_path / 'smollm2' / 'parts.json'}: no manifest "
        "(run `python tools/gpu_carry.py prepare` and carry it)"]


def test_carry_folder_is_ignored_and_left_out_of_the_tree_size(tmp_path):
    """What every call sends (tracked and untracked-not-ignored files) excludes the carry folder
    once `ignore` lists it in .git/info/exclude, which gets the line once however often it runs."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "tracked.txt").write_bytes(b"x" * 100)
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.txt"], check=True)
    (tmp_path / "untracked.txt").write_bytes(b"y" * 10)
    carry = tmp_path / ".carry"
    carry.mkdir()
    (carry / "part1").write_bytes(b"z" * 1000)
    assert gpu_carry.tree_bytes(tmp_path) == 1110
    gpu_carry.ignore(tmp_path, carry)
    gpu_carry.ignore(tmp_path, carry)
    assert (tmp_path / ".git" / "info" / "exclude").read_text().splitlines().count("/.carry/") == 1
    assert gpu_carry.tree_bytes(tmp_path) == 110
    assert gpu_carry.folder_bytes(carry) == 1000

"""Source snapshots: ignore files, .git, symlinks, limits, and a faithful restore."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.packaging.snapshot import collect, restore, snapshot
from modelport.store.artifacts import LocalArtifactStore


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(source: Path, **limits: int) -> list[str]:
    return [relative for relative, _ in collect(source, **limits)]


def test_amlignore_wins_over_gitignore(tmp_path):
    make_tree(tmp_path, {"score.py": "", "a.txt": "", "b.txt": "", ".gitignore": "a.txt\n", ".amlignore": "b.txt\n"})
    assert names(tmp_path) == [".amlignore", ".gitignore", "a.txt", "score.py"]


def test_gitignore_is_used_without_amlignore(tmp_path):
    make_tree(tmp_path, {"score.py": "", "run.log": "", "keep.log": "", "build/out.bin": "", "src/build/x.py": "",
                         "data/big.csv": "", "data/small.csv": "",
                         ".gitignore": "*.log\n!keep.log\n/build/\ndata/big.csv\n"})
    assert names(tmp_path) == [".gitignore", "data/small.csv", "keep.log", "score.py", "src/build/x.py"]


def test_directory_patterns_prune_whole_folders(tmp_path):
    make_tree(tmp_path, {"score.py": "", ".venv/lib/x.py": "", "pkg/__pycache__/m.pyc": "",
                         ".amlignore": ".venv/\n__pycache__/\n"})
    assert names(tmp_path) == [".amlignore", "score.py"]


def test_git_folders_are_always_left_out(tmp_path):
    make_tree(tmp_path, {"score.py": "", ".git/HEAD": "ref", ".git/objects/ab/cd": "", "vendor/lib/.git/config": "",
                         "vendor/lib/mod.py": "", ".gitignore": "!.git\n"})
    assert names(tmp_path) == [".gitignore", "score.py", "vendor/lib/mod.py"]


def test_symlink_outside_is_refused_with_its_target(tmp_path):
    source = make_tree(tmp_path / "src", {"score.py": ""})
    outside = make_tree(tmp_path / "elsewhere", {"secret.txt": "x"})
    (source / "leak").symlink_to(outside / "secret.txt")
    with pytest.raises(InvalidInput, match=f"symlink leak points to {outside / 'secret.txt'}, outside"):
        collect(source)


def test_ignored_symlink_outside_is_fine(tmp_path):
    source = make_tree(tmp_path / "src", {"score.py": "", ".amlignore": "venv\n"})
    (source / "venv").symlink_to(tmp_path, target_is_directory=True)
    assert names(source) == [".amlignore", "score.py"]


def test_symlinks_inside_are_followed(tmp_path):
    make_tree(tmp_path, {"score.py": "print(1)", "lib/util.py": "U = 1"})
    (tmp_path / "alias.py").symlink_to("score.py")
    (tmp_path / "lib2").symlink_to("lib", target_is_directory=True)
    collected = dict(collect(tmp_path))
    assert list(collected) == ["alias.py", "lib/util.py", "lib2/util.py", "score.py"]
    assert collected["alias.py"].read_text() == "print(1)"
    assert collected["lib2/util.py"] == tmp_path.resolve() / "lib" / "util.py"


def test_symlink_loops_and_broken_links_are_refused(tmp_path):
    make_tree(tmp_path / "src", {"score.py": "", "sub/x.py": ""})
    (tmp_path / "src" / "sub" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink sub/up points back to its own parent folder"):
        collect(tmp_path / "src")
    (tmp_path / "src" / "sub" / "up").unlink()
    (tmp_path / "src" / "gone").symlink_to("nowhere.py")
    with pytest.raises(InvalidInput, match="symlink gone points to nowhere.py, which does not exist"):
        collect(tmp_path / "src")


def test_file_over_the_limit_is_named(tmp_path):
    make_tree(tmp_path, {"score.py": "x" * 10, "model.bin": "x" * 11})
    assert names(tmp_path, max_file_bytes=11) == ["model.bin", "score.py"]
    with pytest.raises(InvalidInput, match="model.bin is 11 bytes, over the 10 byte limit"):
        collect(tmp_path, max_file_bytes=10)


def test_total_over_the_limit_is_refused(tmp_path):
    make_tree(tmp_path, {"a.py": "x" * 6, "b.py": "x" * 6})
    assert names(tmp_path, max_total_bytes=12) == ["a.py", "b.py"]
    with pytest.raises(InvalidInput, match="holds 12 bytes, over the 11 byte limit"):
        collect(tmp_path, max_total_bytes=11)


def test_missing_file_and_empty_sources_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        collect(tmp_path / "nope")
    make_tree(tmp_path, {"file.py": ""})
    with pytest.raises(InvalidInput, match="is not a directory"):
        collect(tmp_path / "file.py")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="has no files to package"):
        collect(tmp_path / "empty")
    make_tree(tmp_path / "ignored", {"x.log": "", ".git/HEAD": ""})
    (tmp_path / "ignored" / ".amlignore").write_text("*\n")
    with pytest.raises(InvalidInput, match="has no files to package"):
        collect(tmp_path / "ignored")


def test_same_tree_gives_same_sha(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    first = make_tree(tmp_path / "one", {"score.py": "a", "lib/u.py": "b"})
    second = make_tree(tmp_path / "two", {"lib/u.py": "b", "score.py": "a"})
    taken = snapshot(first, store)
    assert snapshot(second, store) == taken
    assert (taken.file_count, taken.size_bytes) == (2, 2)
    (second / "lib" / "u.py").write_text("c")
    assert snapshot(second, store).sha256 != taken.sha256
    os.chmod(first / "score.py", 0o755)
    assert snapshot(first, store).sha256 != taken.sha256


def test_restore_reproduces_content_and_modes(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    source = make_tree(tmp_path / "src", {"score.py": "def run(x): return x", "bin/tool.sh": "#!/bin/sh\n",
                                          "conf/secret.json": "{}", ".amlignore": "*.tmp\n", "skip.tmp": ""})
    os.chmod(source / "bin" / "tool.sh", 0o755)
    os.chmod(source / "conf" / "secret.json", 0o600)
    taken = snapshot(source, store, max_file_bytes=1024)
    written = restore(store, taken.sha256, tmp_path / "out")
    restored = {path.relative_to(tmp_path / "out").as_posix(): path for path in written}
    assert sorted(restored) == [".amlignore", "bin/tool.sh", "conf/secret.json", "score.py"]
    for relative, path in restored.items():
        original = source / relative
        assert path.read_bytes() == original.read_bytes()
        assert path.stat().st_mode & 0o777 == original.stat().st_mode & 0o777, relative
    assert not (tmp_path / "out" / "skip.tmp").exists()


def test_a_workspace_folder_is_never_packaged_even_with_its_links_and_sockets(tmp_path):
    """A project whose source folder is also its workspace folder: .modelport (database, token, keys, venv
    links, the admin socket) stays out, at any depth, without any ignore file."""
    make_tree(tmp_path, {"score.py": "", ".modelport/token": "secret", ".modelport/workspace.db": "",
                         "sub/.modelport/config.json": "{}", "sub/model.py": ""})
    (tmp_path / ".modelport" / "python").symlink_to("/usr/bin/python3")  # a link out: refused if visited
    assert names(tmp_path) == ["score.py", "sub/model.py"]


def test_without_a_source_folder_only_the_entry_script_is_packaged(tmp_path, monkeypatch):
    from modelport.sdk.inference_config import InferenceConfig

    make_tree(tmp_path, {"src/score.py": "def init(): pass\n", "src/other.py": "", "big.bin": "x",
                         ".modelport/token": "secret"})
    monkeypatch.chdir(tmp_path)
    files = InferenceConfig(entry_script="src/score.py").source_files()
    assert files == [("src/score.py", tmp_path / "src" / "score.py")]

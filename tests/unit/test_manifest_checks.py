"""The folder-manifest checker and ``inside``: hostile paths are refused by name and nothing lands outside.

Each hostile manifest is written with ``materialize`` into ``<tmp>/root/a/b`` of a real artifact store;
the test compares every file under ``<tmp>`` before and after, so a write anywhere else shows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.store.artifacts import LocalArtifactStore, inside, materialize, parse_manifest
from modelport.store.checks import check_file_name, check_manifest

CONTENT = b"escaped?"


@pytest.fixture
def store(tmp_path):
    return LocalArtifactStore(tmp_path / "blobs")


def files_under(folder: Path) -> set[str]:
    """Every path (files, folders, links) under ``folder``, relative to it."""
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def entry(store: LocalArtifactStore, path: object, **fields: object) -> dict:
    return {"path": path, "sha256": store.put_bytes(CONTENT), "size": len(CONTENT), "mode": 0o644, **fields}


def manifest_blob(store: LocalArtifactStore, entries: list) -> str:
    return store.put_bytes(json.dumps(entries).encode())


HOSTILE_PATHS = [
    ("../x", "has the part '..', which names a folder or its parent, not a file"),
    ("a/../../x", "has the part '..', which names a folder or its parent, not a file"),
    ("../../escape/x", "has the part '..', which names a folder or its parent, not a file"),
    ("../" * 20 + "tmp/escape/x", "has the part '..', which names a folder or its parent, not a file"),
    ("...", "has the part '...', which names a folder or its parent, not a file"),
    (". .", "has the part '. .', which names a folder or its parent, not a file"),
    ("/etc/x", "is absolute"),
    ("{tmp}/escape/x", "is absolute"),
    ("a//b", "has an empty part ('//' or a '/' at either end)"),
    ("a/", "has an empty part ('//' or a '/' at either end)"),
    ("a\\..\\x", "contains '\\', a folder separator on Windows"),
    ("..\\x", "contains '\\', a folder separator on Windows"),
    ("", "is empty"),
    (".", "has the part '.', which names a folder or its parent, not a file"),
    ("a/./b", "has the part '.', which names a folder or its parent, not a file"),
    ("a\x00/../../x", "contains the control character '\\x00'"),
    ("model\n.pkl", "contains the control character '\\n'"),
    ("a\ud800", "contains a lone UTF-16 surrogate, which no file name can hold"),
    ("x" * 256, "has a part over the 255 byte limit of a file name"),
    ("é" * 128, "has a part over the 255 byte limit of a file name"),  # 256 bytes in UTF-8
    ("a/" * 512 + "x", "is over the 1024 byte limit"),
    ("\uff0e\uff0e/x", "has the part '．．', which reads as '..' once Unicode-normalised (NFKC)"),
    ("\u2024\u2024/x", "has the part '․․', which reads as '..' once Unicode-normalised (NFKC)"),
    ("a/\u2025/x", "has the part '‥', which reads as '..' once Unicode-normalised (NFKC)"),
    ("a\uff0f..\uff0fx", "has the part 'a／..／x', which reads as 'a/../x' once Unicode-normalised (NFKC)"),
    ("a\uff3c..\uff3cx", "has the part 'a＼..＼x', which reads as 'a\\\\..\\\\x' once Unicode-normalised (NFKC)"),
    (7, "is int, not text"),
]


@pytest.mark.parametrize(("path", "reason"), HOSTILE_PATHS)
def test_a_hostile_path_is_refused_by_entry_and_nothing_is_written(store, tmp_path, path, reason):
    path = path.replace("{tmp}", str(tmp_path)) if isinstance(path, str) else path
    sha = manifest_blob(store, [entry(store, "ok.txt"), entry(store, path)])
    before = files_under(tmp_path)

    with pytest.raises(InvalidInput) as refused:
        materialize(store, sha, tmp_path / "root" / "a" / "b")

    message = str(refused.value)
    assert message.startswith(f"folder manifest {sha[:12]} entry 1 path ")
    assert f" {reason}; a path is relative" in message
    assert "\n" not in message and len(message) < 400
    assert files_under(tmp_path) == before  # not even ok.txt: the whole manifest is checked before writing


@pytest.mark.parametrize("name", [
    "a\u2215..\u2215x",  # DIVISION SLASH: a plain character on POSIX
    "x\u2044..\u2044y",  # FRACTION SLASH
    "データ（１）.csv",  # full-width characters NFKC would change, but into nothing that climbs
    "..hidden",
    "v1.2/model..pkl",
])
def test_look_alikes_that_cannot_climb_are_plain_names_inside_the_folder(store, tmp_path, name):
    target = tmp_path / "root"
    written = materialize(store, manifest_blob(store, [entry(store, name)]), target)
    assert written == [target / name]
    assert (target / name).read_bytes() == CONTENT
    parts = name.split("/")
    assert {path for path in files_under(tmp_path) if not path.startswith("blobs")} == {
        "root", *(f"root/{'/'.join(parts[:depth])}" for depth in range(1, len(parts) + 1))}


SHA = "a" * 64


@pytest.mark.parametrize(("entries", "message"), [
    ({"path": "a", "sha256": SHA, "size": 1, "mode": 420},
     "folder manifest must be a non-empty JSON list of {path, sha256, size, mode} entries, not {'path'"),
    ([], "folder manifest must be a non-empty JSON list of {path, sha256, size, mode} entries, not []"),
    (["a"], "folder manifest entry 0 is 'a'; each entry has exactly the keys mode, path, sha256, size"),
    ([{"path": "a", "sha256": SHA, "size": 1}],
     "folder manifest entry 0 is {'path': 'a', "),
    ([{"path": "a", "sha256": SHA, "size": 1, "mode": 420, "link": "/etc"}],
     "folder manifest entry 0 is {'path': 'a', "),
    ([{"path": "a", "sha256": SHA, "size": 1, "mode": 420}, {"path": "a", "sha256": SHA, "size": 2, "mode": 420}],
     "folder manifest entry 1 ('a') repeats entry 0's path; list each file once"),
    ([{"path": "a", "sha256": SHA, "size": 1, "mode": 420}, {"path": "a/b", "sha256": SHA, "size": 1, "mode": 420}],
     "folder manifest lists 'a' as a file and 'a/b' inside it; a path cannot be both a file and a folder"),
    ([{"path": "x/y/z", "sha256": SHA, "size": 1, "mode": 420}, {"path": "x/y", "sha256": SHA, "size": 1, "mode": 4}],
     "folder manifest lists 'x/y' as a file and 'x/y/z' inside it"),
    ([{"path": "a", "sha256": "../../etc/passwd", "size": 1, "mode": 420}],
     "folder manifest entry 0 ('a') digest '../../etc/passwd' is not a sha256 (64 lowercase hex digits)"),
    ([{"path": "a", "sha256": SHA.upper(), "size": 1, "mode": 420}],
     "folder manifest entry 0 ('a') digest 'AAAA"),
    ([{"path": "a", "sha256": SHA, "size": -1, "mode": 420}],
     "folder manifest entry 0 ('a') size -1 is not a whole number of zero or more"),
    ([{"path": "a", "sha256": SHA, "size": True, "mode": 420}],
     "folder manifest entry 0 ('a') size True is not a whole number of zero or more"),
    ([{"path": "a", "sha256": SHA, "size": 1.5, "mode": 420}],
     "folder manifest entry 0 ('a') size 1.5 is not a whole number of zero or more"),
    ([{"path": "a", "sha256": SHA, "size": 1, "mode": 0o4755}],
     "folder manifest entry 0 ('a') mode 2541 is not a permission mode from 0 to 0o777 (511)"),
    ([{"path": "a", "sha256": SHA, "size": 1, "mode": "0644"}],
     "folder manifest entry 0 ('a') mode '0644' is not a permission mode from 0 to 0o777 (511)"),
])
def test_a_malformed_manifest_is_refused_naming_the_entry(entries, message):
    with pytest.raises(InvalidInput) as refused:
        check_manifest(entries)
    assert str(refused.value).startswith(message)


def test_a_blob_that_is_not_json_is_not_a_manifest():
    for data in (b"\x89PNG\r\n", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"):
        with pytest.raises(InvalidInput, match=f"blob {SHA} is not a folder manifest \\(not JSON\\); upload the"):
            parse_manifest(data, SHA)


@pytest.mark.parametrize(("name", "message"), [
    ("../m.pkl", "model artifact name '../m.pkl' has the part '..'"),
    ("sub/m.pkl", "model artifact name 'sub/m.pkl' contains '/'; use one file or folder name such as 'model.pkl'"),
    ("..", "model artifact name '..' has the part '..'"),
    ("", "model artifact name '' is empty"),
    (None, "model artifact name None is NoneType, not text"),
])
def test_an_artifact_name_is_one_plain_name(name, message):
    with pytest.raises(InvalidInput) as refused:
        check_file_name("model artifact name", name)
    assert str(refused.value).startswith(message)
    assert check_file_name("model artifact name", "model.pkl") == "model.pkl"


def test_a_symlink_inside_the_folder_that_leads_out_is_not_followed(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "root"
    target.mkdir()
    (target / "sub").symlink_to(outside)
    (target / "model.pkl").symlink_to(outside / "model.pkl")  # dangling: its target does not exist yet
    for path in ("sub/x", "model.pkl"):
        with pytest.raises(InvalidInput) as refused:
            materialize(store, manifest_blob(store, [entry(store, path)]), target)
        assert str(refused.value) == (
            f"'{path}' under {target} leads to {outside / Path(path).name}, outside that folder (through '..', "
            "an absolute path or a symlink); remove the symlink or fix the path")
    assert files_under(outside) == set()


def test_a_symlink_that_stays_inside_is_followed(store, tmp_path):
    target = tmp_path / "root"
    (target / "real").mkdir(parents=True)
    (target / "alias").symlink_to("real")
    assert materialize(store, manifest_blob(store, [entry(store, "alias/w.bin")]), target) == [target / "real/w.bin"]
    assert (target / "real" / "w.bin").read_bytes() == CONTENT


def test_inside_refuses_the_folder_itself_and_symlink_loops(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(InvalidInput, match="cannot be resolved .*; remove the looping symlink or fix the path"):
        inside(tmp_path, "loop/x")
    for relative in ("", ".", "a/.."):
        with pytest.raises(InvalidInput, match=f"leads to {tmp_path}, outside that folder"):
            inside(tmp_path, relative)
    assert inside(tmp_path, "a/b") == tmp_path / "a" / "b"


def test_modes_of_written_files_are_the_manifests(store, tmp_path):
    sha = manifest_blob(store, [entry(store, "run.sh", mode=0o750), entry(store, "w.bin", mode=0o600)])
    materialize(store, sha, tmp_path / "root")
    assert oct(os.stat(tmp_path / "root/run.sh").st_mode & 0o7777) == oct(0o750)
    assert oct(os.stat(tmp_path / "root/w.bin").st_mode & 0o7777) == oct(0o600)

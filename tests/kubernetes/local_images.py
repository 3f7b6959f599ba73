"""An EMULATED image store for Kubernetes tests: images as folders on this machine, not container images.

``LocalImages`` is a ``Builder`` (``modelport.backends.kubernetes.builders``) for ``ImageBuilds``: it is handed the
real build contexts (``images.environment_context`` with the packages uv installed on this machine, and
``images.app_context`` with the app root at ``/var/azureml-app`` and the modelport package) and, instead of an image
engine, carries out their Containerfile into one folder per image name:

- ``FROM`` an image of this store: its files (hard links), environment, working folder and command; ``FROM`` a
  ``python:X.Y...`` base image: a bare virtual environment of this machine's CPython X.Y stands in for it (the
  standard library and nothing else, like the slim image; one ``.pth`` file honours ``PYTHONUSERBASE`` as the
  image's user site, as the real interpreter does); any other base image is refused;
- ``COPY`` into the image's root folder, ``ENV``, ``WORKDIR``, ``CMD`` as an engine does; ``USER`` and ``EXPOSE``
  are recorded, not applied; ``RUN`` (JSON form) runs here with the image's paths mapped into its folder, so the
  images' own checks (the runtime's modules import from the environment, modelport imports from the app layer)
  run for real.

``LocalImage`` tells the emulated kubelet (``kubelet.py``) how to run a container of an image: its command and
environment with container paths (``/var/azureml-app``, ``/opt/modelport/...``) mapped to the image's folder, and
``python3`` to the stand-in interpreter. There is no isolation of any kind: processes see this machine's files, its
network and run as the test's user. The real image build is tested with podman in
``tests/kubernetes/test_podman_kube_play.py``; this store lets the backend contract suite run pods as processes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import IO

from modelport.backends.kubernetes.builders import ImageBuildFailed

MANIFEST = "image.json"  # written last: an image folder with it is complete
ROOT = "rootfs"
BASES = ".bases"
PYTHON_BASE = re.compile(r"(?:^|/)python:(\d+\.\d+)")
USER_SITE_PTH = ("import os, site; os.environ.get('PYTHONUSERBASE') and "
                 "site.addsitedir(site.getusersitepackages())\n")
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class LocalImage:
    """One image of the store. ``root``: its file system's root folder; ``env``: its ``ENV`` (container paths);
    ``workdir``: its ``WORKDIR`` (a container path); ``cmd``: its ``CMD``; ``python``: the interpreter standing in
    for its base image's ``python3``; ``user``/``ports``: its ``USER`` and ``EXPOSE`` (recorded only)."""

    name: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    cmd: list[str] = field(default_factory=list)
    python: str = ""
    user: str | None = None
    ports: list[str] = field(default_factory=list)

    def host_path(self, path: str) -> str:
        """``path`` as seen from the container, as a path on this machine: under ``root`` when its first folder is
        one the image has (``/var/azureml-app/x`` -> ``<root>/var/azureml-app/x``), else unchanged (``/tmp``)."""
        parts = Path(path).parts
        if path.startswith("/") and not path.startswith("//") and len(parts) > 1 and (self.root / parts[1]).exists():
            return str(self.root / Path(*parts[1:]))
        return path

    def host_value(self, value: str) -> str:
        """An environment value with each ``:``-separated container path mapped (``PYTHONPATH=/a:/b``)."""
        return ":".join(self.host_path(part) for part in value.split(":"))

    def host_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` (names to values) with container paths in its values mapped by ``host_value``."""
        return {name: self.host_value(value) for name, value in env.items()}

    def host_argv(self, argv: list[str]) -> list[str]:
        """A command line with ``python3``/``python``/``pythonX.Y`` as the stand-in interpreter and container paths
        mapped."""
        if not argv:
            return []
        first = self.python if re.fullmatch(r"python(3(\.\d+)?)?", argv[0]) and self.python else argv[0]
        return [first, *(self.host_path(arg) for arg in argv[1:])]


class LocalImages:
    """The emulated image store under ``root`` (one folder per image name) and the ``Builder`` that fills it.

    ``installs_on_host`` is True: contexts carry packages installed on this machine, which ``COPY`` takes in."""

    installs_on_host = True

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # the Builder protocol

    def exists(self, image: str) -> bool:
        """Whether ``image`` is in the store (built completely)."""
        return (self._folder(image) / MANIFEST).is_file()

    def build(self, context: Path, image: str, log: IO[str]) -> None:
        """Carry out ``context``'s Containerfile into the store as ``image``, writing each step to ``log``. Raises
        ImageBuildFailed (with the log's last lines) for an instruction it cannot carry out or a failed ``RUN``."""
        work = Path(tempfile.mkdtemp(prefix=".building-", dir=self.root))
        try:
            made = LocalImage(name=image, root=work / ROOT)
            made.root.mkdir()
            for number, (keyword, rest) in enumerate(_instructions(context / "Containerfile"), start=1):
                log.write(f"STEP {number}: {keyword} {rest}\n")
                log.flush()
                made = self._step(made, keyword, rest, context, log)
            final = self._folder(image)
            made = replace(made, root=final / ROOT)
            (work / MANIFEST).write_text(json.dumps({**asdict(made), "root": ROOT}, indent=1))
            with self._lock:
                if not (final / MANIFEST).exists():
                    shutil.rmtree(final, ignore_errors=True)
                    os.replace(work, final)
            log.write(f"stored {image} in the emulated image store ({final})\n")
            log.flush()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def push(self, image: str, log: IO[str]) -> None:
        """Nothing to do: the emulated store is also the registry pods pull from."""
        log.write(f"{image}: the emulated image store is its own registry; nothing pushed\n")

    # what the emulated kubelet asks

    def get(self, image: str) -> LocalImage | None:
        """The stored ``image``, or None when the store does not have it (a pull would fail)."""
        folder = self._folder(image)
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            return None
        return LocalImage(**{**data, "root": folder / ROOT})

    def names(self) -> list[str]:
        """Every stored image's name."""
        return sorted(json.loads(p.read_text())["name"] for p in self.root.glob(f"*/{MANIFEST}"))

    # the instructions

    def _step(self, made: LocalImage, keyword: str, rest: str, context: Path, log: IO[str]) -> LocalImage:
        if keyword == "FROM":
            return self._from(made, rest.split()[0])
        if keyword == "COPY":
            *sources, destination = [a for a in shlex.split(rest) if not a.startswith("--")]
            target = made.root / _absolute(destination, made.workdir).lstrip("/")
            for source in sources:
                _copy(context / source, target, into=destination.endswith("/") or len(sources) > 1)
            return made
        if keyword == "ENV":
            return replace(made, env={**made.env, **_env_pairs(rest)})
        if keyword == "WORKDIR":
            workdir = _absolute(rest.strip(), made.workdir)
            (made.root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
            return replace(made, workdir=workdir)
        if keyword == "CMD":
            return replace(made, cmd=_command(rest))
        if keyword == "USER":
            return replace(made, user=rest.strip())
        if keyword == "EXPOSE":
            return replace(made, ports=[*made.ports, *rest.split()])
        if keyword == "RUN":
            self._run(made, rest, log)
            return made
        raise ImageBuildFailed(made.name, f"the emulated image store cannot carry out {keyword} instructions")

    def _from(self, made: LocalImage, base: str) -> LocalImage:
        stored = self.get(base)
        if stored is not None:
            shutil.copytree(stored.root, made.root, copy_function=_link_or_copy, symlinks=True, dirs_exist_ok=True)
            return replace(stored, name=made.name, root=made.root)
        version = PYTHON_BASE.search(base)
        if version is None:
            raise ImageBuildFailed(made.name, f"the emulated image store has no image {base} and can stand in only "
                                              "for python:X.Y base images")
        return replace(made, python=self._base_python(version.group(1)))

    def _run(self, made: LocalImage, rest: str, log: IO[str]) -> None:
        if not rest.lstrip().startswith("["):
            raise ImageBuildFailed(made.name, "the emulated image store runs only JSON-form RUN instructions (a "
                                              f"shell command's paths cannot be mapped): RUN {rest}")
        argv = made.host_argv(json.loads(rest))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **made.host_env(made.env)}
        cwd = Path(made.host_path(made.workdir)) if made.workdir != "/" else made.root
        cwd.mkdir(parents=True, exist_ok=True)
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
        if process.wait() != 0:
            raise ImageBuildFailed(made.name, f"RUN {rest} failed with exit status {process.returncode}",
                                   "\n".join(tail))

    def _base_python(self, version: str) -> str:
        """A bare virtual environment of this machine's CPython ``version`` (made once, in the store), standing in
        for a slim ``python:<version>`` image: only the standard library, plus the user site of ``PYTHONUSERBASE``."""
        venv = self.root / BASES / f"python{version}"
        python = venv / "bin" / "python3"
        with self._lock:
            if not (venv / ".complete").exists():
                interpreter = _host_python(version)
                shutil.rmtree(venv, ignore_errors=True)
                subprocess.run([interpreter, "-m", "venv", "--without-pip", str(venv)], check=True,
                               capture_output=True)
                site_packages = next(venv.glob("lib/python*/site-packages"))
                (site_packages / "modelport-emulated-user-site.pth").write_text(USER_SITE_PTH)
                (venv / ".complete").write_text(interpreter)
        return str(python)

    def _folder(self, image: str) -> Path:
        return self.root / sha256(image.encode()).hexdigest()[:24]


def _host_python(version: str) -> str:
    """This machine's CPython ``version`` (``3.11``): the one running the tests when it is that version, else
    ``pythonX.Y`` on PATH. Raises ImageBuildFailed when there is none."""
    candidates = [str(Path(sys.base_prefix) / "bin" / f"python{version}"), shutil.which(f"python{version}")]
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError:
            continue
        if found == version:
            return candidate
    raise ImageBuildFailed(f"python:{version}", f"this machine has no CPython {version} to stand in for the base "
                                                "image; install it or pin the environment's python to one it has")


def _instructions(containerfile: Path) -> Iterator[tuple[str, str]]:
    """(KEYWORD, rest) of each instruction, continuation lines joined and comments left out."""
    joined = re.sub(r"\\\n", " ", containerfile.read_text())
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            yield keyword.upper(), rest.strip()


def _env_pairs(rest: str) -> dict[str, str]:
    """``ENV a=1 b="two words"`` (or the old ``ENV name value``) as names to values."""
    words = shlex.split(rest)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def _command(rest: str) -> list[str]:
    return json.loads(rest) if rest.lstrip().startswith("[") else ["/bin/sh", "-c", rest]


def _absolute(path: str, workdir: str) -> str:
    return path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"


def _copy(source: Path, target: Path, into: bool) -> None:
    """Docker's COPY: a folder's contents into ``target``; a file to ``target`` (into it when ``into``)."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy, symlinks=True, dirs_exist_ok=True)
        return
    destination = target / source.name if into or target.is_dir() else target
    destination.parent.mkdir(parents=True, exist_ok=True)
    _link_or_copy(str(source), str(destination))


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (images share files as layers do), a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)

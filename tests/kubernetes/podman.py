"""Podman for tests that run images for real: a test-owned ``containers.conf`` and a small Debian base image.

Used by ``test_podman_kube_play.py`` (import the fixture there) and ``benchmarks/image_build.py``
(``start_podman``). The base image is made once per machine with
``debootstrap --variant=minbase`` (Debian bookworm with python3, about 40 s) and ``podman import``, tagged by the
package list so later sessions reuse it; ``curl`` is in it because ``podman kube play`` turns a liveness probe into
a ``curl`` healthcheck. ``containers.conf`` picks runc (crun is not packaged here), cgroupfs (no systemd) and file
events, with ulimits small enough for the machine's limits. Tests skip, naming what is missing, where podman,
debootstrap or runc are not installed (``.ci/run`` installs them) or podman cannot run a container here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelport.backends.kubernetes.builders import CliBuilder

SUITE = "bookworm"
MIRROR = os.environ.get("MODELPORT_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ("python3", "curl", "ca-certificates")
BASE_REPOSITORY = "localhost/modelport-test-base"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRIMMED = ("./var/cache/apt/archives", "./var/lib/apt/lists", "./usr/share/doc", "./usr/share/man",
           "./usr/share/locale", "./usr/share/info")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
COMMAND_TIMEOUT_S = 600


@dataclass(frozen=True)
class Podman:
    """Podman as the tests use it: ``env`` names the test's ``containers.conf`` (and registries.conf);
    ``base_image`` is the Debian base image to build environments on (``MODELPORT_BASE_IMAGE``)."""

    env: dict[str, str]
    base_image: str
    folder: Path

    def builder(self) -> CliBuilder:
        """A podman ``CliBuilder`` with this configuration."""
        return CliBuilder("podman", env=self.env)

    def run(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """``podman *args`` with this configuration; output captured as text."""
        result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **self.env})
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result


class PodmanUnavailable(Exception):
    """Podman cannot be used here; the message says what is missing."""


def start_podman(folder: Path) -> Podman:
    """Podman configured by files in ``folder``, with the base image made if this machine lacks it (also used by
    ``benchmarks/image_build.py``). Raises PodmanUnavailable naming what is missing or what failed."""
    missing = [tool for tool in ("podman", "debootstrap", "runc") if shutil.which(tool) is None]
    if missing:
        raise PodmanUnavailable(f"{', '.join(missing)} not installed (apt-get install podman debootstrap runc; "
                                ".ci/run does)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    (folder / "registries.conf").write_text("")  # no search registries: every name in the tests is complete
    env = {"CONTAINERS_CONF": str(folder / "containers.conf"),
           "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf")}
    engine = Podman(env, base_image_name(), folder)
    if engine.run("image", "exists", engine.base_image, check=False).returncode != 0:
        _make_base_image(engine, folder / "root")
    probe = engine.run("run", "--rm", "--network=none", engine.base_image, "python3", "-c", "print('ok')",
                       check=False)
    if probe.stdout.strip() != "ok":
        raise PodmanUnavailable(f"podman cannot run a container here: "
                                f"{(probe.stderr.strip().splitlines() or ['?'])[-1]}")
    return engine


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """Podman with a test-owned configuration and the base image (made once per machine); skips with the reason
    when podman cannot be used here."""
    try:
        yield start_podman(tmp_path_factory.mktemp("podman"))
    except PodmanUnavailable as reason:
        pytest.skip(str(reason))


def registries_conf(engine: Podman, insecure: list[str]) -> None:
    """Let podman push to and pull from these plain-HTTP registries (``host:port``), as a user would in
    ``registries.conf``."""
    entries = "".join(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n\n' for host in insecure)
    Path(engine.env["CONTAINERS_REGISTRIES_CONF"]).write_text(entries)


def base_image_name() -> str:
    """The base image's name: its packages' hash in the tag, so a changed list makes a new one."""
    key = hashlib.sha256(f"{SUITE} minbase {' '.join(PACKAGES)} {PATH}".encode()).hexdigest()[:12]
    return f"{BASE_REPOSITORY}:{SUITE}-{key}"


def _make_base_image(engine: Podman, root: Path) -> None:
    """debootstrap a minimal bookworm with PACKAGES into ``root``, then ``podman import`` it with PATH set."""
    result = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root),
                             MIRROR], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if result.returncode != 0:
        raise PodmanUnavailable(f"debootstrap of {SUITE} failed (is {MIRROR} reachable?): "
                                f"{(result.stderr.strip().splitlines() or ['?'])[-1]}")
    archive = root.parent / "base.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".", filter=lambda info: None if info.name.startswith(TRIMMED) else info)
    shutil.rmtree(root, ignore_errors=True)
    engine.run("import", "--change", f"ENV PATH={PATH}", str(archive), engine.base_image)
    archive.unlink()

# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment definition (extras/ee/) and the collection's own EE dependencies (meta/).

Without a container runtime the image itself cannot be built, so the test does what ansible-builder and the
image build would do, up to the container runtime:

1. ``ansible-builder create`` validates extras/ee/execution-environment.yml (schema version 3) and writes the
   build context, with the collection tarball built by ``ansible-galaxy collection build``;
2. the collection is installed from the context's ``_build`` directory as the image's galaxy stage does
   (``ansible-galaxy collection install -r requirements.yml``);
3. the context's own ``introspect.py`` reads the installed collections as the image's builder stage does: the
   collection's meta/execution-environment.yml is read and adds no Python or system package.

With a working podman or docker, ``ansible-builder build`` builds the image too (it pulls the base image).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.xdist_group("execution_environment")]  # one build context (module fixture)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EE_DIR = REPO / "extras" / "ee"


def run(cmd, **kwargs):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONPATH", None)
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)  # the test session's tree holds linux_mm.damon already; the image's none
    return subprocess.run([str(c) for c in cmd], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, timeout=600, **kwargs)


def galaxy_version():
    return yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]


def tarball_name():
    return "linux_mm-damon-%s.tar.gz" % galaxy_version()


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The repository layout the definition expects (extras/ee/ and build/<tarball>), and its build context."""
    top = tmp_path_factory.mktemp("ee")
    shutil.copytree(str(EE_DIR), str(top / "extras" / "ee"))
    built = run([BIN / "ansible-galaxy", "collection", "build", "--output-path", top / "build", REPO])
    assert built.returncode == 0, built.stdout + built.stderr
    assert (top / "build" / tarball_name()).is_file(), os.listdir(str(top / "build"))
    created = run([BIN / "ansible-builder", "create", "-f", top / "extras" / "ee" / "execution-environment.yml",
                   "-c", top / "context", "--output-filename", "Containerfile", "-v3"])
    assert created.returncode == 0, created.stdout + created.stderr
    assert "WARNING" not in created.stdout + created.stderr, created.stdout + created.stderr  # e.g. "No matches"
    return top


def test_the_definition_is_schema_version_3_and_valid():
    from ansible_builder.ee_schema import validate_schema
    from ansible_builder.exceptions import DefinitionError

    definition = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    validate_schema(definition)  # raises DefinitionError when invalid
    with pytest.raises(DefinitionError):  # and the check is real
        validate_schema(dict(definition, dependencies=dict(definition["dependencies"], pyhton=["x"])))


def test_it_installs_this_version_of_the_collection_and_the_tested_ansible_core():
    definition = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text())
    requirements = yaml.safe_load((EE_DIR / definition["dependencies"]["galaxy"]).read_text())
    assert requirements["collections"] == [{"name": "collections/" + tarball_name(), "type": "file"}]
    assert definition["additional_build_files"] == [{"src": "../../build/" + tarball_name(), "dest": "collections"}]
    pinned = re.search(r"^ansible-core==(\S+)$", (REPO / "requirements" / "test.txt").read_text(), re.M).group(1)
    assert definition["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==" + pinned


def test_create_writes_a_build_context_that_installs_the_collection(context):
    build = context / "context" / "_build"
    containerfile = (context / "context" / "Containerfile").read_text()
    assert (build / "collections" / tarball_name()).is_file()
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==' in containerfile and 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert (build / "bindep.txt").read_text().split("\n")[0] == "openssh-clients [platform:rpm]"

    # the galaxy stage: WORKDIR /build (= _build), the requirements file as it is
    installed = context / "collections"
    galaxy = run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-r", "requirements.yml",
                  "--collections-path", installed], cwd=str(build))
    assert galaxy.returncode == 0, galaxy.stdout + galaxy.stderr
    collection = installed / "ansible_collections" / "linux_mm" / "damon"
    for name in ("meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt",
                 "playbooks/hugepage.yml", "playbooks/schedule.yml", "roles/hugepage/tasks/main.yml"):
        assert (collection / name).is_file(), name

    # the builder stage: the context's introspect.py over the installed collections, with the user's bindep.txt
    out = context / "introspected"
    introspect = run([sys.executable, build / "scripts" / "introspect.py", "introspect", installed,
                      "--user-bindep", build / "bindep.txt", "--write-pip", out / "requirements.txt",
                      "--write-bindep", out / "bindep.txt"])
    assert introspect.returncode == 0, introspect.stdout + introspect.stderr
    data = yaml.safe_load(introspect.stdout.split("---", 1)[1])
    assert data == {"python": [], "system": ["openssh-clients [platform:rpm]  # from collection user"]}, data
    assert not (out / "requirements.txt").exists()  # no Python package to add to the image


def test_the_collection_declares_its_dependencies_in_meta():
    from ansible_builder._target_scripts.introspect import CollectionDefinition, process_collection

    definition = CollectionDefinition(str(REPO))
    assert definition.get_dependency("python") == "meta/ee-requirements.txt"
    assert definition.get_dependency("system") == "meta/ee-bindep.txt"
    assert process_collection(str(REPO)) == ([], [])  # none: ansible-core and the standard library only


def _container_runtime():
    """A container runtime that answers (``podman info`` / ``docker info``), or why there is none."""
    why = []
    for runtime in ("podman", "docker"):
        exe = shutil.which(runtime)
        if exe is None:
            why.append("%s: not installed" % runtime)
            continue
        try:
            info = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            why.append("%s info: no answer in 30 s" % runtime)
            continue
        if info.returncode == 0:
            return runtime, None
        lines = (info.stderr or info.stdout).strip().splitlines()
        why.append("%s info: %s" % (runtime, lines[-1] if lines else "exit %d" % info.returncode))
    return None, "; ".join(why)


def test_the_image_builds_where_a_container_runtime_works(context):
    runtime, why = _container_runtime()
    if runtime is None:
        pytest.skip("no working container runtime to build the image with (%s); the definition and its build "
                    "context are checked by the other tests here" % why)
    built = run([BIN / "ansible-builder", "build", "-f", context / "extras" / "ee" / "execution-environment.yml",
                 "-c", context / "context-build", "--container-runtime", runtime, "-t", "linux-mm-damon-ee:test"])
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]

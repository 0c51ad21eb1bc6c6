# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/tooling/zip_code_cache: child processes reuse the compiled code of zip imports, and only that."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

from tests.conftest import GUARD_DIR, ZIP_CODE_CACHE_DIR

CHILD = """
import json, sys, traceback, zipimport
sys.path.insert(0, sys.argv[1])
import zmod
try:
    zmod.boom()
except RuntimeError:
    where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({"value": zmod.VALUE, "nested": zmod.Inner().f(), "where": where, "file": zmod.__file__,
                  "cached": getattr(zipimport._compile_source, "cached", False),
                  "shadowed": __import__("os").environ.get("SHADOWED_SITECUSTOMIZE_RAN")}))
"""


def _zip(path, value):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("zmod.py", "VALUE = %r\nclass Inner:\n    def f(self):\n        return VALUE * 2\n"
                              "def boom():\n    raise RuntimeError('x')\n" % value)
    return path


def _run(zip_path, tmp_path, **env):
    other = tmp_path / "other"
    other.mkdir(exist_ok=True)
    (other / "sitecustomize.py").write_text("import os\nos.environ['SHADOWED_SITECUSTOMIZE_RAN'] = '1'\n")
    child_env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=os.pathsep.join(
        [str(GUARD_DIR), str(ZIP_CODE_CACHE_DIR), str(other)]), **env)
    out = subprocess.run([sys.executable, "-c", CHILD, str(zip_path)], env=child_env, stdout=subprocess.PIPE,
                         text=True, timeout=60, check=True).stdout
    import json  # pylint: disable=import-outside-toplevel
    return json.loads(out)


def _entries(tmp_path):
    return sorted(p for d in tmp_path.glob("linux_mm_damon-zipcode-*") for p in d.iterdir())


def test_a_second_process_runs_the_cached_code_under_its_own_file_name(tmp_path):
    first = _run(_zip(tmp_path / "a.zip", 21), tmp_path)
    assert first["cached"] and first["value"] == 21 and first["nested"] == 42 and first["shadowed"] == "1"
    [entry] = _entries(tmp_path)
    assert oct(entry.parent.stat().st_mode & 0o777) == "0o700"
    second = _run(_zip(tmp_path / "b.zip", 21), tmp_path)  # another zip, same member and source: the cache
    assert _entries(tmp_path) == [entry] and second["value"] == 21 and second["nested"] == 42
    assert second["where"] == str(tmp_path / "b.zip" / "zmod.py") == second["file"]


def test_a_changed_source_is_compiled_again_and_the_hook_can_be_turned_off(tmp_path):
    assert _run(_zip(tmp_path / "a.zip", 1), tmp_path)["value"] == 1
    assert _run(_zip(tmp_path / "a.zip", 2), tmp_path)["value"] == 2
    assert len(_entries(tmp_path)) == 2
    off = _run(_zip(tmp_path / "a.zip", 3), tmp_path, LINUX_MM_DAMON_ZIP_CODE_CACHE="0")
    assert off["value"] == 3 and not off["cached"] and off["shadowed"] == "1" and len(_entries(tmp_path)) == 2


def test_a_cache_directory_others_can_write_is_not_used(tmp_path):
    directory = tmp_path / ("linux_mm_damon-zipcode-%d-%s-%s" % (os.geteuid(), sys.implementation.cache_tag,
                                                                 sys.version.split()[0]))
    directory.mkdir()
    os.chmod(str(directory), 0o777)
    assert _run(_zip(tmp_path / "a.zip", 5), tmp_path)["value"] == 5
    assert list(directory.iterdir()) == []


def _site():
    """tests/tooling/zip_code_cache/sitecustomize.py as a module (not as this process' sitecustomize)."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    spec = importlib.util.spec_from_file_location("zip_code_cache_site", ZIP_CODE_CACHE_DIR / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ansiballz_key_changes_with_every_module_source_and_path(tmp_path):
    key = _site().ansiballz_key
    collection = tmp_path / "c" / "ansible_collections" / "ns" / "coll" / "plugins"
    (collection / "modules").mkdir(parents=True)
    (collection / "module_utils" / "sub").mkdir(parents=True)
    (collection / "modules" / "m.py").write_text("from ..module_utils.sub import u\n")
    util = collection / "module_utils" / "sub" / "u.py"
    util.write_text("X = 1\n")
    (tmp_path / "lib").mkdir()
    env = {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "c"), "ANSIBLE_LIBRARY": str(tmp_path / "lib")}
    first = key(env)
    assert first and key(env) == first
    util.write_text("X = 2\n")
    assert key(env) != first
    util.write_text("X = 1\n")
    assert key(env) == first
    (tmp_path / "lib" / "probe.py").write_text("")
    assert key(env) != first
    assert key(dict(env, ANSIBLE_LIBRARY="")) != key(env)
    assert key({}) is None  # no collections path: each run keeps its own cache


def test_playbook_runs_share_one_ansiballz_cache(run_playbook, tmp_path):
    shared = tmp_path / "ansiballz"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"ansible.builtin.ping": {}}]}]
    assert run_playbook(play, env={"LINUX_MM_DAMON_ANSIBALLZ_CACHE": shared}).rc == 0
    [payload] = shared.glob("*/ansiballz_cache/ansible.modules.ping-*[!k]")  # not the .lock
    assert oct(shared.stat().st_mode & 0o777) == "0o700"
    built = payload.stat().st_mtime_ns
    assert run_playbook(play, env={"LINUX_MM_DAMON_ANSIBALLZ_CACHE": shared}).rc == 0
    assert payload.stat().st_mtime_ns == built and list(shared.glob("*/ansiballz_cache/*ping*[!k]")) == [payload]


def test_yaml_loads_are_cached_by_loader_text_and_origin_and_each_caller_gets_its_own_objects(tmp_path):
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible._internal._datatag._tags import Origin  # pylint: disable=import-outside-toplevel
    from ansible.parsing.yaml.loader import AnsibleLoader  # pylint: disable=import-outside-toplevel

    site = _site()

    def key(stream, loader):
        return site._yaml_key(yaml.__version__, stream, loader)  # pylint: disable=protected-access

    assert key("a: 1", yaml.CSafeLoader) and key("a: 1", yaml.CSafeLoader) == key("a: 1", yaml.CSafeLoader)
    assert key("a: 1", yaml.CSafeLoader) not in (key("a: 2", yaml.CSafeLoader), key("a: 1", yaml.BaseLoader),
                                                 key(b"a: 1", yaml.CSafeLoader))
    assert key("a: 1", yaml.FullLoader) is None and key(io.StringIO("a: 1"), yaml.CSafeLoader) is None
    tagged = [Origin(path=p).tag("a: [1]\n") for p in ("/x/one.py", "/x/two.py")]
    keys = [key(tagged[0], AnsibleLoader), key(tagged[1], AnsibleLoader), key("a: [1]\n", AnsibleLoader)]
    assert None not in keys and len(set(keys)) == 3

    calls = []

    def load(stream, Loader=None):  # pylint: disable=invalid-name
        calls.append(stream)
        return yaml.load(stream, Loader=Loader)

    cached = site._cached_yaml_load(load, yaml.__version__, str(tmp_path))  # pylint: disable=protected-access
    first, second = cached(tagged[0], AnsibleLoader), cached(tagged[0], AnsibleLoader)
    assert first == second == {"a": [1]} and first["a"] is not second["a"] and len(calls) == 1
    assert Origin.get_tag(next(iter(second))).path == "/x/one.py"  # the tags come back too
    assert cached(tagged[1], AnsibleLoader) == first and len(calls) == 2
    assert cached("a: 1", yaml.FullLoader) == {"a": 1} and len(calls) == 3  # not cached: always parsed

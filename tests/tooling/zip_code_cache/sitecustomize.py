# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compiled-code cache for modules imported from zip files, in the Python processes tests start.

Every Ansible module run is a new Python process that imports ``ansible.module_utils.basic``
and our module_utils from the AnsiballZ zip, and ``zipimport`` compiles every one of those
sources from scratch (it writes no ``.pyc``): about 0.1 s of CPU per module run, the
largest single part of a run's cost once the work itself is small (issue 11). This hook,
installed by ``tests/conftest.py`` for child processes only (``PYTHONPATH``, after the
host sysfs guard, which runs it), keeps the compiled code of each zip member keyed by
its path inside the zip and a hash of its source, so the code a module runs is exactly
what compiling that source gives; only the file name in tracebacks is set to this run's.

The cache is a directory of this user's own (mode 0700, checked before use) under
``$TMPDIR``; anything wrong with it or an entry falls back to compiling.
``LINUX_MM_DAMON_ZIP_CODE_CACHE=0`` turns the hook off.
"""

from __future__ import annotations

import os
import sys
import zipimport

ENV = "LINUX_MM_DAMON_ZIP_CODE_CACHE"


def cache_dir():
    """This user's cache directory for this Python (marshal data is version-specific)."""
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", "linux_mm_damon-zipcode-%d-%s-%s" % (
        os.geteuid(), sys.implementation.cache_tag, sys.version.split()[0]))


def _private_dir(path):
    """``path`` as a directory only this user can write, or None."""
    import stat  # pylint: disable=import-outside-toplevel

    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return path


def _renamed(code, filename):
    """``code`` and the code objects nested in it with ``co_filename`` set to ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def install():
    """Wrap ``zipimport._compile_source`` (once per process)."""
    compile_source = zipimport._compile_source  # pylint: disable=protected-access
    if getattr(compile_source, "cached", False):
        return
    directory = [None, False]  # path, checked

    def cached_compile_source(pathname, source):
        import hashlib  # pylint: disable=import-outside-toplevel
        import marshal  # pylint: disable=import-outside-toplevel

        if not directory[1]:
            directory[:] = [_private_dir(cache_dir()), True]
        if directory[0] is None:
            return compile_source(pathname, source)
        inner = pathname.split(".zip" + os.sep, 1)[-1]
        entry = os.path.join(directory[0], hashlib.sha256(inner.encode() + b"\0" + source).hexdigest())
        try:
            with open(entry, "rb") as f:
                return _renamed(marshal.loads(f.read()), pathname)  # load(f) reads object by object: 10x slower
        except (OSError, EOFError, ValueError, TypeError):
            pass
        code = compile_source(pathname, source)
        tmp = "%s.%d" % (entry, os.getpid())
        try:
            with open(tmp, "wb") as f:
                marshal.dump(code, f)
            os.replace(tmp, entry)  # whole entries only: another process may read it at once
        except OSError:
            pass
        return code

    cached_compile_source.cached = True
    zipimport._compile_source = cached_compile_source  # pylint: disable=protected-access


ANSIBALLZ_ENV = "LINUX_MM_DAMON_ANSIBALLZ_CACHE"
YAML_ENV = "LINUX_MM_DAMON_YAML_CACHE"


def ansiballz_key(environ=None):
    """What the AnsiballZ payloads of this process depend on besides ansible-core itself: a hash of the
    ansible-core and Python versions, the collections and module library paths and every file under
    the ``plugins/modules`` and ``plugins/module_utils`` of each collection there and in the library
    directories (None when there is no collections path: then the run keeps its own cache)."""
    import hashlib  # pylint: disable=import-outside-toplevel

    environ = os.environ if environ is None else environ
    collections = [p for p in environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    if not collections:
        return None
    libraries = [p for p in environ.get("ANSIBLE_LIBRARY", "").split(os.pathsep) if p]
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel

    digest = hashlib.sha256(repr((__version__, sys.version, collections, libraries)).encode())
    tops = list(libraries)
    for root in collections:
        base = os.path.join(root, "ansible_collections")
        for namespace in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            for name in sorted(os.listdir(os.path.join(base, namespace))):
                tops += [os.path.join(base, namespace, name, "plugins", sub) for sub in ("modules", "module_utils")]
    for top in tops:
        for directory, dirs, files in os.walk(top, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    digest.update(b"\0%s\0%s" % (path.encode(), hashlib.sha256(f.read()).digest()))
    return digest.hexdigest()


class _SharedLocalTmp(object):
    """``ansible.constants`` as ``module_common`` sees it, but for the directory of its AnsiballZ cache."""

    def __init__(self, constants, directory):
        self._constants, self.DEFAULT_LOCAL_TMP = constants, directory  # pylint: disable=invalid-name

    def __getattr__(self, name):
        return getattr(self._constants, name)


YAML_LOADERS = ("yaml.loader.BaseLoader", "yaml.loader.SafeLoader", "yaml.cyaml.CBaseLoader", "yaml.cyaml.CSafeLoader",
                "ansible.parsing.yaml.loader.AnsibleLoader")


def _yaml_key(yaml_version, stream, loader):
    """The cache key of ``yaml.load(stream, loader)``, or None when it is not cached: only a whole text (str or bytes,
    also ansible's tagged str, whose tags - the file it came from - are part of the key) and only the loaders of
    ``YAML_LOADERS``, whose result depends on nothing but the text and its tags."""
    import hashlib  # pylint: disable=import-outside-toplevel

    name = "%s.%s" % (getattr(loader, "__module__", ""), getattr(loader, "__qualname__", ""))
    if name not in YAML_LOADERS or not isinstance(stream, (str, bytes)):
        return None
    tags = ""
    if type(stream) not in (str, bytes):  # pylint: disable=unidiomatic-typecheck
        try:
            from ansible.module_utils._internal._datatag import AnsibleTagHelper  # pylint: disable=import-outside-toplevel

            tags = repr(sorted(repr(tag) for tag in AnsibleTagHelper.tags(stream)))
        except Exception:  # pylint: disable=broad-exception-caught
            return None
    text = stream.encode("utf-8", "surrogatepass") if isinstance(stream, str) else b"b" + bytes(stream)
    return hashlib.sha256(repr((name, tags, yaml_version, sys.version)).encode() + b"\0" + text).hexdigest()


def _cached_yaml_load(load, yaml_version, directory):
    """``yaml.load`` that keeps the pickled result of each cacheable load (``_yaml_key``) in ``directory``; every
    call gets objects of its own, unpickled from the entry."""
    import pickle  # pylint: disable=import-outside-toplevel

    def cached_load(stream, Loader=None):  # pylint: disable=invalid-name
        key = _yaml_key(yaml_version, stream, Loader)
        if key is None:
            return load(stream, Loader)
        entry = os.path.join(directory, key)
        try:
            with open(entry, "rb") as f:
                return pickle.loads(f.read())
        except Exception:  # pylint: disable=broad-exception-caught
            pass
        data = load(stream, Loader)
        try:
            blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            tmp = "%s.%d" % (entry, os.getpid())
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, entry)  # whole entries only: another process may read it at once
        except Exception:  # pylint: disable=broad-exception-caught
            pass
        return data

    cached_load.cached = True
    return cached_load


def _share_ansiballz_cache(module):
    try:
        key = ansiballz_key()
        directory = key and _private_dir(os.environ[ANSIBALLZ_ENV])
        directory = directory and _private_dir(os.path.join(directory, key))
    except (OSError, ValueError, ImportError):
        directory = None
    if directory:
        module.C = _SharedLocalTmp(module.C, directory)


def _cache_yaml_loads(module):
    directory = _private_dir(os.environ[YAML_ENV])
    if directory and not getattr(module.load, "cached", False):
        module.load = _cached_yaml_load(module.load, getattr(module, "__version__", "?"), directory)


class _AnsiballzCacheFinder(object):
    """Imports ``ansible.executor.module_common`` (controller processes only) with its AnsiballZ cache in
    ``$LINUX_MM_DAMON_ANSIBALLZ_CACHE/KEY`` instead of each run's own temporary directory, and ``yaml`` with
    a ``load`` that caches in ``$LINUX_MM_DAMON_YAML_CACHE`` what it read from the same text before (every
    ansible-* process parses the same plugin documentation, ansible-core's routing table and its configuration
    definitions: about a third of the CPU time of a short ansible-playbook run)."""

    def __init__(self):
        self.patches = {}
        if os.environ.get(ANSIBALLZ_ENV):
            self.patches["ansible.executor.module_common"] = _share_ansiballz_cache
        if os.environ.get(YAML_ENV):
            self.patches["yaml"] = _cache_yaml_loads

    def find_spec(self, fullname, path=None, target=None):  # pylint: disable=unused-argument
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        import importlib.machinery  # pylint: disable=import-outside-toplevel

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_with_shared_cache(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_with_shared_cache
        return spec


def install_ansiballz_cache():
    """AnsiballZ payloads shared by the ansible-playbook runs of the tests: ansible-core builds each module's
    zip (recursive_finder: every module_util parsed for its imports) once per run, in the run's own temporary
    directory, keyed by the module's name only; here the directory is one per ``ansiballz_key()``, so a
    payload is reused only while no module source, module_util, ansible-core or path it depends on changed."""
    if (os.environ.get(ANSIBALLZ_ENV) or os.environ.get(YAML_ENV)) and \
            not any(isinstance(f, _AnsiballzCacheFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AnsiballzCacheFinder())


def _chain_next_sitecustomize():
    """Run the sitecustomize this file shadows, if there is one further down sys.path (after this
    directory only: the host sysfs guard's, which ran this one, comes before it)."""
    import importlib.machinery  # pylint: disable=import-outside-toplevel
    import importlib.util  # pylint: disable=import-outside-toplevel

    here = os.path.dirname(os.path.realpath(__file__))
    entries = [os.path.realpath(p or os.curdir) for p in sys.path]
    rest = sys.path[entries.index(here) + 1:] if here in entries else []
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        sys.stderr.write("zip code cache: the shadowed %s failed: %r\n" % (spec.origin, exc))


if __name__ == "sitecustomize":
    if os.environ.get(ENV, "1") != "0":
        install()
        install_ansiballz_cache()
    _chain_next_sitecustomize()

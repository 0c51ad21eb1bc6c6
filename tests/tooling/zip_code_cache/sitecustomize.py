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


class _AnsiballzCacheFinder(object):
    """Imports ``ansible.executor.module_common`` (controller processes only) with its AnsiballZ cache in
    ``$LINUX_MM_DAMON_ANSIBALLZ_CACHE/KEY`` instead of each run's own temporary directory."""

    NAME = "ansible.executor.module_common"

    def find_spec(self, fullname, path=None, target=None):  # pylint: disable=unused-argument
        if fullname != self.NAME:
            return None
        import importlib.machinery  # pylint: disable=import-outside-toplevel

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_with_shared_cache(module):
            exec_module(module)
            try:
                key = ansiballz_key()
                directory = key and _private_dir(os.environ[ANSIBALLZ_ENV])
                directory = directory and _private_dir(os.path.join(directory, key))
            except (OSError, ValueError, ImportError):
                directory = None
            if directory:
                module.C = _SharedLocalTmp(module.C, directory)

        spec.loader.exec_module = exec_with_shared_cache
        return spec


def install_ansiballz_cache():
    """AnsiballZ payloads shared by the ansible-playbook runs of the tests: ansible-core builds each module's
    zip (recursive_finder: every module_util parsed for its imports) once per run, in the run's own temporary
    directory, keyed by the module's name only; here the directory is one per ``ansiballz_key()``, so a
    payload is reused only while no module source, module_util, ansible-core or path it depends on changed."""
    if os.environ.get(ANSIBALLZ_ENV) and not any(isinstance(f, _AnsiballzCacheFinder) for f in sys.meta_path):
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

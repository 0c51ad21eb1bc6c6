# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one of the collection's modules as user nobody, without capabilities (the "needs root" tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NOBODY = 65534


def run_module_as_nobody(collections_root, workdir, module_name, args, timeout=120):
    """The JSON result of ``plugins/modules/MODULE_NAME`` run directly as nobody with ``args``.

    ``workdir`` must be readable by nobody (see the ``world_readable_dir`` fixture). Skips when
    nobody cannot reach this checkout's Python or the module (e.g. a checkout under a 0700 directory).
    """
    module = collections_root / "ansible_collections" / "linux_mm" / "damon" / "plugins" / "modules" / module_name
    setpriv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
    probe = subprocess.run(setpriv + ["--", sys.executable, "-c", "open(%r).close()" % str(module)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    if probe.returncode:
        pytest.skip("user nobody cannot run this checkout's Python or read the module: %s" % probe.stderr.strip()[-200:])
    args_file = workdir / ("%s.json" % module_name)
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    os.chmod(str(args_file), 0o644)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(collections_root), os.environ.get("PYTHONPATH", "")]),
               HOME=str(workdir))
    proc = subprocess.run(setpriv + ["--inh-caps=-all", "--bounding-set=-all", "--", sys.executable, str(module),
                                     str(args_file)],
                          env=env, cwd=str(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=False)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)

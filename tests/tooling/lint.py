# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ``ansible-lint --offline --profile production`` from the separate lint venv.

ansible-lint lives in ``.venv-lint`` (requirements/lint.txt): ansible-test's
sanity requirements pin older pathspec/yamllint that break its import of
black. Configuration is in ``.ansible-lint``. Extra arguments are passed on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    venv_bin = Path(os.environ.get("LINT_VENV", REPO_ROOT / ".venv-lint")) / "bin"
    exe = venv_bin / "ansible-lint"
    if not exe.exists():
        sys.stderr.write("lint: %s is missing; run `make venv` first\n" % exe)
        return 2
    env = dict(os.environ)
    env["PATH"] = str(venv_bin) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["NO_COLOR"] = "1"
    # resolve linux_mm.damon.* in playbooks and roles to this checkout
    sys.path.insert(0, str(REPO_ROOT))
    from tests.tooling import collection_tree  # pylint: disable=import-outside-toplevel
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collection_tree.build().parents[2])
    cmd = [str(exe), "--offline", "--profile", "production"] + argv
    print("lint: %s" % " ".join(cmd), flush=True)
    start = time.monotonic()
    rc = subprocess.call(cmd, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL)
    print("lint: exit %d after %.0fs" % (rc, time.monotonic() - start), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

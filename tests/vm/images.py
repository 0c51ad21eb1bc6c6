"""Debian guest images for the real-kernel test bed, built from Debian packages only.

Usage::

    python -m tests.vm.images build damon-6.12|damon-7.3|no-damon|all [--force]
    python -m tests.vm.images list
    python -m tests.vm.images path damon-7.3

From Python::

    from tests.vm import images
    img = images.ensure("damon-7.3")    # build (or reuse from the cache) and return an Image
    img.rootfs, img.kernel, img.initrd, img.ssh_key, img.manifest

Each image is a raw ext4 root filesystem made with ``mmdebstrap`` and ``mkfs.ext4 -d``
(no loop mounts), plus the kernel and initrd copied out of it, a per-cache ed25519 SSH
key for root, the static ``hotcold`` workload (``/usr/local/bin/hotcold``) and ``damo``
(``/usr/local/bin/damo``, unpacked from a PyPI wheel downloaded on the host).

Images live in ``${LINUX_MM_DAMON_CACHE:-~/.cache/linux_mm_damon}/images/<name>-<key>/``
where ``key`` hashes the resolved Debian package versions, the recipe, the workload
source and the damo wheel; a second build with the same inputs reuses the directory.
Builds happen in a temporary directory that is renamed into place when complete.

No mirror host name is written anywhere in the repository: the Debian mirror is read at
run time from the host's apt configuration (``/etc/apt/sources.list``,
``/etc/apt/sources.list.d/*.list`` and ``*.sources``), or from
``LINUX_MM_DAMON_DEBIAN_MIRROR`` when set.  The PyPI index comes from pip's own config.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ._common import (
    BUILD_MIN_FREE,
    VMError,
    cache_root,
    check_free_space,
    require_tools,
    which,
)

HERE = Path(__file__).resolve().parent
WORKLOAD_SRC = HERE / "workload" / "hotcold.c"

# Bump when the image customisation changes in a way the package versions do not show.
RECIPE_VERSION = 3
DAMO_VERSION = os.environ.get("LINUX_MM_DAMON_DAMO_VERSION", "3.4.3")

BASE_PACKAGES = (
    "openssh-server",
    "python3",
    "systemd-sysv",
    "udev",
    "kmod",
    "procps",
    "iproute2",
    "ifupdown",
    "isc-dhcp-client",
    "initramfs-tools",
)

# Real applications with their own load generators (issue 12): redis-server with
# redis-benchmark/redis-cli (redis-tools), PostgreSQL with pgbench (shipped in the server
# package postgresql-<ver>).  Only in the DAMON images; no-damon stays small.
APP_PACKAGES = ("redis-server", "redis-tools", "postgresql")
# Units the packages enable at install time.  They stay disabled in the image so every
# test starts the application itself with known options (and nothing runs before it).
APP_UNITS = ("redis-server.service", "postgresql.service")

DEBIAN_SUITE_RE = re.compile(
    r"^(bullseye|bookworm|trixie|forky|duke|sid|unstable|testing|stable|oldstable)"
    r"(-updates|-backports|-proposed-updates)?$"
)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    suite: str                      # Debian suite the root filesystem comes from
    kernel: str                     # kernel package name, or a regex (kernel_regex=True)
    extra_suites: tuple = ()        # e.g. ("trixie-backports",)
    extra_packages: tuple = ()      # e.g. ("linux-base/trixie-backports",)
    kernel_regex: bool = False
    description: str = ""
    app_packages: tuple = ()        # applications for the real-application tests (APP_PACKAGES)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


RECIPES = {
    "damon-6.12": Recipe(
        name="damon-6.12",
        suite="trixie",
        kernel="linux-image-cloud-amd64",
        app_packages=APP_PACKAGES,
        description="Debian 13 trixie cloud kernel 6.12 (DAMON sysfs, no collapse action)",
    ),
    "damon-7.3": Recipe(
        name="damon-7.3",
        suite="trixie",
        extra_suites=("trixie-backports",),
        kernel=r"^linux-image-7\.3\.[0-9.]+\+deb13[^-]*-cloud-amd64$",
        kernel_regex=True,
        extra_packages=("linux-base/trixie-backports",),
        app_packages=APP_PACKAGES,
        description="Debian 13 trixie-backports cloud kernel 7.3 (collapse action, DAMON_STAT on)",
    ),
    "no-damon": Recipe(
        name="no-damon",
        suite="bookworm",
        kernel="linux-image-cloud-amd64",
        description="Debian 12 bookworm cloud kernel 6.1 (CONFIG_DAMON not set)",
    ),
}

IMAGE_NAMES = tuple(RECIPES)


def _log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Host apt configuration -> Debian mirror
# ---------------------------------------------------------------------------

def parse_one_line_sources(text: str) -> list:
    """Parse one-line-style ``deb [opts] URI SUITE COMPONENT...`` entries."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        opts = {}
        for opt in (m.group(2) or "").split():
            if "=" in opt:
                k, v = opt.split("=", 1)
                opts[k.lower()] = v
        entries.append({
            "types": [m.group(1)],
            "uris": [m.group(3)],
            "suites": [m.group(4)],
            "components": m.group(5).split(),
            "signed_by": opts.get("signed-by"),
            "enabled": True,
        })
    return entries


def parse_deb822_sources(text: str) -> list:
    """Parse deb822 ``.sources`` stanzas (comments and continuation lines handled)."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += "\n" + raw.strip()
                continue
            if ":" not in raw:
                continue
            key, val = raw.split(":", 1)
            key = key.strip().lower()
            fields[key] = val.strip()
        if "uris" not in fields or "suites" not in fields:
            continue
        signed_by = fields.get("signed-by")
        if signed_by and "\n" in signed_by:
            signed_by = None  # an inline key block; let apt use its default keyring
        entries.append({
            "types": fields.get("types", "deb").split(),
            "uris": fields["uris"].split(),
            "suites": fields["suites"].split(),
            "components": fields.get("components", "").split(),
            "signed_by": signed_by,
            "enabled": fields.get("enabled", "yes").lower() not in ("no", "false", "0"),
        })
    return entries


def read_host_apt_sources(etc_apt: Path = Path("/etc/apt")) -> list:
    etc_apt = Path(etc_apt)
    entries = []
    main = etc_apt / "sources.list"
    if main.is_file():
        entries += parse_one_line_sources(main.read_text(errors="replace"))
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix == ".list":
                entries += parse_one_line_sources(f.read_text(errors="replace"))
            elif f.suffix == ".sources":
                entries += parse_deb822_sources(f.read_text(errors="replace"))
    return entries


def debian_mirror(etc_apt: Path = Path("/etc/apt")) -> tuple:
    """Return ``(uri, signed_by_or_None)`` of the host's Debian archive mirror.

    ``LINUX_MM_DAMON_DEBIAN_MIRROR`` overrides the host configuration.
    """
    env = os.environ.get("LINUX_MM_DAMON_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/"), None
    for e in read_host_apt_sources(etc_apt):
        if not e["enabled"] or "deb" not in e["types"]:
            continue
        if not any(DEBIAN_SUITE_RE.match(s) for s in e["suites"]):
            continue
        if "main" not in e["components"]:
            continue
        for uri in e["uris"]:
            if uri.startswith(("http://", "https://", "file:", "mirror+")):
                return uri.rstrip("/"), e["signed_by"]
    raise VMError(
        "could not find a Debian archive mirror in the host's apt configuration "
        f"({etc_apt}/sources.list, {etc_apt}/sources.list.d/*.list|*.sources): add the "
        "Debian archive there or set LINUX_MM_DAMON_DEBIAN_MIRROR to its URL"
    )


def default_keyring() -> str:
    for k in ("/usr/share/keyrings/debian-archive-keyring.gpg",
              "/usr/share/keyrings/debian-archive-keyring.pgp"):
        if os.path.exists(k):
            return k
    raise VMError(
        "Debian archive keyring not found: install it with `apt-get install debian-archive-keyring`"
    )


def source_lines(recipe: Recipe, mirror: str, keyring: str) -> list:
    return [f"deb [signed-by={keyring}] {mirror} {suite} main"
            for suite in (recipe.suite,) + tuple(recipe.extra_suites)]


# ---------------------------------------------------------------------------
# A private apt state for resolving package names and versions
# ---------------------------------------------------------------------------

class AptEnv:
    """apt-get/apt-cache against a private sources list and state directory."""

    def __init__(self, root: Path, lines: list):
        self.root = Path(root)
        self.lines = list(lines)
        for d in ("lists/partial", "cache/archives/partial", "parts", "prefs", "state"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text("\n".join(self.lines) + "\n")
        (self.root / "status").write_text("")

    def _opts(self) -> list:
        r = self.root
        return [
            "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={r / 'parts'}",
            "-o", f"Dir::Etc::Preferences={r / 'prefs' / 'none'}",
            "-o", f"Dir::Etc::PreferencesParts={r / 'prefs'}",
            "-o", f"Dir::State={r / 'state'}",
            "-o", f"Dir::State::Lists={r / 'lists'}",
            "-o", f"Dir::State::status={r / 'status'}",
            "-o", f"Dir::Cache={r / 'cache'}",
            "-o", "Dir::Cache::pkgcache=",
            "-o", "Dir::Cache::srcpkgcache=",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Architectures=amd64",
            "-o", "Debug::NoLocking=1",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Get::List-Cleanup=1",
        ]

    def run(self, tool: str, *args: str, timeout: int = 600) -> str:
        cmd = [tool] + self._opts() + list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive"), check=False)
        if proc.returncode != 0:
            raise VMError(
                f"`{tool} {' '.join(args)}` (private apt state {self.root}) failed with exit "
                f"code {proc.returncode}:\n{proc.stderr.strip()[-2000:]}"
            )
        return proc.stdout

    def update(self) -> None:
        self.run("apt-get", "-q", "update")

    def pkgnames(self, prefix: str) -> list:
        return sorted(self.run("apt-cache", "pkgnames", prefix).split())

    def candidate(self, pkg: str) -> str:
        out = self.run("apt-cache", "policy", pkg)
        m = re.search(r"Candidate:\s*(\S+)", out)
        return m.group(1) if m and m.group(1) != "(none)" else ""

    def simulate_install(self, packages: list) -> dict:
        out = self.run("apt-get", "-s", "-q", "--no-install-recommends", "install", *packages)
        resolved = {}
        for line in out.splitlines():
            m = re.match(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) ", line)
            if m:
                resolved[m.group(1)] = m.group(2)
        return resolved


@dataclasses.dataclass
class Resolution:
    name: str
    recipe: Recipe
    mirror_lines: list
    includes: list
    kernel_package: str
    kernel_version: str
    packages: dict
    seconds: float = 0.0


def _version_key(v: str) -> list:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", v)]


def resolve(name: str) -> Resolution:
    """Resolve the package set of image ``name`` against the current mirror state."""
    recipe = RECIPES[name]
    require_tools("apt-get", "apt-cache")
    mirror, signed_by = debian_mirror()
    keyring = signed_by if signed_by and os.path.exists(signed_by) else default_keyring()
    lines = source_lines(recipe, mirror, keyring)
    apt = AptEnv(cache_root() / "apt" / name, lines)
    apt.update()
    if recipe.kernel_regex:
        rx = re.compile(recipe.kernel)
        prefix = recipe.kernel.lstrip("^").split("\\")[0]
        cands = [p for p in apt.pkgnames(prefix) if rx.match(p)
                 and not p.endswith(("-dbg", "-unsigned"))]
        if not cands:
            raise VMError(
                f"no kernel package matching {recipe.kernel!r} in {recipe.extra_suites or recipe.suite} "
                f"on the host's mirror; has the backports kernel moved on? Update RECIPES in {__file__}"
            )
        cands.sort(key=lambda p: _version_key(apt.candidate(p) or p))
        kernel_pkg = cands[-1]
    else:
        kernel_pkg = recipe.kernel
    includes = ([kernel_pkg] + list(recipe.extra_packages) + list(BASE_PACKAGES)
                + list(recipe.app_packages))
    packages = apt.simulate_install(includes)
    kver = packages.get(kernel_pkg, "")
    # The flavour package (linux-image-<abi>-cloud-amd64) names the kernel release.
    kernel_release = ""
    for p in packages:
        m = re.match(r"^linux-image-(\d+\.\d+\.\d+.*-cloud-amd64)$", p)
        if m and not p.endswith("-unsigned"):
            kernel_release = m.group(1)
    return Resolution(name, recipe, lines, includes, kernel_pkg, kernel_release or kver, packages)


# ---------------------------------------------------------------------------
# Inputs built on the host: workload binary, damo wheel
# ---------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compile_workload(out: Path) -> Path:
    gcc = which("gcc")
    proc = subprocess.run([gcc, "-static", "-O2", "-Wall", "-o", str(out), str(WORKLOAD_SRC)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        hint = ""
        if "cannot find -lc" in proc.stderr or "crt1.o" in proc.stderr:
            hint = " (static glibc missing: `apt-get install libc6-dev`)"
        raise VMError(f"compiling {WORKLOAD_SRC} failed{hint}:\n{proc.stderr[-2000:]}")
    return out


def damo_wheel() -> Path:
    """Download (once) the pure-Python damo wheel with pip's configured index."""
    wdir = cache_root() / "wheels"
    wdir.mkdir(parents=True, exist_ok=True)
    found = sorted(wdir.glob(f"damo-{DAMO_VERSION}-*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=wdir) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"damo=={DAMO_VERSION}", "--no-deps",
             "--only-binary", ":all:", "-d", tmp],
            capture_output=True, text=True, timeout=600, check=False)
        got = sorted(Path(tmp).glob("damo-*.whl"))
        if proc.returncode != 0 or not got:
            raise VMError(
                f"`pip download damo=={DAMO_VERSION} --no-deps` failed (is pip installed in "
                f"{sys.executable} and the package index reachable?):\n{proc.stderr[-2000:]}"
            )
        final = wdir / got[0].name
        os.replace(got[0], final)
        return final


# ---------------------------------------------------------------------------
# The image
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Image:
    name: str
    path: Path

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs.raw"

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.img"

    @property
    def ssh_key(self) -> Path:
        return self.path / "id_ed25519"

    @property
    def ssh_pubkey(self) -> Path:
        return self.path / "id_ed25519.pub"

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def kernel_release(self) -> str:
        return self.manifest.get("kernel_release", "")

    def is_complete(self) -> bool:
        return all(p.is_file() for p in (self.rootfs, self.kernel, self.initrd, self.ssh_key,
                                         self.path / "manifest.json"))


def images_dir() -> Path:
    return cache_root() / "images"


def cache_key(res: Resolution, workload_sha: str, wheel_sha: str) -> str:
    blob = json.dumps({
        "recipe_version": RECIPE_VERSION,
        "recipe": res.recipe.as_dict(),
        "includes": res.includes,
        "packages": sorted(res.packages.items()),
        "workload_sha256": workload_sha,
        "damo_wheel_sha256": wheel_sha,
    }, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@contextlib.contextmanager
def _lock(name: str):
    d = images_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f".lock-{name}", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_images(name: str) -> list:
    """Complete cached images of ``name``, newest first."""
    out = []
    for d in glob.glob(str(images_dir() / f"{name}-*")):
        img = Image(name, Path(d))
        if img.is_complete():
            out.append(img)
    out.sort(key=lambda i: i.path.stat().st_mtime, reverse=True)
    return out


def _run_logged(cmd: list, log: Path, what: str, timeout: int = 1800) -> None:
    with open(log, "ab") as fh:
        fh.write(("\n$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C.UTF-8"), check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        msg = f"{what} failed (exit code {proc.returncode}); last lines of {log}:\n" + "\n".join(tail)
        if any("No space left on device" in line for line in tail):
            msg += "\nThe disk is full: free some space or set LINUX_MM_DAMON_CACHE elsewhere."
        raise VMError(msg)


def _guest_python(rootfs: Path) -> str:
    target = os.readlink(rootfs / "usr/bin/python3")
    m = re.search(r"python(3\.\d+)$", target)
    if not m:
        raise VMError(f"cannot tell the guest Python version from usr/bin/python3 -> {target}")
    return m.group(1)


def install_wheel(rootfs: Path, wheel: Path) -> str:
    """Unpack a pure-Python wheel into the guest's /usr/local site-packages.

    Returns the guest path of the site-packages directory.  Console scripts from the
    wheel's entry_points.txt become /usr/local/bin wrappers, exactly what pip writes.
    """
    pyver = _guest_python(rootfs)
    site = f"/usr/local/lib/python{pyver}/dist-packages"
    dest = rootfs / site.lstrip("/")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
        eps = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        scripts = {}
        if eps:
            section = None
            for line in zf.read(eps[0]).decode().splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]")
                elif section == "console_scripts" and "=" in line:
                    k, v = (x.strip() for x in line.split("=", 1))
                    scripts[k] = v
        infos = [n.split("/")[0] for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    if infos:
        (dest / infos[0] / "INSTALLER").write_text("linux_mm_damon-images\n")
    bindir = rootfs / "usr/local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for script, target in scripts.items():
        mod, func = target.split(":", 1)
        p = bindir / script
        p.write_text(
            "#!/usr/bin/python3\nimport sys\n"
            f"from {mod} import {func}\n"
            f"if __name__ == '__main__':\n    sys.exit({func}())\n"
        )
        p.chmod(0o755)
    return site


INTERFACES = """\
# Written by tests/vm/images.py
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
"""

SSHD_CONF = """\
# Written by tests/vm/images.py: key-only root login for the test bed
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""

FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"


def disable_app_services(rootfs: Path) -> list:
    """Keep the applications from starting at boot; return what was changed.

    Removes every link under ``/etc/systemd/system`` to one of ``APP_UNITS`` that the
    packages' postinst scripts created (what ``systemctl disable`` does) and sets PostgreSQL clusters to
    ``manual`` in ``start.conf``, so its systemd generator does not start them either.
    ``pg_ctlcluster`` and ``redis-server`` still start them on request.
    """
    changed = []
    units_dir = rootfs / "etc/systemd/system"
    for dirpath, _dirs, files in os.walk(units_dir):
        for f in sorted(files):
            link = Path(dirpath) / f
            # wants/ links and aliases (redis.service -> redis-server.service) alike:
            # `systemctl is-enabled` reports "enabled" while any of them exists.
            if link.is_symlink() and os.path.basename(os.readlink(link)) in APP_UNITS:
                link.unlink()
                changed.append(os.path.relpath(link, rootfs))
    for conf in sorted(glob.glob(str(rootfs / "etc/postgresql/*/*/start.conf"))):
        text = Path(conf).read_text()
        new = re.sub(r"(?m)^(auto|manual|disabled)[ \t]*$", "manual", text)
        if new != text:
            Path(conf).write_text(new)
            changed.append(os.path.relpath(conf, rootfs))
    return changed


def customize(rootfs: Path, name: str, pubkey: str, workload: Path, wheel: Path) -> dict:
    ssh = rootfs / "root/.ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    ssh.chmod(0o700)
    (ssh / "authorized_keys").write_text(pubkey)
    (ssh / "authorized_keys").chmod(0o600)
    (rootfs / "etc/network").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/network/interfaces").write_text(INTERFACES)
    conf_d = rootfs / "etc/ssh/sshd_config.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    (conf_d / "linux-mm-damon.conf").write_text(SSHD_CONF)
    (rootfs / "etc/hostname").write_text(name.replace(".", "") + "\n")
    (rootfs / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {name.replace('.', '')}\n")
    (rootfs / "etc/fstab").write_text(FSTAB)
    dst = rootfs / "usr/local/bin/hotcold"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(workload, dst)
    dst.chmod(0o755)
    shutil.copy2(WORKLOAD_SRC, rootfs / "usr/local/src-hotcold.c")
    site = install_wheel(rootfs, wheel)
    disabled = disable_app_services(rootfs)
    # Byte-compile and check damo imports with the guest's own interpreter.  (Running
    # `damo` itself needs the guest's /sys; the guest smoke test does that.)
    chk = subprocess.run(
        ["chroot", str(rootfs), "python3", "-c",
         "import importlib.metadata as m, damo.damo; print(m.version('damo'))"],
        capture_output=True, text=True, timeout=120, check=False)
    if chk.returncode != 0:
        raise VMError(f"damo does not run inside the image: {chk.stdout}{chk.stderr}")
    subprocess.run(["chroot", str(rootfs), "python3", "-m", "compileall", "-q", site],
                   capture_output=True, timeout=300, check=False)
    return {"damo_version": chk.stdout.strip(), "guest_python": _guest_python(rootfs),
            "damo_site": site, "disabled_at_boot": disabled}


def build(name: str, force: bool = False, res: Resolution | None = None) -> Image:
    """Build image ``name`` (or return the cached one with the same key)."""
    if name not in RECIPES:
        raise VMError(f"unknown image {name!r}; known images: {', '.join(IMAGE_NAMES)}")
    if os.geteuid() != 0:
        raise VMError("building guest images needs root (mmdebstrap in root mode, chroot, "
                      "file ownership in the ext4 image)")
    tools = require_tools("mmdebstrap", "mkfs.ext4", "ssh-keygen", "gcc", "apt-get")
    t0 = time.monotonic()
    res = res or resolve(name)
    t_resolve = res.seconds or (time.monotonic() - t0)
    wheel = damo_wheel()
    key = cache_key(res, _sha256(WORKLOAD_SRC), _sha256(wheel))
    final = images_dir() / f"{name}-{key}"
    with _lock(name):
        img = Image(name, final)
        if img.is_complete() and not force:
            _log(f"{name}: cached {final} (resolve {t_resolve:.1f}s)")
            os.utime(final)
            return img
        check_free_space(images_dir(), BUILD_MIN_FREE, f"building image {name}")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{key}-", dir=images_dir()))
        tmp.chmod(0o755)  # lets mmdebstrap's _apt sandbox reach the tree
        try:
            _log(f"{name}: building in {tmp} (kernel {res.kernel_package} {res.kernel_version})")
            log = tmp / "build.log"
            rootfs = tmp / "rootfs"
            workload = compile_workload(tmp / "hotcold")
            _run_logged(
                [tools["mmdebstrap"], "--variant=apt", "--mode=root", "--format=directory",
                 "--include=" + ",".join(res.includes), "--components=main",
                 res.recipe.suite, str(rootfs)] + res.mirror_lines,
                log, f"mmdebstrap for {name}")
            t_strap = time.monotonic() - t0
            _run_logged([tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C",
                         f"linux-mm-damon-{name}", "-f", str(tmp / "id_ed25519")],
                        log, "ssh-keygen")
            info = customize(rootfs, name, (tmp / "id_ed25519.pub").read_text(), workload, wheel)
            kernels = sorted(glob.glob(str(rootfs / "boot/vmlinuz-*")))
            initrds = sorted(glob.glob(str(rootfs / "boot/initrd.img-*")))
            if not kernels or not initrds:
                raise VMError(f"{name}: no /boot/vmlinuz-* or /boot/initrd.img-* in the root "
                              f"filesystem; see {log}")
            kernel_release = Path(kernels[-1]).name[len("vmlinuz-"):]
            shutil.copy2(kernels[-1], tmp / "vmlinuz")
            shutil.copy2(initrds[-1], tmp / "initrd.img")
            used = int(subprocess.run(["du", "-sxb", str(rootfs)], capture_output=True,
                                      text=True, check=True).stdout.split()[0])
            size_mb = ((used * 13 // 10 + (1536 << 20)) >> 20) // 256 * 256 + 256
            _run_logged([tools["mkfs.ext4"], "-q", "-F", "-L", "root", "-d", str(rootfs),
                         str(tmp / "rootfs.raw"), f"{size_mb}M"], log, "mkfs.ext4")
            shutil.rmtree(rootfs)
            manifest = {
                "name": name,
                "key": key,
                "description": res.recipe.description,
                "recipe_version": RECIPE_VERSION,
                "suite": res.recipe.suite,
                "extra_suites": list(res.recipe.extra_suites),
                "kernel_package": res.kernel_package,
                "kernel_release": kernel_release,
                "includes": res.includes,
                "packages": res.packages,
                "rootfs_size_mb": size_mb,
                "workload_sha256": _sha256(WORKLOAD_SRC),
                "damo_wheel": wheel.name,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.monotonic() - t0, 1),
                "mmdebstrap_seconds": round(t_strap, 1),
                "resolve_seconds": round(t_resolve, 1),
                **info,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _log(f"{name}: built {final} in {time.monotonic() - t0:.1f}s")
        return Image(name, final)


def ensure(name: str) -> Image:
    """Return an up-to-date image, building it if needed.

    When the mirror cannot be reached, fall back to the newest cached image of that name
    (with a warning).  ``LINUX_MM_DAMON_IMAGES_OFFLINE=1`` skips the mirror check and
    uses the newest cached image when there is one.
    """
    hit = _ENSURED.get(name)
    if hit is not None and hit.is_complete():
        return hit  # checked against the mirror once per process
    img = _ensure(name)
    _ENSURED[name] = img
    return img


_ENSURED: dict = {}


def _ensure(name: str) -> Image:
    if os.environ.get("LINUX_MM_DAMON_IMAGES_OFFLINE") == "1":
        cached = cached_images(name)
        if cached:
            return cached[0]
    t0 = time.monotonic()
    try:
        res = resolve(name)
        res.seconds = round(time.monotonic() - t0, 1)
    except (VMError, subprocess.TimeoutExpired) as exc:
        cached = cached_images(name)
        if not cached:
            raise
        _log(f"{name}: cannot check the mirror ({str(exc).splitlines()[0]}); "
             f"using cached {cached[0].path}")
        return cached[0]
    return build(name, res=res)


def prune(name: str, keep: int = 1) -> list:
    """Delete all but the ``keep`` newest cached images of ``name``; return removed paths."""
    removed = []
    for img in cached_images(name)[keep:]:
        shutil.rmtree(img.path, ignore_errors=True)
        removed.append(img.path)
    return removed


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.vm.images", description=__doc__.split("\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or reuse) images")
    b.add_argument("names", nargs="+", choices=IMAGE_NAMES + ("all",))
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--prune", action="store_true", help="delete older cached builds")
    sub.add_parser("list", help="list cached images")
    p = sub.add_parser("path", help="print the directory of the newest cached image")
    p.add_argument("name", choices=IMAGE_NAMES)
    r = sub.add_parser("resolve", help="print the resolved kernel package and key inputs")
    r.add_argument("name", choices=IMAGE_NAMES)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            names = IMAGE_NAMES if "all" in args.names else args.names
            for n in names:
                t = time.monotonic()
                img = build(n, force=args.force)
                if args.prune:
                    prune(n)
                print(json.dumps({"name": n, "path": str(img.path),
                                  "kernel_release": img.kernel_release,
                                  "seconds": round(time.monotonic() - t, 1)}))
        elif args.cmd == "list":
            for n in IMAGE_NAMES:
                for img in cached_images(n):
                    m = img.manifest
                    print(f"{n:12} {m.get('kernel_release', '?'):28} {m.get('built_at', '?')} {img.path}")
        elif args.cmd == "path":
            cached = cached_images(args.name)
            if not cached:
                print(f"no cached image {args.name}; run: python -m tests.vm.images build {args.name}",
                      file=sys.stderr)
                return 1
            print(cached[0].path)
        elif args.cmd == "resolve":
            res = resolve(args.name)
            print(json.dumps({"kernel_package": res.kernel_package,
                              "kernel_version": res.kernel_version,
                              "includes": res.includes,
                              "n_packages": len(res.packages)}, indent=2))
    except VMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``kernel/mm/transparent_hugepage``: THP and khugepaged settings (mm/huge_memory.c,
mm/khugepaged.c formats and checks), plus a small khugepaged emulation.

khugepaged: every ``scan_sleep_millisecs`` of virtual time, while ``enabled`` is
``always`` or ``madvise``, it collapses up to ``pages_to_scan`` pages' worth of 2 MiB
blocks that MADV_HUGEPAGE marked (``always``: any mapped block of a known target).
"""

from __future__ import annotations

import errno

from . import kernel_input as ki
from .tree import Node

HPAGE_PMD_NR = 512
ENABLED_WORDS = ("always", "madvise", "never")
DEFRAG_WORDS = ("always", "defer", "defer+madvise", "madvise", "never")
SHMEM_WORDS = ("always", "within_size", "advise", "never", "deny", "force")
RW_644 = 0o644
RO_444 = 0o444


def flag_attr(owner: Node, name: str) -> None:
    """single_hugepage_flag_store(): 0 or 1 in base 10."""

    def store(text):
        value = ki.kstrtoul(text, 10)
        if value > 1:
            ki.fail(errno.EINVAL)
        setattr(owner, name, value)

    owner.attr(name, lambda: "%d\n" % getattr(owner, name), store, RW_644)


def bracketed(words, chosen) -> str:
    return " ".join("[%s]" % w if w == chosen else w for w in words) + "\n"


# Per-size mTHP directories (6.8+). Stat names as the 6.12 and 7.3 guests list them;
# kernels from 6.13 on get the 7.3 list (approximate for 6.13-7.2).
MTHP_SIZES_KB = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
MTHP_STATS_612 = ("anon_fault_alloc", "anon_fault_fallback", "anon_fault_fallback_charge",
                  "nr_anon", "nr_anon_partially_mapped", "shmem_alloc", "shmem_fallback",
                  "shmem_fallback_charge", "split", "split_deferred", "split_failed", "swpout",
                  "swpout_fallback")
MTHP_STATS_73 = MTHP_STATS_612 + ("collapse_alloc", "collapse_alloc_failed", "collapse_exceed_none_pte",
                                  "collapse_exceed_shared_pte", "collapse_exceed_swap_pte", "swpin",
                                  "swpin_fallback", "swpin_fallback_charge", "zswpout")
# The order-1 (8 kB) size exists for shmem only: no `enabled`, no anon/deferred-split stats.
ANON_ONLY_STATS = ("anon_fault_alloc", "anon_fault_fallback", "anon_fault_fallback_charge",
                   "nr_anon", "nr_anon_partially_mapped", "split_deferred", "collapse_exceed_none_pte",
                   "collapse_exceed_shared_pte", "collapse_exceed_swap_pte")
MTHP_ENABLED_WORDS = ("always", "inherit", "madvise", "never")
MTHP_SHMEM_WORDS = ("always", "inherit", "within_size", "advise", "never")


class MthpSize(Node):
    def __init__(self, size_kb: int, version):
        super().__init__()
        default = "inherit" if size_kb == 2048 else "never"
        self.enabled = self.shmem_enabled = default
        if size_kb != 8:
            self.attr("enabled", lambda: bracketed(MTHP_ENABLED_WORDS, self.enabled),
                      lambda text: setattr(self, "enabled", ki.match_word(text, MTHP_ENABLED_WORDS)), RW_644)
        self.attr("shmem_enabled", lambda: bracketed(MTHP_SHMEM_WORDS, self.shmem_enabled),
                  lambda text: setattr(self, "shmem_enabled", ki.match_word(text, MTHP_SHMEM_WORDS)), RW_644)
        stats = self.add_dir("stats", Node())
        for name in (MTHP_STATS_73 if version >= (6, 13) else MTHP_STATS_612):
            if size_kb == 8 and name in ANON_ONLY_STATS:
                continue
            stats.attr(name, lambda: "0\n", mode=RO_444)


class TransparentHugepage(Node):
    def __init__(self, settings: dict, version=(7, 3)):
        super().__init__()
        self.enabled = settings.get("enabled", "madvise")
        self.defrag = settings.get("defrag", "madvise")
        self.shmem_enabled = settings.get("shmem_enabled", "never")
        self.use_zero_page = int(settings.get("use_zero_page", 1))
        self._choice("enabled", ENABLED_WORDS)
        self._choice("defrag", DEFRAG_WORDS)
        self._choice("shmem_enabled", SHMEM_WORDS)
        flag_attr(self, "use_zero_page")
        self.attr("hpage_pmd_size", lambda: "2097152\n", mode=RO_444)
        if version >= (6, 12):
            self.shrink_underused = int(settings.get("shrink_underused", 1))
            flag_attr(self, "shrink_underused")
        self.khugepaged = self.add_dir("khugepaged", Khugepaged(settings.get("khugepaged", {})))
        if version >= (6, 8):
            for size_kb in MTHP_SIZES_KB:
                self.add_dir("hugepages-%dkB" % size_kb, MthpSize(size_kb, version))

    def _choice(self, name, words):
        for word in (getattr(self, name),):
            if word not in words:
                raise ValueError("THP %s: %r is not one of %s" % (name, word, words))
        self.attr(name, lambda: bracketed(words, getattr(self, name)),
                  lambda text: setattr(self, name, ki.match_word(text, words)), RW_644)

    def to_dict(self) -> dict:
        k = self.khugepaged
        return {"enabled": self.enabled, "defrag": self.defrag, "shmem_enabled": self.shmem_enabled,
                "use_zero_page": self.use_zero_page,
                "khugepaged": {n: getattr(k, n) for n in Khugepaged.FIELDS}}


class Khugepaged(Node):
    FIELDS = ("defrag", "pages_to_scan", "scan_sleep_millisecs", "alloc_sleep_millisecs",
              "max_ptes_none", "max_ptes_swap", "max_ptes_shared", "pages_collapsed", "full_scans")

    def __init__(self, settings: dict):
        super().__init__()
        defaults = {"defrag": 1, "pages_to_scan": 4096, "scan_sleep_millisecs": 10000,
                    "alloc_sleep_millisecs": 60000, "max_ptes_none": 511, "max_ptes_swap": 64,
                    "max_ptes_shared": 256, "pages_collapsed": 0, "full_scans": 0}
        for name in self.FIELDS:
            setattr(self, name, int(settings.get(name, defaults[name])))
        self.next_scan_us = self.scan_sleep_millisecs * 1000
        flag_attr(self, "defrag")
        self._uint("pages_to_scan", check=lambda v: v != 0)
        self._uint("scan_sleep_millisecs")
        self._uint("alloc_sleep_millisecs")
        for name in ("max_ptes_none", "max_ptes_swap", "max_ptes_shared"):
            self._uint(name, check=lambda v: v <= HPAGE_PMD_NR - 1)
        for name in ("pages_collapsed", "full_scans"):
            self.attr(name, lambda name=name: "%d\n" % getattr(self, name), mode=RO_444)

    def _uint(self, name, check=None):
        def store(text):
            try:
                value = ki.kstrtouint(text, 10)
            except OSError:
                ki.fail(errno.EINVAL)
            if check is not None and not check(value):
                ki.fail(errno.EINVAL)
            setattr(self, name, value)
            if name == "scan_sleep_millisecs":
                self.next_scan_us = 0  # the kernel wakes khugepaged on a change

        self.attr(name, lambda: "%d\n" % getattr(self, name), store, RW_644)

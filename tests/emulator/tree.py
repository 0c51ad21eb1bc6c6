"""A tiny kobject/attribute model: directories with attribute files, like sysfs.

A :class:`Node` is a directory (kobject). Its files are :class:`Attr` objects with a
``show()`` returning the text a reader gets and a ``store(text)`` that either returns
or raises ``OSError(errno)``. Typed attribute helpers mirror the kernel's
``*_show``/``*_store`` pairs (``%lu`` printing, ``kstrtoul`` parsing, ...).
"""

from __future__ import annotations

import errno
from typing import Callable, Optional

from . import kernel_input as ki

RW = 0o600
RO = 0o400


class Attr:
    def __init__(self, show: Callable[[], str], store: Optional[Callable[[str], None]] = None,
                 mode: int = RW):
        self.show = show
        self._store = store
        self.mode = mode

    @property
    def writable(self) -> bool:
        return bool(self.mode & 0o200) and self._store is not None

    def store(self, text: str) -> None:
        if self._store is None:
            ki.fail(errno.EACCES)
        self._store(text)


class Node:
    """A sysfs directory. Subclasses fill ``files`` and ``dirs`` in ``__init__``."""

    def __init__(self):
        self.files: dict[str, Attr] = {}
        self.dirs: dict[str, "Node"] = {}
        self.alive = True

    # --- tree edits -----------------------------------------------------
    def add_dir(self, name: str, node: "Node") -> "Node":
        self.dirs[name] = node
        return node

    def remove_dir(self, name: str) -> None:
        node = self.dirs.pop(name, None)
        if node is not None:
            node.kill()

    def kill(self) -> None:
        """Mark this subtree removed (open files then fail with ENODEV, like kernfs)."""
        self.alive = False
        for child in self.dirs.values():
            child.kill()

    def entries(self) -> list:
        return list(self.files) + list(self.dirs)

    # --- typed attribute helpers (kernel show/store pairs) ----------------
    def attr(self, name: str, show, store=None, mode: int = RW) -> None:
        self.files[name] = Attr(show, store, mode)

    def _number(self, name, field, parse, mode=RW, check=None, fmt="%d\n"):
        def show():
            return fmt % getattr(self, field)

        def store(text):
            value = parse(text)
            if check is not None:
                check(value)
            setattr(self, field, value)

        self.attr(name, show, store if mode & 0o200 else None, mode)

    def ulong(self, name, field=None, mode=RW, check=None):
        self._number(name, field or name, ki.kstrtoul, mode, check)

    def uint(self, name, field=None, mode=RW, check=None):
        self._number(name, field or name, ki.kstrtouint, mode, check)

    def int_(self, name, field=None, mode=RW, check=None):
        self._number(name, field or name, ki.kstrtoint, mode, check)

    def ro_number(self, name, field=None):
        self._number(name, field or name, None, RO)

    def yes_no(self, name, field=None):
        field = field or name

        def show():
            return "Y\n" if getattr(self, field) else "N\n"

        def store(text):
            setattr(self, field, ki.kstrtobool(text))

        self.attr(name, show, store)

    def keyword(self, name, field, words_fn: Callable[[], list]):
        """A file that accepts one of a (version dependent) list of keywords."""

        def show():
            return getattr(self, field) + "\n"

        def store(text):
            setattr(self, field, ki.match_word(text, words_fn()))

        self.attr(name, show, store)

    def text(self, name, field):
        """A free-form string file (memcg paths): stored as written, shown with a newline."""

        def show():
            return (getattr(self, field) or "") + "\n"

        def store(text):
            setattr(self, field, text)

        self.attr(name, show, store)


class ULRange(Node):
    """``min``/``max`` pair of unsigned longs (kernel: damon_sysfs_ul_range)."""

    def __init__(self, lo: int = 0, hi: int = 0):
        super().__init__()
        self.min = lo
        self.max = hi
        self.ulong("min")
        self.ulong("max")


class NrDir(Node):
    """A directory with an ``nr_<things>`` file whose write recreates children 0..N-1.

    The kernel removes every child and creates fresh default ones even when N is
    unchanged (``*_add_dirs()`` calls ``*_rm_dirs()`` first).
    """

    nr_name = "nr_things"
    max_nr: Optional[int] = None

    def __init__(self):
        super().__init__()
        self.children: list = []
        self.attr(self.nr_name, self._show_nr, self._store_nr)

    def new_child(self, index: int) -> Node:  # pragma: no cover - abstract
        raise NotImplementedError

    def may_recreate(self) -> None:
        """Hook: raise OSError to refuse (nr_kdamonds while a kdamond runs)."""

    def _show_nr(self) -> str:
        return "%d\n" % len(self.children)

    def _store_nr(self, text: str) -> None:
        nr = ki.kstrtoint(text)
        if nr < 0 or (self.max_nr is not None and nr > self.max_nr):
            ki.fail(errno.EINVAL)
        self.may_recreate()
        self.recreate(nr)

    def recreate(self, nr: int) -> None:
        for i in range(len(self.children)):
            self.remove_dir(str(i))
        self.children = []
        for i in range(nr):
            child = self.new_child(i)
            self.children.append(child)
            self.add_dir(str(i), child)

    def __len__(self):
        return len(self.children)

    def __iter__(self):
        return iter(self.children)

    def __getitem__(self, i):
        return self.children[i]

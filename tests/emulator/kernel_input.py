"""The kernel's string parsers as sysfs store handlers see them (lib/kstrtox.c semantics).

Every parser raises ``OSError(errno)`` like the kernel returns ``-errno``.
"""

from __future__ import annotations

import errno

ULONG_MAX = 2**64 - 1
UINT_MAX = 2**32 - 1
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)


def fail(code: int):
    raise OSError(code, "")


def _strip_newline(text: str) -> str:
    # kstrto*() accept exactly one trailing newline.
    return text[:-1] if text.endswith("\n") else text


def _parse_unsigned(text: str, base: int) -> int:
    s = _strip_newline(text)
    if s.startswith("+"):
        s = s[1:]
    if base == 0:
        if s[:2].lower() == "0x" and len(s) > 2:
            base, s = 16, s[2:]
        elif s.startswith("0") and len(s) > 1:
            base, s = 8, s[1:]
        else:
            base = 10
    elif base == 16 and s[:2].lower() == "0x":
        s = s[2:]
    if not s:
        fail(errno.EINVAL)
    try:
        value = int(s, base)
    except ValueError:
        fail(errno.EINVAL)
    if not all(c.isalnum() for c in s):  # int() tolerates '_' and spaces; the kernel does not
        fail(errno.EINVAL)
    if value > ULONG_MAX:
        fail(errno.ERANGE)
    return value


def kstrtoul(text: str, base: int = 0) -> int:
    return _parse_unsigned(text, base)


def kstrtouint(text: str, base: int = 0) -> int:
    value = _parse_unsigned(text, base)
    if value > UINT_MAX:
        fail(errno.ERANGE)
    return value


def kstrtoint(text: str, base: int = 0) -> int:
    s = _strip_newline(text)
    if s.startswith("-"):
        value = -_parse_unsigned(s[1:], base)
        if value < INT_MIN:
            fail(errno.ERANGE)
        return value
    value = _parse_unsigned(s, base)
    if value > INT_MAX:
        fail(errno.ERANGE)
    return value


def kstrtobool(text: str) -> bool:
    """y/Y/t/T/1/on -> True, n/N/f/F/0/off -> False (first characters decide)."""
    if not text:
        fail(errno.EINVAL)
    first = text[0]
    if first in "yYtT1":
        return True
    if first in "nNfF0":
        return False
    if first in "oO" and len(text) > 1:
        if text[1] in "nN":
            return True
        if text[1] in "fF":
            return False
    fail(errno.EINVAL)


def sysfs_streq(text: str, word: str) -> bool:
    """The kernel's sysfs_streq(): equal, ignoring one trailing newline on either side."""
    return _strip_newline(text) == _strip_newline(word)


def match_word(text: str, words) -> str:
    for word in words:
        if sysfs_streq(text, word):
            return word
    fail(errno.EINVAL)

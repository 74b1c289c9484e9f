# _vboard_os.py: the virtual board's `os` module (installed as sys.modules["os"] by
# _vboard.py before any board code runs): the unix port's os, plus two fixes for the
# board's filesystem, a vfs.VfsPosix(root) mounted at "/":
# - ilistdir() gives file sizes, as littlefs/FAT do on a board (VfsPosix leaves them
#   out, and `mpremote fs ls` shows them);
# - rename() works with two absolute paths (VfsPosix(root).rename builds both in one
#   shared buffer, so the second overwrites the first: ENOENT).
# The filesystem itself stays native: the import system's stat calls never run Python
# code, which matters because mp_vfs_import_stat() swallows any exception raised in a
# Python-level VFS, a KeyboardInterrupt included.
# Task context only; the same threads rules as the unix port's os.
from os import *  # noqa: F401,F403 - everything the unix port's os has
import os as _os


def ilistdir(path=""):
    """os.ilistdir() with (name, type, inode, size) entries."""
    base = path.rstrip("/") + "/" if path else ""
    for e in _os.ilistdir(path):
        if len(e) < 4:
            size = 0
            if e[1] != 0x4000:
                try:
                    size = _os.stat(base + e[0])[6]
                except OSError:
                    pass
            e = (e[0], e[1], e[2], size)
        yield e


def rename(old, new):
    """os.rename() that works for absolute paths on the board (see the header)."""
    if old.startswith("/"):
        # A relative path skips VfsPosix's shared buffer; the process's cwd is the
        # board's cwd under the root (VfsPosix.chdir keeps them in step).
        depth = len([p for p in _os.getcwd().split("/") if p])
        old = "../" * depth + old.lstrip("/")
    return _os.rename(old, new)

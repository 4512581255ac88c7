# SPDX-License-Identifier: GPL-2.0
"""The system calls the tests' Python helpers need and the os module lacks,
bound once through libc (ctypes). Each raises OSError (with the errno) when
the call fails, as os does.

Used by fsops.py, extents.py, abuse.py and reorder.py.
"""
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_libc.swapon.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.swapoff.argtypes = [ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_libc.syscall.restype = ctypes.c_long

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
SYS_DELETE_MODULE = 176  # x86_64


def _check(r):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def fallocate(fd, mode, offset, length):
    """fallocate(2) with any mode (os.posix_fallocate has none)."""
    _check(_libc.fallocate(fd, mode, offset, length))


def swapon(path, flags=0):
    _check(_libc.swapon(os.fsencode(path), flags))


def swapoff(path):
    _check(_libc.swapoff(os.fsencode(path)))


def umount2(path, flags=0):
    _check(_libc.umount2(os.fsencode(path), flags))


def renameat2(old, new, flags):
    """renameat2(2)."""
    _check(_libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags))



def delete_module(name, flags):
    _check(_libc.syscall(SYS_DELETE_MODULE, os.fsencode(name), flags))

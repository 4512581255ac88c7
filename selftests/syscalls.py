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
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.pwrite.restype = ctypes.c_ssize_t
_libc.pwrite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]

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



def short_buffer(data, n):
    """A buffer of n bytes whose first len(data) bytes hold data and whose
    rest is unmapped (anonymous memory, its tail unmapped): a write from it
    stops with a fault after len(data) bytes. Returns its address."""
    p = _libc.mmap(None, n, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
    if p in (None, ctypes.c_void_p(-1).value):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    ctypes.memmove(p, data, len(data))
    _check(_libc.munmap(p + len(data), n - len(data)))
    return p


def pwrite_ptr(fd, p, n, off):
    """pwrite(2) from an address; returns the count, or -1 (errno set)."""
    return _libc.pwrite(fd, p, n, off)


def delete_module(name, flags):
    _check(_libc.syscall(SYS_DELETE_MODULE, os.fsencode(name), flags))

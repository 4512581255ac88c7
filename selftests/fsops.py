#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Small filesystem operations the shell cannot do directly, for the
swapfs kselftests. Each subcommand exits 0 on success, prints the reason and
exits 1 otherwise.

  rename-noreplace OLD NEW   renameat2(RENAME_NOREPLACE)
  rename-exchange OLD NEW    renameat2(RENAME_EXCHANGE)
  pwrite FILE OFFSET TEXT    write TEXT at OFFSET (creating FILE)
  seek FILE                  print "data=<SEEK_DATA from 0> hole=<SEEK_HOLE from there>"
  mmap-write FILE SIZE       create FILE of SIZE bytes through a shared mapping
  direct FILE SIZE           O_DIRECT write of SIZE pattern bytes, O_DIRECT read back
  pattern FILE SIZE          write SIZE pattern bytes (what `direct` writes)
  fsync FILE                 fsync and fdatasync
  open-unlinked FILE         write, unlink while open, read back through the fd
  swapon FILE                swapon(2) directly; print the errno name on failure
  mmap-hold FILE READY GO    map FILE shared and writable, write, create READY,
                             wait for GO to exist, write again (a SIGBUS kills it)
"""
import errno
import mmap
import os
import sys

import syscalls


def pattern(n, seed=7):
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


def main(argv):
    cmd = argv[1]
    if cmd in ("rename-noreplace", "rename-exchange"):
        flags = syscalls.RENAME_NOREPLACE if cmd == "rename-noreplace" else syscalls.RENAME_EXCHANGE
        try:
            syscalls.renameat2(argv[2], argv[3], flags)
        except OSError as e:
            print(e.strerror)
            return 1
        return 0
    if cmd == "pwrite":
        fd = os.open(argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, argv[4].encode(), int(argv[3]))
        os.close(fd)
        return 0
    if cmd == "seek":
        fd = os.open(argv[2], os.O_RDONLY)
        data = os.lseek(fd, 0, os.SEEK_DATA)
        hole = os.lseek(fd, data, os.SEEK_HOLE)
        print(f"data={data} hole={hole}")
        return 0
    if cmd == "mmap-write":
        size = int(argv[3])
        fd = os.open(argv[2], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[:] = pattern(size, 3)
            m.flush()
        os.close(fd)
        return 0
    if cmd == "direct":
        size = int(argv[3])
        buf = mmap.mmap(-1, size)  # page aligned, as O_DIRECT needs
        buf[:] = pattern(size, 5)
        fd = os.open(argv[2], os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        if os.writev(fd, [buf]) != size:
            print("short direct write")
            return 1
        back = mmap.mmap(-1, size)
        if os.preadv(fd, [back], 0) != size or back[:] != buf[:]:
            print("direct read differs")
            return 1
        os.close(fd)
        return 0
    if cmd == "pattern":
        with open(argv[2], "wb") as fh:
            fh.write(pattern(int(argv[3]), 5))
        return 0
    if cmd == "fsync":
        fd = os.open(argv[2], os.O_RDWR)
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        return 0
    if cmd == "open-unlinked":
        data = pattern(100000, 9)
        fd = os.open(argv[2], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.unlink(argv[2])
        os.fsync(fd)
        if os.pread(fd, len(data), 0) != data:
            print("data changed after unlink")
            return 1
        if os.fstat(fd).st_nlink != 0:
            print("link count is not 0")
            return 1
        os.close(fd)
        return 0
    if cmd == "swapon":
        try:
            syscalls.swapon(argv[2])
        except OSError as e:
            print(f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}")
            return 1
        return 0
    if cmd == "mmap-hold":
        import time
        fd = os.open(argv[2], os.O_RDWR)
        with mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[100] = 1
            open(argv[3], "w").close()
            while not os.path.exists(argv[4]):
                time.sleep(0.05)
            m[200] = 2
        print("the write through the old mapping succeeded")
        return 0
    print(f"unknown command {cmd}")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except OSError as e:
        print(e.strerror or str(e))
        sys.exit(1)

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Concurrent abuse of an active swapfile, for swapfs_abuse.sh.

  abuse.py SECONDS MNT ACTIVE SPARE... -- report as one line per operation

For SECONDS, threads run in parallel, each in a loop:
  - against ACTIVE (an active swapfile): write, pwrite, O_DIRECT write,
    truncate, fallocate, FICLONE into and out of it, FIDEDUPERANGE,
    copy_file_range into it, writable shared mmap, unlink, rename, a second
    swapon; umount of MNT and unloading the module;
  - swapon/swapoff of each SPARE swapfile in turn.
Every refusal of the first group must carry the errno the kernel's rules
give (ETXTBSY for data changes, EPERM for namespace changes, EBUSY for a
second swapon or a busy umount, EAGAIN/EBUSY for a busy module); every
swapon/swapoff of a spare must succeed. Prints one line per operation:
"<op> attempts=N <errno>=N ..." and exits 1 if any attempt ended otherwise.
"""
import errno
import fcntl
import mmap
import os
import sys
import threading
import time

import syscalls

FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
FIDEDUPERANGE = 0xC0189436
MNT_FORCE = 1
O_NONBLOCK = os.O_NONBLOCK


def errname(e):
    return errno.errorcode.get(e, str(e))


class Op:
    """One kind of attempt, its expected errnos and what happened."""

    def __init__(self, name, fn, expect):
        self.name = name
        self.fn = fn
        self.expect = expect  # set of errno names; "ok" means success
        self.counts = {}
        self.attempts = 0
        self.lock = threading.Lock()

    def run(self):
        try:
            self.fn()
            r = "ok"
        except OSError as e:
            r = errname(e.errno)
        with self.lock:
            self.attempts += 1
            self.counts[r] = self.counts.get(r, 0) + 1

    def bad(self):
        return {k: v for k, v in self.counts.items() if k not in self.expect}

    def line(self):
        parts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        return f"{self.name} attempts={self.attempts} {parts}"


def main(argv):
    secs = float(argv[1])
    mnt = argv[2]
    active = argv[3]
    spares = argv[4:]
    other = os.path.join(mnt, "abuse-other")
    with open(other, "wb") as fh:
        fh.write(b"\x5a" * 65536)

    def with_fd(path, flags, fn):
        fd = os.open(path, flags)
        try:
            fn(fd)
        finally:
            os.close(fd)

    def o_direct_write():
        buf = mmap.mmap(-1, 4096)
        with_fd(active, os.O_WRONLY | os.O_DIRECT, lambda fd: os.pwritev(fd, [buf], 4096))

    def clone_into():
        with_fd(active, os.O_WRONLY, lambda fd: with_fd(
            other, os.O_RDONLY, lambda src: fcntl.ioctl(fd, FICLONE, src)))

    def clone_out():
        dst = os.path.join(mnt, f"abuse-clone.{threading.get_ident()}")
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with_fd(active, os.O_RDONLY, lambda src: fcntl.ioctl(fd, FICLONE, src))
        finally:
            os.close(fd)
            os.unlink(dst)

    def dedupe():
        # struct file_dedupe_range with one destination: the active file
        # deduplicated against the other file's first 4 KiB.
        def go(src):
            dst = os.open(active, os.O_RDWR)
            try:
                arg = bytearray(24 + 32)
                arg[0:8] = (0).to_bytes(8, "little")       # src_offset
                arg[8:16] = (4096).to_bytes(8, "little")   # src_length
                arg[16:18] = (1).to_bytes(2, "little")     # dest_count
                arg[24:28] = dst.to_bytes(4, "little", signed=True)  # dest_fd
                arg[32:40] = (4096).to_bytes(8, "little")  # dest_offset
                fcntl.ioctl(src, FIDEDUPERANGE, arg)
                status = int.from_bytes(arg[48:52], "little", signed=True)
                if status < 0:
                    raise OSError(-status, os.strerror(-status))
            finally:
                os.close(dst)
        with_fd(other, os.O_RDONLY, go)

    def copy_into():
        with_fd(active, os.O_WRONLY, lambda fd: with_fd(
            other, os.O_RDONLY, lambda src: os.copy_file_range(src, fd, 4096, 0, 4096)))

    def shared_mmap():
        def go(fd):
            m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            m.close()
        with_fd(active, os.O_RDWR, go)

    def swapon_again():
        syscalls.swapon(active)

    def umount():
        syscalls.umount2(mnt)

    def rmmod():
        syscalls.delete_module("swapfs", O_NONBLOCK)

    txt = {"ETXTBSY"}
    ops = [
        Op("write", lambda: with_fd(active, os.O_WRONLY | os.O_APPEND,
                                    lambda fd: os.write(fd, b"x")), txt),
        Op("pwrite", lambda: with_fd(active, os.O_WRONLY,
                                     lambda fd: os.pwrite(fd, b"x", 8192)), txt),
        Op("odirect-write", o_direct_write, txt),
        Op("truncate", lambda: os.truncate(active, 1 << 20), txt),
        Op("fallocate", lambda: with_fd(active, os.O_WRONLY,
                                        lambda fd: os.posix_fallocate(fd, 0, 1 << 30)), txt),
        Op("punch-hole", lambda: with_fd(active, os.O_WRONLY, lambda fd: syscalls.fallocate(fd, 3, 4096, 4096)), txt),
        Op("reflink-into", clone_into, txt),
        Op("reflink-out-of", clone_out, txt),
        Op("dedupe", dedupe, txt),
        Op("copy-file-range-into", copy_into, txt),
        Op("shared-writable-mmap", shared_mmap, txt),
        Op("unlink", lambda: os.unlink(active), {"EPERM"}),
        Op("rename", lambda: os.rename(active, active + ".moved"), {"EPERM"}),
        Op("swapon-again", swapon_again, {"EBUSY"}),
        Op("umount", umount, {"EBUSY"}),
        Op("rmmod", rmmod, {"EAGAIN", "EBUSY"}),
    ]

    def cycle(path):
        syscalls.swapon(path)
        syscalls.swapoff(path)

    spare_ops = [Op(f"swapon-swapoff {os.path.basename(p)}",
                    (lambda p=p: cycle(p)), {"ok"}) for p in spares]

    stop = time.monotonic() + secs
    errors = []

    def loop(group):
        try:
            while time.monotonic() < stop:
                for op in group:
                    op.run()
        except Exception as e:  # a bug in this program, not a refusal
            errors.append(repr(e))

    # Two threads hammer the active file's guards (in opposite orders, so
    # that different operations race each other), one cycles the spares.
    threads = [threading.Thread(target=loop, args=(ops,)),
               threading.Thread(target=loop, args=(ops[::-1],)),
               threading.Thread(target=loop, args=(spare_ops,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    bad = 0
    for op in ops + spare_ops:
        print(op.line())
        if op.bad() or op.attempts == 0:
            print(f"# {op.name}: unexpected {op.bad() or 'no attempt'}")
            bad += 1
    for e in errors:
        print(f"# error: {e}")
    os.unlink(other)
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

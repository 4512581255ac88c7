#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers of swapfs_extents.sh: raw fallocate, FIEMAP, copy_file_range,
mmap and direct writes, swapon(2), and a byte-level reference model of
every operation (applied to an ordinary file elsewhere, then compared with
the swapfs file byte for byte). Each subcommand exits 0 on success, prints
the reason and exits 1 otherwise.

  fallocate FILE MODE OFF LEN     fallocate(2) with a numeric mode
  fiemap FILE                     one line per extent: "start end flags"
                                  (bytes, flags as names joined by ",")
  expect-fiemap FILE LINE...      the FIEMAP lines, logically adjacent ones
                                  with the same flags merged (how the
                                  blocks happen to be laid out on disk does
                                  not matter), must be exactly these
  expect-fiemap-raw FILE LINE...  the FIEMAP lines must be exactly these
  copy-range SRC SOFF DST DOFF LEN  copy_file_range(2) until done
  mmap-pwrite FILE OFF LEN SEED   write pattern bytes through MAP_SHARED
  direct-pwrite FILE OFF LEN SEED O_DIRECT write (aligned buffer)
  pwrite FILE OFF LEN SEED        buffered write of pattern bytes
  short-pwrite FILE OFF LEN GOOD SEED  buffered write of LEN bytes from a
                                  buffer of which only the first GOOD (a
                                  page multiple) are mapped: a short write
  swapon FILE                     swapon(2); prints strerror on failure
  swapoff FILE                    swapoff(2)
  ref REF OP ARGS...              apply an operation to the reference:
      pwrite OFF LEN SEED | punch OFF LEN | zero OFF LEN KEEP |
      alloc OFF LEN KEEP | collapse OFF LEN | insert OFF LEN |
      clone SRC SOFF DOFF LEN (SRC is another reference file)
"""
import fcntl
import mmap
import os
import random
import struct
import sys

import syscalls

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 1
FLAGS = [
    (0x1, "last"),
    (0x2, "unknown"),
    (0x4, "delalloc"),
    (0x8, "encoded"),
    (0x80, "encrypted"),
    (0x100, "not_aligned"),
    (0x200, "inline"),
    (0x400, "tail"),
    (0x800, "unwritten"),
    (0x1000, "merged"),
    (0x2000, "shared"),
]


def pattern(n, seed):
    return random.Random(int(seed)).randbytes(n)


def fail_errno(e):
    print(e.strerror)
    return 1


def fiemap(path):
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        start = 0
        while True:
            count = 64
            hdr = struct.pack("QQIIII", start, (1 << 64) - 1 - start, FIEMAP_FLAG_SYNC, 0, count, 0)
            buf = bytearray(hdr + b"\0" * (56 * count))
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
            mapped = struct.unpack_from("I", buf, 20)[0]
            last = False
            for i in range(mapped):
                lg, ph, ln, _, _, fl = struct.unpack_from("QQQQQI", buf, 32 + 56 * i)
                names = [n for b, n in FLAGS if fl & b] or ["-"]
                out.append(f"{lg} {lg + ln} {','.join(names)}")
                start = lg + ln
                last = last or bool(fl & 1)
            if mapped < count or last:
                return out
    finally:
        os.close(fd)


def merged(lines):
    """Merges logically adjacent extents with the same flags ("last"
    stays on the final one)."""
    out = []  # [start, end, flags but last, last]
    for line in lines:
        start, end, flags = line.split(" ")
        fl = [] if flags == "-" else flags.split(",")
        names = [n for n in fl if n != "last"]
        if out and out[-1][1] == int(start) and out[-1][2] == names:
            out[-1][1] = int(end)
            out[-1][3] = "last" in fl
        else:
            out.append([int(start), int(end), names, "last" in fl])
    return [f"{s} {e} {','.join((['last'] if l else []) + n) or '-'}" for s, e, n, l in out]


def ref_op(ref, op, args):
    data = bytearray(open(ref, "rb").read()) if os.path.exists(ref) else bytearray()
    a = [int(x) for x in args[:4] if x.lstrip("-").isdigit()]

    def grow(n):
        if len(data) < n:
            data.extend(b"\0" * (n - len(data)))

    if op == "pwrite":
        off, n, seed = a[0], a[1], a[2]
        grow(off + n)
        data[off:off + n] = pattern(n, seed)
    elif op == "punch":
        off, n = a
        end = min(off + n, len(data))
        if off < end:
            data[off:end] = b"\0" * (end - off)
    elif op in ("zero", "alloc"):
        off, n, keep = a
        end = min(off + n, len(data))
        if op == "zero" and off < end:
            data[off:end] = b"\0" * (end - off)
        if not keep:
            grow(off + n)
    elif op == "collapse":
        off, n = a
        del data[off:off + n]
    elif op == "insert":
        off, n = a
        data[off:off] = b"\0" * n
    elif op == "clone":
        src = open(args[0], "rb").read()
        soff, doff, n = int(args[1]), int(args[2]), int(args[3])
        chunk = src[soff:soff + n]
        grow(doff + len(chunk))
        data[doff:doff + len(chunk)] = chunk
    else:
        print(f"unknown reference op {op}")
        return 2
    with open(ref, "wb") as fh:
        fh.write(data)
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "fallocate":
        fd = os.open(argv[2], os.O_RDWR | os.O_CREAT, 0o644)
        try:
            syscalls.fallocate(fd, int(argv[3], 0), int(argv[4]), int(argv[5]))
        except OSError as e:
            return fail_errno(e)
        os.close(fd)
        return 0
    if cmd == "fiemap":
        print("\n".join(fiemap(argv[2])))
        return 0
    if cmd in ("expect-fiemap", "expect-fiemap-raw"):
        got = fiemap(argv[2])
        if cmd == "expect-fiemap":
            got = merged(got)
        want = argv[3:]
        if got != want:
            print("FIEMAP: " + " | ".join(got) + " ; expected: " + " | ".join(want))
            return 1
        return 0
    if cmd == "copy-range":
        src = os.open(argv[2], os.O_RDONLY)
        dst = os.open(argv[4], os.O_WRONLY | os.O_CREAT, 0o644)
        soff, doff, left = int(argv[3]), int(argv[5]), int(argv[6])
        while left > 0:
            n = os.copy_file_range(src, dst, left, soff, doff)
            if n == 0:
                break
            soff, doff, left = soff + n, doff + n, left - n
        return 0
    if cmd == "short-pwrite":
        off, n, good, seed = int(argv[3]), int(argv[4]), int(argv[5]), argv[6]
        p = syscalls.short_buffer(pattern(good, seed), n)
        fd = os.open(argv[2], os.O_RDWR)
        r = syscalls.pwrite_ptr(fd, p, n, off)
        os.close(fd)
        if r != good:
            print(f"wrote {r} bytes, expected {good}")
            return 1
        return 0
    if cmd in ("mmap-pwrite", "direct-pwrite", "pwrite"):
        off, n, seed = int(argv[3]), int(argv[4]), argv[5]
        data = pattern(n, seed)
        if cmd == "pwrite":
            fd = os.open(argv[2], os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, data, off)
        elif cmd == "direct-pwrite":
            fd = os.open(argv[2], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
            buf = mmap.mmap(-1, n)
            buf[:] = data
            if os.pwritev(fd, [buf], off) != n:
                print("short direct write")
                return 1
        else:
            fd = os.open(argv[2], os.O_RDWR)
            size = os.fstat(fd).st_size
            if off + n > size:
                print("mmap-pwrite past EOF")
                return 1
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
                m[off:off + n] = data
                m.flush()
        os.fsync(fd)
        os.close(fd)
        return 0
    if cmd == "swapon":
        try:
            syscalls.swapon(argv[2])
        except OSError as e:
            return fail_errno(e)
        return 0
    if cmd == "swapoff":
        try:
            syscalls.swapoff(argv[2])
        except OSError as e:
            return fail_errno(e)
        return 0
    if cmd == "ref":
        return ref_op(argv[2], argv[3], argv[4:])
    print(f"unknown command {cmd}")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except OSError as e:
        print(e.strerror or str(e))
        sys.exit(1)

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write-reordering crash test, the guest side (scripts/reordertest drives
it; see there and Documentation/testing.md).

  reorder.py --ko KO --bs BS --fs DEV --log DEV --base DEV --cow DEV
             --seed S --ops N --points K [--mib M]

In one boot: mkfs.swapfs on a slice of DEV, a dm-log-writes target over it
logging every write, flush and FUA to the log disk, and on it the crash
test's workload (selftests/crash.py: promised and churn files, directories,
renames, links, truncates, fsync/fdatasync) with more churn: direct IO,
reflink clones written through (copy on write), fallocate, punched holes,
appends with fdatasync; all the while a swapfile is active and a child
process pushes its memory out to it and reads it back (MADV_PAGEOUT).
After each promise (the fsyncs that make it true returned) a mark goes into
the log. Then swapoff, umount, the log target is removed.

The log is then replayed onto the base disk, in order, to K points: to
flush entries (everything before a flush is on the medium), to the end,
and to random points between flushes, where each write since the last
flush reached the medium or not (a coin each; FUA writes always did): what
a disk with a volatile write cache may hold after a power cut. At each
point a dm-snapshot of the base takes the random writes, and is mounted
(journal replay); every promise made before the point must hold (the last
one in progress may be before or after), the whole tree is read (every unit
of every file is zeroes or the file's own data: no stale or foreign byte),
it is unmounted, fsck.swapfs -n must be clean, and dmesg must show no
splat. The snapshot is dropped; the base goes on.

Output: one line per failed point, then a JSON summary line starting with
"reorder-summary: ".
"""
import errno
import fcntl
import json
import mmap
import os
import random
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash  # noqa: E402
import syscalls  # noqa: E402

LW_MAGIC = 0x6A736677736872
LW_FLUSH, LW_FUA, LW_DISCARD, LW_MARK = 1, 2, 4, 8
MADV_PAGEOUT = 21
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
FICLONE = 0x40049409
LOGDM, SNAPDM = "swapfs-lw", "swapfs-replay"
SWAPFILE = "swapfile"



def sh(*cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stdout.strip()}")
    return p.stdout


def sectors(dev):
    with open(dev, "rb") as f:
        return f.seek(0, os.SEEK_END) // 512


# ---- device mapper ----------------------------------------------------------

DM_IOCTL = struct.Struct("<3IIIIiIIIQ128s129s7s")  # struct dm_ioctl, 312 bytes
DM_TARGET_MSG = (3 << 30) | (DM_IOCTL.size << 16) | (0xFD << 8) | 14


def dm_message(name, msg):
    """dmsetup message NAME 0 MSG, without a process per mark."""
    body = struct.pack("<Q", 0) + msg.encode() + b"\0"
    size = DM_IOCTL.size + len(body)
    size = (size + 7) // 8 * 8
    hdr = DM_IOCTL.pack(4, 0, 0, size, DM_IOCTL.size, 0, 0, 0, 0, 0, 0, name.encode(), b"", b"")
    buf = bytearray(hdr + body + bytes(size - DM_IOCTL.size - len(body)))
    fd = os.open("/dev/mapper/control", os.O_RDWR)
    try:
        fcntl.ioctl(fd, DM_TARGET_MSG, buf)
    finally:
        os.close(fd)


# ---- the log ----------------------------------------------------------------


class Entry:
    __slots__ = ("idx", "sector", "nr", "flags", "pos", "mark")

    def __init__(self, idx, sector, nr, flags, pos, mark):
        self.idx, self.sector, self.nr, self.flags, self.pos, self.mark = idx, sector, nr, flags, pos, mark


def read_lw_log(f):
    """The entries of a dm-log-writes log (drivers/md/dm-log-writes.c: a
    super sector, then per entry one sector of header and, unless it is a
    discard, its data)."""
    f.seek(0)
    magic, version, nr, ss = struct.unpack("<QQQI", f.read(28))
    if magic != LW_MAGIC or version != 1:
        raise RuntimeError(f"not a dm-log-writes log (magic {magic:#x}, version {version})")
    out, pos = [], ss
    for i in range(nr):
        f.seek(pos)
        hdr = f.read(ss)
        sector, nsec, flags, dlen = struct.unpack_from("<QQQQ", hdr)
        mark = hdr[32 : 32 + dlen].decode(errors="replace") if flags & LW_MARK else None
        out.append(Entry(i, sector, nsec, flags, pos + ss, mark))
        pos += ss + (0 if flags & LW_DISCARD else nsec * ss)
    return ss, out


class Replayer:
    def __init__(self, log, ss):
        self.log, self.ss = log, ss

    def apply(self, fd, e):
        if e.nr == 0:
            return
        n = e.nr * self.ss
        if e.flags & LW_DISCARD:
            data = bytes(n)  # what the medium holds there is undefined: zeroes
        else:
            self.log.seek(e.pos)
            data = self.log.read(n)
        os.pwrite(fd, data, e.sector * self.ss)


# ---- the workload -----------------------------------------------------------


class Promises:
    """crash.py's promise log, kept in memory: each record is followed by a
    mark in the write log, which tells where in it the promise holds."""

    def __init__(self):
        self.recs = []

    def append(self, r):
        r = dict(r, mark=f"p{len(self.recs)}")
        self.recs.append(r)
        dm_message(LOGDM, "mark " + r["mark"])


class Workload(crash.Workload):
    def __init__(self, mnt, log, seed):
        super().__init__(mnt, log, seed, bytearray(64))
        self.kfiles = []  # clones: K<source ino>_<n>, never renamed or linked

    def c_dio(self):
        """Direct IO over a range that may hold just-freed blocks."""
        rel = self.rng.choice(self.cfiles)
        fd = os.open(self.a(rel), os.O_WRONLY | os.O_DIRECT)
        try:
            ino = os.fstat(fd).st_ino
            start = self.rng.randrange(0, 1 << 20, 4096)
            n = self.rng.choice([4096, 16384, 65536])
            buf = mmap.mmap(-1, n)
            buf[:] = crash.pattern(ino, start, n, self.n + 1)
            try:
                os.pwrite(fd, buf, start)
            except OSError:
                pass  # the filesystem is full: the churn goes on
            buf.close()
        finally:
            os.close(fd)

    def c_reuse(self):
        """Free a file's blocks and write new data with direct IO at once:
        the allocator may hand out the blocks just freed, whose freeing
        transaction has not committed yet."""
        rel = self.rng.choice(self.cfiles)
        size = os.stat(self.a(rel)).st_size
        self.fsync_path(rel)  # its blocks allocated and committed
        if self.rng.random() < 0.5:
            os.unlink(self.a(rel))
            self.cfiles.remove(rel)
        else:
            os.truncate(self.a(rel), 0)
        new = os.path.join(self.c_dir(), self.name("t"))
        fd = os.open(self.a(new), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT, 0o644)
        self.cfiles.append(new)
        try:
            ino = os.fstat(fd).st_ino
            n = max(4096, min(size, 256 << 10) // 4096 * 4096)
            buf = mmap.mmap(-1, n)
            buf[:] = crash.pattern(ino, 0, n, self.n + 1)
            os.pwrite(fd, buf, 0)
            buf.close()
        finally:
            os.close(fd)

    def c_clone(self):
        src = self.rng.choice(self.cfiles)
        ino = os.stat(self.a(src)).st_ino
        # In a promised directory: those are never renamed or removed.
        rel = os.path.join(self.rng.choice(self.ddirs), f"K{ino}_{self.name('')}")
        s = os.open(self.a(src), os.O_RDONLY)
        d = os.open(self.a(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(d, FICLONE, s)
            dino = os.fstat(d).st_ino
            size = os.fstat(d).st_size
            if size and self.rng.random() < 0.7:  # copy on write
                off = self.rng.randrange(0, size) // crash.US * crash.US
                self.write_file(d, dino, off, min(8192, size - off) // crash.US * crash.US, self.n + 1)
        finally:
            os.close(s)
            os.close(d)
        self.kfiles.append(rel)

    def c_kwrite(self):
        rel = self.rng.choice(self.kfiles)
        if self.rng.random() < 0.3:
            os.unlink(self.a(rel))
            self.kfiles.remove(rel)
            return
        fd = os.open(self.a(rel), os.O_WRONLY)
        try:
            st = os.fstat(fd)
            off = self.rng.randrange(0, st.st_size + 1) // crash.US * crash.US
            self.write_file(fd, st.st_ino, off, 4096, self.n + 1)
            if self.rng.random() < 0.3:
                os.fdatasync(fd)
        finally:
            os.close(fd)

    def c_falloc(self):
        """fallocate (reads as zeroes) or punch a hole (whole units)."""
        rel = self.rng.choice(self.cfiles)
        fd = os.open(self.a(rel), os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            off = self.rng.randrange(0, max(size, 1 << 16)) // crash.US * crash.US
            n = self.rng.choice([crash.US * 5, 4096, 65536])
            mode = self.rng.choice([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE])
            try:
                syscalls.fallocate(fd, mode, off, n)
            except OSError:
                pass  # ENOSPC is churn too
        finally:
            os.close(fd)

    def c_append(self):
        """A log writer: appends, fdatasync after each."""
        rel = self.rng.choice(self.cfiles)
        fd = os.open(self.a(rel), os.O_WRONLY)
        try:
            ino = os.fstat(fd).st_ino
            for _ in range(self.rng.randrange(1, 4)):
                end = os.fstat(fd).st_size
                start = (end + crash.US - 1) // crash.US * crash.US
                os.pwrite(fd, crash.pattern(ino, start, 512, self.n + 1), start)
                os.fdatasync(fd)
        finally:
            os.close(fd)

    def step(self):
        if self.cfiles and self.rng.random() < 0.3:
            ops = [("c_dio", 3), ("c_reuse", 3), ("c_clone", 2), ("c_falloc", 3), ("c_append", 2)]
            if self.kfiles:
                ops.append(("c_kwrite", 3))
            op = self.rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
            return op, self.tolerant(getattr(self, op))
        return super().step()

    @staticmethod
    def tolerant(fn):
        """A churn op that may run out of space (ENOSPC is churn too)."""

        def run():
            try:
                fn()
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise

        return run


def swapper(stop_path, err_path, mib):
    """A child: memory pushed out to the swapfile and read back, again and
    again, until stop_path exists."""
    pid = os.fork()
    if pid:
        return pid
    rc = 0
    try:
        n = mib << 20
        pages = n // 4096
        ver = [0] * pages
        m = mmap.mmap(-1, n)

        def stamp(i):
            return struct.pack("<QQQ", 0x5357415050494E47, i, ver[i])

        for i in range(pages):
            m[i * 4096 : i * 4096 + 24] = stamp(i)
        rounds = 0
        while not os.path.exists(stop_path):
            # A few pages change each round; all are pushed out and read
            # back (/proc/vmstat's pswpout: every page, every round).
            for i in range(rounds * 64 % pages, min(pages, rounds * 64 % pages + 64)):
                ver[i] = rounds
                m[i * 4096 : i * 4096 + 24] = stamp(i)
            m.madvise(MADV_PAGEOUT)
            time.sleep(0.2)
            for i in range(pages):
                if m[i * 4096 : i * 4096 + 24] != stamp(i):
                    raise RuntimeError(f"swapped memory corrupt at page {i} after {rounds} rounds")
            rounds += 1
        with open(err_path, "w") as f:
            f.write(json.dumps({"rounds": rounds}))
    except Exception as e:
        with open(err_path, "w") as f:
            f.write(json.dumps({"error": repr(e)}))
        rc = 1
    os._exit(rc)


def vmstat(name):
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            if k == name:
                return int(v)
    return 0


def run_workload(a, mnt):
    """The workload on the log target; returns (promises, workload stats)."""
    dev = f"/dev/mapper/{LOGDM}"
    sh("mount", "-t", "swapfs", dev, mnt)
    sw = os.path.join(mnt, SWAPFILE)
    fd = os.open(sw, os.O_WRONLY | os.O_CREAT, 0o600)
    os.posix_fallocate(fd, 0, a.swap_mib << 20)
    os.close(fd)
    sh("mkswap", "-q", sw)
    sh("swapon", sw)
    stop, err = "/tmp/reorder-stop", "/tmp/reorder-swapper"
    for p in (stop, err):
        if os.path.exists(p):
            os.unlink(p)
    pswpout = vmstat("pswpout")
    child = swapper(stop, err, a.swap_mib // 2)
    log = Promises()
    w = Workload(mnt, log, a.seed)
    error = None
    try:
        w.run(a.ops)
    except Exception as e:
        error = repr(e)
    open(stop, "w").close()
    os.waitpid(child, 0)
    with open(err) as f:
        swap = json.load(f)
    swap["pswpout"] = vmstat("pswpout") - pswpout
    sh("swapoff", sw)
    sh("umount", mnt)
    return log.recs, w.stats, swap, error


def guest(a):
    mnt = "/tmp/reorder-mnt"
    os.makedirs(mnt, exist_ok=True)
    t0 = time.time()
    crash.sh("insmod", a.ko)
    fs_sectors = a.mib << 11
    for d in (a.fs, a.base):
        if sectors(d) < fs_sectors:
            raise RuntimeError(f"{d} is smaller than {a.mib} MiB")
    # The filesystem lives on the first M MiB of the disk; so does every
    # replay (the base is zeroed there: a write that never reached the
    # medium must not be found there from an earlier run).
    sh("dd", "if=/dev/zero", f"of={a.fs}", "bs=1M", f"count={a.mib}", "oflag=direct", "status=none")
    sh("dd", "if=/dev/zero", f"of={a.log}", "bs=1M", "count=1", "oflag=direct", "status=none")
    sh("dmsetup", "create", LOGDM, "--table", f"0 {fs_sectors} log-writes {a.fs} {a.log}")
    try:
        # mkfs too is in the log: the replays start from zeroes.
        mkfs = crash.FSCK.replace("fsck.swapfs", "mkfs.swapfs")
        sh(mkfs, "-q", "-f", "-b", str(a.bs), f"/dev/mapper/{LOGDM}", str((a.mib << 20) // a.bs))
        dm_message(LOGDM, "mark mkfs")  # no filesystem before it
        recs, stats, swap, error = run_workload(a, mnt)
    finally:
        subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL)
        sh("dmsetup", "remove", LOGDM)
    t_work = time.time() - t0
    failures = []
    if error:
        failures.append(f"workload error: {error}")
    if "error" in swap:
        failures.append(f"swapper: {swap['error']}")
    s = crash.splats(crash.dmesg_lines())
    if s:
        failures.append("kernel splat during the workload: " + " | ".join(s[:12]))

    logf = open(a.log, "rb")
    ss, entries = read_lw_log(logf)
    marks = {e.mark: e.idx for e in entries if e.mark}
    for r in recs:
        r["at"] = marks.get(r["mark"])
        if r["at"] is None:
            failures.append(f"mark {r['mark']} missing from the log")
    flushes = [e.idx for e in entries if e.flags & LW_FLUSH]
    n_writes = sum(1 for e in entries if e.nr and not e.flags & LW_DISCARD)

    # The points: (end index, write-subset seed or None), sorted by the
    # last flush at or before them (the base is replayed in order).
    rng = random.Random(a.seed ^ 0x5EED)
    last = len(entries) - 1
    first = marks.get("mkfs", last)
    pts = {(last, None)}
    later = [i for i in flushes if i > first]
    for i in sorted(rng.sample(later, min(a.points // 2, len(later)))):
        pts.add((i, None))
    while len(pts) < a.points and len(pts) < last - first:
        # Half of them just before a flush (all of the epoch's writes to
        # choose from), half anywhere.
        if later and rng.random() < 0.5:
            p = rng.choice(later) - 1
        else:
            p = rng.randrange(first, len(entries))
        pts.add((p, rng.randrange(1 << 30)))

    def base_end(p):
        """The last flush at or before p (-1: none)."""
        lo, hi = 0, len(flushes)
        while lo < hi:
            mid = (lo + hi) // 2
            if flushes[mid] <= p:
                lo = mid + 1
            else:
                hi = mid
        return flushes[lo - 1] if lo else -1

    if "mkfs" not in marks:
        failures.append("the mkfs mark is missing from the log")
    order = sorted(pts, key=lambda x: (base_end(x[0]) if x[1] is not None else x[0], x[0]))
    rep = Replayer(logf, ss)
    sh("dd", "if=/dev/zero", f"of={a.base}", "bs=1M", f"count={a.mib}", "oflag=direct", "status=none")
    bfd = os.open(a.base, os.O_WRONLY)
    applied = -1  # entries [0, applied] are on the base
    counts = {"points": 0, "flush_points": 0, "random_points": 0, "dropped_writes": 0, "kept_writes": 0, "failed": 0}
    t1 = time.time()
    for p, sub in order:
        upto = base_end(p) if sub is not None else p
        for e in entries[applied + 1 : upto + 1]:
            rep.apply(bfd, e)
        applied = max(applied, upto)
        os.fsync(bfd)
        sh("dmsetup", "create", SNAPDM, "--table", f"0 {fs_sectors} snapshot {a.base} {a.cow} N 8")
        dev = f"/dev/mapper/{SNAPDM}"
        try:
            what = f"flush point {p}" if sub is None else f"point {p} (after flush {upto})"
            if sub is not None:
                coin = random.Random(sub)
                sfd = os.open(dev, os.O_WRONLY)
                for e in entries[upto + 1 : p + 1]:
                    if not e.nr:
                        continue
                    if e.flags & LW_FUA or coin.random() < 0.5:
                        rep.apply(sfd, e)
                        counts["kept_writes"] += 1
                    else:
                        counts["dropped_writes"] += 1
                os.fsync(sfd)
                os.close(sfd)
            valid = [r for r in recs if r["at"] is not None and r["at"] <= p]
            r = crash.verify_recs(dev, valid, mnt, skip=(SWAPFILE,))
            counts["points"] += 1
            counts["flush_points" if sub is None else "random_points"] += 1
            if r["errors"]:
                counts["failed"] += 1
                line = f"{what} of {len(entries)}, {len(valid)} promises: " + " | ".join(r["errors"][:6])
                failures.append(line)
                print("FAILED " + line, flush=True)
        finally:
            subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL)
            sh("dmsetup", "remove", SNAPDM)
    summary = {
        "bs": a.bs,
        "seed": a.seed,
        "ops": sum(stats.values()),
        "op_counts": stats,
        "promises": len(recs),
        "entries": len(entries),
        "writes": n_writes,
        "flushes": len(flushes),
        "fua": sum(1 for e in entries if e.flags & LW_FUA),
        "swap_rounds": swap.get("rounds"),
        "pages_swapped_out": swap.get("pswpout"),
        "workload_s": round(t_work, 1),
        "replay_s": round(time.time() - t1, 1),
        **counts,
        "failures": failures[:40],
    }
    print("reorder-summary: " + json.dumps(summary), flush=True)
    return 1 if failures else 0


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="reorder.py")
    for o in ("--ko", "--fs", "--log", "--base", "--cow"):
        ap.add_argument(o, required=True)
    ap.add_argument("--bs", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--ops", type=int, default=1500)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--swap-mib", type=int, default=16)
    return guest(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

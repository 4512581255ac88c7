#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Crash-consistency test: the guest side and the log parser
(scripts/crashtest drives it; see there and Documentation/testing.md).

  crash.py guest --ko KO --report LOGDEV [--verify DEV PREVLOG] [--run DEV SEED CUT_MS]
      in a test VM: verify the image of the previous power cut (mount =
      journal replay, check every promise of PREVLOG, read the whole tree,
      umount, fsck), then run the workload on DEV and cut the power
      (sysrq b) CUT_MS milliseconds after it started
  crash.py summary LOG       on the host: one boot's log disk as JSON
  crash.py describe CUTLOG VERIFYLOG FSCKLOG
      on the host: one line on a cut (from the log of the boot that was cut
      and the log of the boot that verified it); exit 1 if it failed

The log disk (one per boot, a raw virtio disk, written with O_DIRECT|O_DSYNC
so that a record is on the host's image file when its write returns):

  [0, 1 MiB)    the verification report of the previous cut
  [1, 2 MiB)    the cut record: written by the cutter just before sysrq b
  [2 MiB, ...)  the workload's promises, one 4 KiB record each, in order

A promise is written only after the fsync()s that make it true returned
("done"); an operation that changes an already promised file first writes an
"intent", so that a cut between the two allows the state before or after it.

File data is self-describing: 32-byte units (magic, inode number, file
offset, version), so any file can be checked after a cut: every unit is
zeroes or belongs to that inode at that offset (no stale or misdirected
data), and promised files must hold exactly their promised versions.
"""
import array
import json
import mmap
import os
import random
import stat
import struct
import subprocess
import sys
import time
import zlib

MAGIC = b"SWCRASH1"
UNIT = struct.Struct("<8sQQQ")  # magic, ino, offset, version
US = UNIT.size  # 32
MAGIC_Q = struct.unpack("<Q", MAGIC)[0]
REC = 4096
REPORT_OFF = 0
CUT_OFF = 1 << 20
LOG_OFF = 2 << 20
ERROR_OFF = CUT_OFF + (64 << 10)
REC_HDR = struct.Struct("<4sIII")  # "CRLG", seq, length, crc32
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSCK = os.path.join(TOP, "tools/target/release/fsck.swapfs")
SPLATS = os.path.join(TOP, "scripts/splats")


def pattern(ino, off, length, ver):
    """The bytes a write of version ver puts at [off, off + length)."""
    if ver == 0:
        return bytes(length)
    return b"".join(UNIT.pack(MAGIC, ino, o, ver) for o in range(off, off + length, US))


# ---- the log disk ----------------------------------------------------------


class LogDev:
    def __init__(self, path):
        direct = os.O_DIRECT if stat.S_ISBLK(os.stat(path).st_mode) else 0
        self.fd = os.open(path, os.O_WRONLY | os.O_DSYNC | direct)
        self.seq = 0

    def put(self, off, obj, size=REC):
        data = json.dumps(obj, separators=(",", ":")).encode()
        need = (REC_HDR.size + len(data) + REC - 1) // REC * REC
        if need > size:
            raise ValueError(f"record too large: {len(data)} bytes")
        buf = mmap.mmap(-1, need)  # page-aligned, as O_DIRECT needs
        buf[: REC_HDR.size] = REC_HDR.pack(b"CRLG", self.seq, len(data), zlib.crc32(data))
        buf[REC_HDR.size : REC_HDR.size + len(data)] = data
        n = os.pwrite(self.fd, buf, off)
        assert n == need
        buf.close()

    def append(self, obj):
        self.put(LOG_OFF + self.seq * REC, obj)
        self.seq += 1


def read_rec(f, off, seq=None):
    f.seek(off)
    hdr = f.read(REC_HDR.size)
    if len(hdr) < REC_HDR.size:
        return None
    magic, s, n, crc = REC_HDR.unpack(hdr)
    if magic != b"CRLG" or (seq is not None and s != seq) or n > (1 << 20):
        return None
    data = f.read(n)
    if len(data) != n or zlib.crc32(data) != crc:
        return None  # torn: its write never completed
    return json.loads(data)


def read_log(path):
    """(report, cut record, [promises]) of one boot's log disk; a workload
    error is in the cut record."""
    with open(path, "rb") as f:
        report = read_rec(f, REPORT_OFF)
        cut = read_rec(f, CUT_OFF)
        err = read_rec(f, ERROR_OFF)
        if err:
            cut = dict(cut or {}, workload_error=err)
        recs = []
        while True:
            r = read_rec(f, LOG_OFF + len(recs) * REC, len(recs))
            if r is None:
                break
            recs.append(r)
    return report, cut, recs


# ---- the model of what was promised -----------------------------------------


def seg_write(segs, start, end, ver):
    """segs: sorted [start, end, ver] covering [0, size); returns new list."""
    out = []
    for s, e, v in segs:
        if e <= start or s >= end:
            out.append([s, e, v])
            continue
        if s < start:
            out.append([s, start, v])
        if e > end:
            out.append([end, e, v])
    out.append([start, end, ver])
    return sorted(out)


def seg_truncate(segs, size, new):
    out = [[s, min(e, new), v] for s, e, v in segs if s < new]
    if new > size:
        out.append([size, new, 0])
    return out


class Model:
    """Promised directories and files; apply() is the effect of one op."""

    def __init__(self):
        self.dirs = set()
        self.files = {}  # id -> {ino, size, segs, names}
        self.gone = set()  # names promised to be removed

    def copy(self):
        m = Model()
        m.dirs = set(self.dirs)
        m.files = {
            k: {"ino": f["ino"], "size": f["size"], "segs": [list(s) for s in f["segs"]], "names": set(f["names"])}
            for k, f in self.files.items()
        }
        m.gone = set(self.gone)
        return m

    def apply(self, r):
        op = r["op"]
        if op == "mkdir":
            self.dirs.add(r["path"])
            return
        if op == "create":
            self.files[r["id"]] = {
                "ino": r["ino"],
                "size": r["size"],
                "segs": [[0, r["size"], r["ver"]]] if r["size"] else [],
                "names": {r["path"]},
            }
            self.gone.discard(r["path"])
            return
        f = self.files[r["id"]]
        if op == "rename":
            f["names"].discard(r["from"])
            self.gone.add(r["from"])
            f["names"].add(r["to"])
            self.gone.discard(r["to"])
        elif op == "link":
            f["names"].add(r["to"])
        elif op == "unlink":
            f["names"].discard(r["path"])
            self.gone.add(r["path"])
            if not f["names"]:
                del self.files[r["id"]]
        elif op == "write":
            f["segs"] = seg_write(f["segs"], r["start"], r["end"], r["ver"])
            f["size"] = max(f["size"], r["end"])
        elif op == "truncate":
            f["segs"] = seg_truncate(f["segs"], f["size"], r["size"])
            f["size"] = r["size"]
        else:
            raise ValueError(op)


def model_of(recs):
    """(model with every done op, the pending intent or None, counts)."""
    m = Model()
    pending = None
    for r in recs:
        if r["t"] == "intent":
            pending = r
        else:
            m.apply(r)
            pending = None
    return m, pending


# ---- checking a tree --------------------------------------------------------


def unit_ok(u, off, ino):
    """A unit of an unpromised file: this inode's data at off (any version),
    or a prefix of it followed by zeroes (all zeroes included)."""
    exp = UNIT.pack(MAGIC, ino, off, 0)[:24]
    for j in range(min(len(u), 24)):
        if u[j] != exp[j]:
            # Possibly cut by an unaligned truncate, then extended: zeroes.
            return u[j:] == bytes(len(u) - j)
    return True


def own_data(data, base, ino):
    """Whether data (whole units) is entirely this inode's, at file offset base."""
    if len(data) % US:
        return False
    a = array.array("Q", data)
    nu = len(a) // 4
    return (
        a[1::4] == array.array("Q", [ino]) * nu
        and a[0::4] == array.array("Q", [MAGIC_Q]) * nu
        and a[2::4] == array.array("Q", range(base, base + nu * US, US))
    )


def chunk_ok(data, base, ino, also=()):
    """The first bad unit's offset in data (at file offset base), or None.
    Fast paths: all of it own data; 4 KiB pieces of own data or of zeroes;
    unit by unit otherwise. also: inodes whose data may be there too (the
    source of a clone)."""
    inos = (ino, *also)
    if own_data(data, base, ino):
        return None
    zero = bytes(4096)
    for p in range(0, len(data), 4096):
        piece = data[p : p + 4096]
        if piece == zero or any(own_data(piece, base + p, i) for i in inos):
            continue
        for i in range(0, len(piece), US):
            if not any(unit_ok(piece[i : i + US], base + p + i, n) for n in inos):
                return base + p + i
    return None


def clone_source(name):
    """A clone's name says whose data it shares: K<source inode>_<n>."""
    if name.startswith("K") and "_" in name:
        try:
            return (int(name[1 : name.index("_")]),)
        except ValueError:
            pass
    return ()


def check_any_file(path, st, errors):
    """Every unit of a file is zeroes or its own data (or, for a clone, its
    source's): no stale block."""
    with open(path, "rb") as fh:
        off = 0
        while True:
            data = fh.read(1 << 20)
            if not data:
                break
            bad = chunk_ok(data, off, st.st_ino, clone_source(os.path.basename(path)))
            if bad is not None:
                u = data[bad - off : bad - off + US]
                errors.append(f"{path}: foreign data at offset {bad}: {u.hex()} (ino {st.st_ino})")
                return
            off += len(data)
    if off != st.st_size:
        errors.append(f"{path}: read {off} bytes, size {st.st_size}")


def check_symlink(path, errors):
    t = os.readlink(path)
    try:
        ok = t[0] == "L" and int(t[1:6]) == len(t) and t[6:] == "y" * (len(t) - 6)
    except (ValueError, IndexError):
        ok = False
    if not ok:
        errors.append(f"{path}: symlink target corrupt: {t[:40]!r}... ({len(t)} bytes)")


def walk(mnt, errors, skip=()):
    """Reads the whole tree (but the paths in skip: a swapfile holds memory,
    not pattern data), checking every file, symlink and link count."""
    counts = {"dirs": 0, "files": 0, "symlinks": 0, "others": 0, "bytes": 0}
    for dirpath, dirnames, filenames in os.walk(mnt, onerror=lambda e: errors.append(f"walk: {e}")):
        counts["dirs"] += 1
        st = os.lstat(dirpath)
        if st.st_nlink != 2 + sum(1 for d in dirnames if not os.path.islink(os.path.join(dirpath, d))):
            errors.append(f"{dirpath}: nlink {st.st_nlink}, {len(dirnames)} subdirectories")
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, n)
            if os.path.relpath(p, mnt) in skip:
                continue
            try:
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):
                    counts["files"] += 1
                    counts["bytes"] += st.st_size
                    check_any_file(p, st, errors)
                elif stat.S_ISLNK(st.st_mode):
                    counts["symlinks"] += 1
                    check_symlink(p, errors)
                else:
                    counts["others"] += 1
            except OSError as e:
                errors.append(f"{p}: {e}")
    return counts


def check_promises(mnt, m, pending, errors):
    """Every promised directory and name exists; promised files hold exactly
    their data. A pending op allows the state before it or after it."""
    post = None
    if pending is not None:
        post = m.copy()
        post.apply(pending)
    nfiles = nnames = 0
    for d in sorted(m.dirs):
        if not os.path.isdir(os.path.join(mnt, d)):
            errors.append(f"promised directory {d} is missing")
    ids = set(m.files) | (set(post.files) if post else set())
    for fid in sorted(ids):
        pre_f = m.files.get(fid)
        post_f = post.files.get(fid) if post else pre_f
        pend = post is not None and pending.get("id") == fid
        f = pre_f or post_f
        ino = f["ino"]
        names_pre = pre_f["names"] if pre_f else set()
        names_post = post_f["names"] if post_f else set()
        must = names_pre & names_post if pend else names_pre
        may = names_pre | names_post
        found = []
        for n in sorted(may):
            p = os.path.join(mnt, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                if n in must:
                    errors.append(f"promised name {n} (file {fid}, ino {ino}) is missing")
                continue
            if st.st_ino != ino:
                if n in must or not pend:
                    errors.append(f"promised name {n} is inode {st.st_ino}, not {ino}")
                continue
            found.append((p, st))
            nnames += 1
        if pend and may and not found and names_post:
            errors.append(f"file {fid} (ino {ino}): none of {sorted(may)} exists during a pending {pending['op']}")
        if not found:
            continue
        nfiles += 1
        p, st = found[0]
        states = [s for s in (pre_f, post_f if pend else None) if s is not None]
        check_promised_data(p, st, ino, states, errors)
    post_names = set().union(*(f["names"] for f in post.files.values())) if post else set()
    for n in sorted(m.gone):
        if n in post_names:
            continue
        if os.path.lexists(os.path.join(mnt, n)):
            errors.append(f"name {n} was removed (promised) but exists")
    return nfiles, nnames


def check_promised_data(p, st, ino, states, errors):
    sizes = [s["size"] for s in states]
    lo, hi = min(sizes), max(sizes)
    if not lo <= st.st_size <= hi:
        errors.append(f"{p}: size {st.st_size}, promised {sizes}")
        return
    with open(p, "rb") as fh:
        data = fh.read()
    if len(data) != st.st_size:
        errors.append(f"{p}: read {len(data)} bytes of {st.st_size}")
        return
    exp = []
    for s in states:
        e = bytearray()
        for a, b, v in s["segs"]:
            e += pattern(ino, a, b - a, v)
        exp.append(bytes(e))
    if any(data == e[: len(data)] for e in exp) and (len(states) > 1 or len(data) == len(exp[0])):
        return
    for off in range(0, len(data), US):
        u = data[off : off + US]
        ok = any(off < s["size"] and u == e[off : off + len(u)] for s, e in zip(states, exp))
        ok = ok or (off >= lo and u == bytes(len(u)))
        if not ok:
            want = [e[off : off + US].hex() for e in exp]
            errors.append(f"{p}: promised data differs at offset {off}: {u.hex()}, want one of {want}")
            return


# ---- the workload -------------------------------------------------------------


class Workload:
    def __init__(self, mnt, log, seed, progress):
        self.mnt = mnt
        self.log = log
        self.rng = random.Random(seed)
        self.seed = seed
        self.root = f"r{seed}"
        self.progress = progress
        self.n = 0
        self.counter = 0
        self.ddirs = []  # promised directories (relative)
        self.dfiles = {}  # id -> {"names": [...], "size", "ino", "ver"}
        self.next_id = 0
        self.cfiles = []  # churn regular files
        self.cdirs = []  # churn directories
        self.cother = []  # churn symlinks, fifos, device nodes
        self.old = []  # trees of earlier runs, removed as churn
        self.stats = {}

    def a(self, rel):
        return os.path.join(self.mnt, rel)

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def fsync_path(self, rel, data=False):
        fd = os.open(self.a(rel), os.O_RDONLY)
        try:
            (os.fdatasync if data else os.fsync)(fd)
        finally:
            os.close(fd)

    def promise(self, t, **r):
        r["t"] = t
        r["n"] = self.n
        self.log.append(r)

    def mark(self, op):
        self.n += 1
        self.stats[op] = self.stats.get(op, 0) + 1
        self.progress[0:32] = struct.pack("<Q24s", self.n, op.encode()[:24])

    def write_file(self, fd, ino, start, length, ver):
        # In pieces of random sizes, so that writes straddle blocks.
        end = start + length
        while start < end:
            n = min(end - start, self.rng.choice([US, 1024, 4096, 8192, 65536]))
            os.pwrite(fd, pattern(ino, start, n, ver), start)
            start += n

    # -- promised ops --------------------------------------------------------

    def d_mkdir(self):
        parent = self.rng.choice(self.ddirs)
        rel = os.path.join(parent, self.name("D"))
        os.mkdir(self.a(rel))
        self.fsync_path(rel)
        self.fsync_path(parent)
        self.ddirs.append(rel)
        self.promise("done", op="mkdir", path=rel)

    def d_create(self):
        parent = self.rng.choice(self.ddirs)
        rel = os.path.join(parent, self.name("F"))
        size = self.rng.choice([0, US, 1024, 4096, 5000 // US * US, 65536, 200000 // US * US, 1 << 20])
        fd = os.open(self.a(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            ino = os.fstat(fd).st_ino
            self.write_file(fd, ino, 0, size, 1)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.fsync_path(parent)
        fid = self.next_id
        self.next_id += 1
        self.dfiles[fid] = {"names": [rel], "size": size, "ino": ino, "ver": 1}
        self.promise("done", op="create", id=fid, path=rel, ino=ino, size=size, ver=1)

    def d_rename(self):
        fid = self.rng.choice(list(self.dfiles))
        f = self.dfiles[fid]
        src = self.rng.choice(f["names"])
        over = [c for c in self.cfiles if os.path.dirname(c) in self.ddirs]
        if over and self.rng.random() < 0.4:
            dst = self.rng.choice(over)  # replaces an unpromised file
        else:
            dst = os.path.join(self.rng.choice(self.ddirs), self.name("F"))
        r = dict(op="rename", id=fid, **{"from": src, "to": dst})
        self.promise("intent", **r)
        os.rename(self.a(src), self.a(dst))
        if dst in self.cfiles:
            self.cfiles.remove(dst)
        self.fsync_path(os.path.dirname(dst))
        if os.path.dirname(src) != os.path.dirname(dst):
            self.fsync_path(os.path.dirname(src))
        f["names"].remove(src)
        f["names"].append(dst)
        self.promise("done", **r)

    def d_link(self):
        fid = self.rng.choice(list(self.dfiles))
        f = self.dfiles[fid]
        src = self.rng.choice(f["names"])
        dst = os.path.join(self.rng.choice(self.ddirs), self.name("F"))
        r = dict(op="link", id=fid, **{"from": src, "to": dst})
        self.promise("intent", **r)
        os.link(self.a(src), self.a(dst))
        self.fsync_path(os.path.dirname(dst))
        f["names"].append(dst)
        self.promise("done", **r)

    def d_unlink(self):
        fid = self.rng.choice(list(self.dfiles))
        f = self.dfiles[fid]
        name = self.rng.choice(f["names"])
        r = dict(op="unlink", id=fid, path=name)
        self.promise("intent", **r)
        os.unlink(self.a(name))
        self.fsync_path(os.path.dirname(name))
        f["names"].remove(name)
        if not f["names"]:
            del self.dfiles[fid]
        self.promise("done", **r)

    def d_write(self):
        fid = self.rng.choice(list(self.dfiles))
        f = self.dfiles[fid]
        rng = self.rng
        size = f["size"]
        if size == 0 or rng.random() < 0.4:  # append, maybe past EOF
            start = size + rng.choice([0, 0, US, 4096, 100000 // US * US])
        else:
            start = rng.randrange(0, size, US)
        length = rng.choice([US, 1024, 4096, 12288, 70000 // US * US, 300000 // US * US])
        f["ver"] += 1
        r = dict(op="write", id=fid, start=start, end=start + length, ver=f["ver"])
        if start > size:  # the hole between reads as zeroes: a truncate first
            rt = dict(op="truncate", id=fid, size=start)
            self.promise("intent", **rt)
            os.truncate(self.a(f["names"][0]), start)
            self.fsync_path(f["names"][0], data=rng.random() < 0.5)
            self.promise("done", **rt)
        self.promise("intent", **r)
        fd = os.open(self.a(f["names"][0]), os.O_WRONLY)
        try:
            self.write_file(fd, f["ino"], start, length, f["ver"])
            (os.fdatasync if rng.random() < 0.5 else os.fsync)(fd)
        finally:
            os.close(fd)
        f["size"] = max(size, start + length)
        self.promise("done", **r)

    def d_truncate(self):
        fid = self.rng.choice(list(self.dfiles))
        f = self.dfiles[fid]
        size = self.rng.choice([0, f["size"] // 2 // US * US, f["size"] + 8192, max(0, f["size"] - 4096)])
        r = dict(op="truncate", id=fid, size=size)
        self.promise("intent", **r)
        os.truncate(self.a(f["names"][0]), size)
        self.fsync_path(f["names"][0], data=self.rng.random() < 0.5)
        f["size"] = size
        self.promise("done", **r)

    # -- unpromised churn ------------------------------------------------------

    def c_dir(self):
        pool = self.cdirs + self.ddirs
        return self.rng.choice(pool)

    def c_create(self):
        rel = os.path.join(self.c_dir(), self.name("t"))
        fd = os.open(self.a(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            ino = os.fstat(fd).st_ino
            self.write_file(fd, ino, 0, self.rng.choice([0, US, 3000 // US * US, 8192, 100000 // US * US]), 1)
        finally:
            os.close(fd)
        self.cfiles.append(rel)

    def c_write(self):
        rel = self.rng.choice(self.cfiles)
        fd = os.open(self.a(rel), os.O_WRONLY)
        try:
            st = os.fstat(fd)
            start = self.rng.choice([0, self.rng.randrange(0, 1 << 20, US), st.st_size // US * US])
            self.write_file(fd, st.st_ino, start, self.rng.choice([US, 4096, 40000 // US * US]), self.n + 1)
            if self.rng.random() < 0.1:
                os.fsync(fd)
        finally:
            os.close(fd)

    def c_truncate(self):
        rel = self.rng.choice(self.cfiles)
        os.truncate(self.a(rel), self.rng.choice([0, self.rng.randrange(1 << 16), self.rng.randrange(1 << 20)]))

    def c_unlink(self):
        pool = self.cfiles + self.cother
        rel = self.rng.choice(pool)
        os.unlink(self.a(rel))
        if rel in self.cfiles:
            self.cfiles.remove(rel)
        else:
            self.cother.remove(rel)

    def c_mkdir(self):
        rel = os.path.join(self.c_dir(), self.name("c"))
        os.mkdir(self.a(rel))
        self.cdirs.append(rel)

    def c_rmdir(self):
        empty = [d for d in self.cdirs if not any(x.startswith(d + "/") for x in self.cdirs + self.cfiles + self.cother)]
        if empty:
            d = self.rng.choice(empty)
            os.rmdir(self.a(d))
            self.cdirs.remove(d)

    def c_rename(self):
        rng = self.rng
        if rng.random() < 0.75 or not self.cdirs:
            src = rng.choice(self.cfiles)
            others = [c for c in self.cfiles if c != src]
            over = bool(others) and rng.random() < 0.4
            if over:
                dst = rng.choice(others)  # over an existing file
            else:
                dst = os.path.join(self.c_dir(), self.name("t"))
            os.rename(self.a(src), self.a(dst))
            if over and os.path.lexists(self.a(src)):
                # Two links of one inode (c_link): rename(2) does nothing
                # and succeeds (POSIX), both names stay.
                return
            if over:
                self.cfiles.remove(dst)
            self.cfiles[self.cfiles.index(src)] = dst
        else:
            src = rng.choice(self.cdirs)
            parent = self.c_dir()
            if parent == src or parent.startswith(src + "/"):
                return
            dst = os.path.join(parent, self.name("c"))
            os.rename(self.a(src), self.a(dst))
            pre = src + "/"

            def mv(x):
                return dst + x[len(src) :] if x == src or x.startswith(pre) else x

            self.cdirs = [mv(x) for x in self.cdirs]
            self.cfiles = [mv(x) for x in self.cfiles]
            self.cother = [mv(x) for x in self.cother]

    def c_link(self):
        src = self.rng.choice(self.cfiles)
        dst = os.path.join(self.c_dir(), self.name("t"))
        os.link(self.a(src), self.a(dst))
        self.cfiles.append(dst)

    def c_special(self):
        rel = os.path.join(self.c_dir(), self.name("s"))
        k = self.rng.random()
        if k < 0.6:
            n = self.rng.choice([6, 20, 60, 200, 900, 1000, 2000, 3000])
            try:
                os.symlink("L%05d" % n + "y" * (n - 6), self.a(rel))
            except OSError:
                return  # longer than the fs allows
        elif k < 0.8:
            os.mkfifo(self.a(rel))
        else:
            os.mknod(self.a(rel), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        self.cother.append(rel)

    def c_fsync(self):
        if self.rng.random() < 0.5 and self.cfiles:
            self.fsync_path(self.rng.choice(self.cfiles))
        else:
            self.fsync_path(self.c_dir())

    def c_old(self):
        """Remove a piece of an earlier run's tree (big unlinks, rmdirs)."""
        while self.old:
            top = self.old[-1]
            for dirpath, dirnames, filenames in os.walk(top, topdown=False):
                for f in filenames[:20]:
                    os.unlink(os.path.join(dirpath, f))
                if len(filenames) > 20:
                    return
                for d in dirnames:
                    p = os.path.join(dirpath, d)
                    if os.path.islink(p):
                        os.unlink(p)
                    else:
                        try:
                            os.rmdir(p)
                        except OSError:
                            return
                if dirpath != top:
                    return
            os.rmdir(top)
            self.old.pop()
            return

    def setup(self):
        self.old = [self.a(d) for d in sorted(os.listdir(self.mnt)) if d.startswith("r")]
        os.mkdir(self.a(self.root))
        self.fsync_path(self.root)
        self.fsync_path(".")
        self.ddirs.append(self.root)
        self.promise("done", op="mkdir", path=self.root)

    def step(self):
        rng = self.rng
        full = False
        vfs = os.statvfs(self.mnt)
        if vfs.f_bfree < vfs.f_blocks * 0.3 or vfs.f_ffree < vfs.f_files * 0.2:
            full = True
        if self.old and rng.random() < (0.5 if full else 0.1):
            return "old", self.c_old
        if rng.random() < 0.3:
            ops = [("d_mkdir", 1), ("d_create", 4 if not full else 0)]
            if self.dfiles:
                ops += [("d_write", 3 if not full else 0), ("d_rename", 2), ("d_link", 1), ("d_unlink", 2 if not full else 6), ("d_truncate", 1)]
        else:
            ops = [("c_create", 4 if not full else 0), ("c_mkdir", 1), ("c_special", 1), ("c_fsync", 1), ("c_rmdir", 1)]
            if self.cfiles:
                ops += [("c_write", 3 if not full else 0), ("c_truncate", 2), ("c_rename", 3), ("c_link", 1)]
                ops += [("c_unlink", 2 if not full else 8)]
            elif self.cother:
                ops += [("c_unlink", 1)]
        names = [o for o, _ in ops]
        op = rng.choices(names, weights=[w for _, w in ops])[0]
        return op, getattr(self, op)

    def run(self, max_ops):
        self.setup()
        while self.n < max_ops:
            op, fn = self.step()
            self.mark(op)
            fn()


# ---- guest entry points ---------------------------------------------------------


def sh(*cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def dmesg_lines():
    return sh("dmesg")[1].splitlines()


def splats(lines):
    p = subprocess.run([SPLATS], input="\n".join(lines) + "\n", stdout=subprocess.PIPE, text=True)
    return p.stdout.splitlines() if p.returncode == 0 else []


def verify(dev, prevlog, mnt):
    return verify_recs(dev, read_log(prevlog)[2], mnt)


def verify_recs(dev, recs, mnt, skip=()):
    """Mounts dev (journal replay), checks the promises recs made and the
    whole tree but skip, unmounts, runs fsck.swapfs -n, looks for splats."""
    rep = {"dev": dev, "errors": []}
    errors = rep["errors"]
    t0 = time.time()
    m, pending = model_of(recs)
    rep["promises"] = len(recs)
    rep["pending"] = pending["op"] if pending else None
    mark = len(dmesg_lines())
    rc, out = sh("mount", "-t", "swapfs", dev, mnt)
    log = dmesg_lines()[mark:]
    rep["dmesg"] = [line for line in log if "swapfs" in line or "JBD2" in line][:20]
    rep["replayed"] = any("recovery complete" in line for line in log)
    if rc != 0:
        errors.append(f"mount failed: {out.strip()}")
    else:
        nfiles, nnames = check_promises(mnt, m, pending, errors)
        rep["promised"] = {"dirs": len(m.dirs), "files": nfiles, "names": nnames, "removed": len(m.gone)}
        rep["tree"] = walk(mnt, errors, skip)
        rc, out = sh("umount", mnt)
        if rc != 0:
            errors.append(f"umount failed: {out.strip()}")
    rc, out = sh(FSCK, "-n", dev)
    rep["fsck_rc"] = rc
    if rc != 0:
        errors.append(f"fsck.swapfs -n after replay: exit {rc}: " + " | ".join(out.splitlines()[:15]))
    s = splats(dmesg_lines()[mark:])
    if s:
        errors.append("kernel splat: " + " | ".join(s[:12]))
    rep["seconds"] = round(time.time() - t0, 1)
    del errors[30:]
    return rep


def cutter(logdev, cut_ms, progress, t0):
    """A child process: sleep, note the workload's progress, cut."""
    pid = os.fork()
    if pid:
        return pid
    try:
        log = LogDev(logdev)
        time.sleep(max(0, t0 + cut_ms / 1000 - time.time()))
        found = splats(dmesg_lines())[:12]
        n, op = struct.unpack("<Q24s", progress[0:32])
        rec = {"ms": round((time.time() - t0) * 1000), "ops": n, "op": op.rstrip(b"\0").decode(), "splats": found}
        log.put(CUT_OFF, rec)
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("b")
        time.sleep(60)
    finally:
        os._exit(1)


def guest(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="crash.py guest")
    ap.add_argument("--ko", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--verify", nargs=2, metavar=("DEV", "PREVLOG"))
    ap.add_argument("--run", nargs=3, metavar=("DEV", "SEED", "CUT_MS"))
    ap.add_argument("--max-ops", type=int, default=100000)
    a = ap.parse_args(argv)
    mnt = "/tmp/crash-mnt"
    os.makedirs(mnt, exist_ok=True)
    rc, out = sh("insmod", a.ko)
    if rc != 0:
        print(f"insmod failed: {out}")
        return 1
    logdev = LogDev(a.report)
    if a.verify:
        rep = verify(a.verify[0], a.verify[1], mnt)
        logdev.put(REPORT_OFF, rep, size=CUT_OFF)
        print("verify:", json.dumps(rep), flush=True)
    if not a.run:
        return 0
    dev, seed, cut_ms = a.run[0], int(a.run[1]), int(a.run[2])
    rc, out = sh("mount", "-t", "swapfs", dev, mnt)
    if rc != 0:
        print(f"mount {dev} failed: {out}")
        return 1
    progress = mmap.mmap(-1, 4096)  # shared with the cutter
    t0 = time.time()
    cutter(a.report, cut_ms, progress, t0)
    w = Workload(mnt, logdev, seed, progress)
    try:
        w.run(a.max_ops)
        print(f"workload finished {w.n} ops before the cut: {w.stats}", flush=True)
    except Exception as e:  # the cut record still comes
        logdev.put(ERROR_OFF, {"error": repr(e), "ops": w.n})
        print(f"workload failed after {w.n} ops: {e!r}", flush=True)
        raise
    time.sleep(3600)  # the cutter cuts the power
    return 0


def fsck_before(path):
    """What fsck.swapfs -n said on the host right after the cut, before
    replay (its output, then "exit N"). fsck checks the filesystem as the
    kernel's replay will leave it: "clean", "needs recovery, otherwise
    clean" (the log holds transactions), or the problems it found, which
    are a failure: the replayed state must be consistent."""
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    rc = int(lines[-1].split()[1]) if lines and lines[-1].startswith("exit ") else -1
    recovery = any(x.startswith("journal: needs recovery") for x in lines)
    if rc == 0:
        return "needs recovery, otherwise clean" if recovery else "clean"
    probs = [x for x in lines if ": " in x and not x.startswith(("swapfs:", "exit", "journal:"))]
    probs = [x for x in probs if not x.rstrip().endswith("(not corrected)")]
    return f"exit {rc}: {'needs recovery, ' if recovery else ''}{len(probs)} problems ({' | '.join(probs[:3])})"


def describe(cutlog, verifylog, fscklog):
    """One line on a cut: where the workload was, what verification found."""
    _, cut, recs = read_log(cutlog)
    rep = read_log(verifylog)[0]
    m, pending = model_of(recs)
    errors = []
    if not cut or "ms" not in cut:
        errors.append("the guest never cut the power (no cut record)")
        cut = dict(cut or {}, ms="?", ops="?", op="?")
    if cut.get("workload_error"):
        errors.append(f"workload error: {cut['workload_error']}")
    if cut.get("splats"):
        errors.append("kernel splat before the cut: " + " | ".join(cut["splats"]))
    if not rep:
        errors.append("no verification report")
        rep = {}
    errors += rep.get("errors", [])
    before = fsck_before(fscklog) if fscklog != "/dev/null" else "not run"
    if before.startswith("needs recovery") and not rep.get("replayed"):
        errors.append("the journal needed recovery but mount did not log a replay")
    if before.startswith("exit "):
        errors.append(f"fsck -n before replay (the state replay leaves): {before}")
    pr = rep.get("promised", {})
    tree = rep.get("tree", {})
    line = (
        f"cut at {cut['ms']} ms, op {cut['ops']} ({cut['op']}); "
        f"{len(recs)} promises ({'pending ' + pending['op'] if pending else 'none pending'}); "
        f"fsck before replay: {before}; "
        f"{'replayed' if rep.get('replayed') else 'no replay'}; "
        f"{len(m.dirs)} dirs, {pr.get('files', 0)} files, {pr.get('names', 0)} names promised and found; "
        f"tree {tree.get('files', 0)} files, {tree.get('bytes', 0) >> 10} KiB read; "
        f"fsck after: {'clean' if rep.get('fsck_rc') == 0 else rep.get('fsck_rc')}"
    )
    print(line)
    for e in errors:
        print(f"  {e}")
    return 1 if errors else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "guest":
        return guest(argv[2:])
    if len(argv) == 3 and argv[1] == "summary":
        report, cut, recs = read_log(argv[2])
        m, pending = model_of(recs)
        ops = {}
        for r in recs:
            if r["t"] == "done":
                ops[r["op"]] = ops.get(r["op"], 0) + 1
        print(
            json.dumps(
                {
                    "report": report,
                    "cut": cut,
                    "promises": len(recs),
                    "done": ops,
                    "last_n": recs[-1]["n"] if recs else 0,
                    "pending": pending["op"] if pending else None,
                    "files": len(m.files),
                    "dirs": len(m.dirs),
                }
            )
        )
        return 0
    if len(argv) == 5 and argv[1] == "describe":
        return describe(argv[2], argv[3], argv[4])
    if len(argv) == 5 and argv[1] == "selftest":  # the checker against itself, no cut
        d, logf, n = argv[2], argv[3], int(argv[4])
        open(logf, "wb").truncate(64 << 20)
        progress = mmap.mmap(-1, 4096)
        w = Workload(d, LogDev(logf), 1234, progress)
        w.run(n)
        print(w.stats)
        _, _, recs = read_log(logf)
        m, pending = model_of(recs)
        errors = []
        print(check_promises(d, m, pending, errors), walk(d, errors), errors[:10])
        return 1 if errors else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

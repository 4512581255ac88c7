#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A mixed random workload applied identically to two directory trees (the
filesystem under test and a reference on tmpfs), then compared byte for byte.

  workload.py run ROOT REF SEED OPS     apply OPS random operations to both
  workload.py compare ROOT REF          exit 1 and show the first difference

Operations: create, write at a random offset (sometimes past EOF, leaving a
hole), overwrite, append, truncate up and down, unlink, mkdir, rmdir,
rename (files and directories, across directories, over existing files),
hard link. Sizes stay small enough for a 2 GiB test disk.
"""
import os
import random
import sys


def tree(root):
    """Every path under root with its kind, size and contents."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            p = os.path.normpath(os.path.join(rel, d))
            out[p] = ("dir", os.lstat(os.path.join(dirpath, d)).st_nlink)
        for f in filenames:
            full = os.path.join(dirpath, f)
            st = os.lstat(full)
            with open(full, "rb") as fh:
                data = fh.read()
            out[os.path.normpath(os.path.join(rel, f))] = ("file", st.st_nlink, st.st_size, data)
    return out


def compare(root, ref):
    a, b = tree(root), tree(ref)
    for p in sorted(set(a) | set(b)):
        if p not in a:
            print(f"missing in {root}: {p}")
            return 1
        if p not in b:
            print(f"unexpected in {root}: {p}")
            return 1
        if a[p] != b[p]:
            x, y = a[p], b[p]
            if x[0] == "file" and y[0] == "file" and x[3] != y[3]:
                off = next((i for i, (u, v) in enumerate(zip(x[3], y[3])) if u != v), min(len(x[3]), len(y[3])))
                print(f"{p}: contents differ at byte {off} (sizes {x[2]} vs {y[2]})")
            else:
                print(f"{p}: {x[:3]} vs {y[:3]}")
            return 1
    print(f"{len(a)} entries identical")
    return 0


class Workload:
    def __init__(self, roots, seed):
        self.roots = roots
        self.rng = random.Random(seed)
        self.files = []
        self.dirs = [""]

    def both(self, fn):
        results = []
        for r in self.roots:
            try:
                fn(r)
                results.append(None)
            except OSError as e:
                results.append(e.errno)
        if results[0] != results[1]:
            raise SystemExit(f"outcomes differ: {results}")
        return results[0]

    def name(self):
        return f"n{self.rng.randrange(10**6)}"

    def step(self):
        rng = self.rng
        op = rng.choice(["create", "write", "write", "write", "append", "truncate", "unlink",
                         "mkdir", "rmdir", "rename", "rename", "link"])
        if op == "create" or not self.files:
            p = os.path.join(rng.choice(self.dirs), self.name())
            if self.both(lambda r: open(os.path.join(r, p), "xb").close()) is None:
                self.files.append(p)
        elif op == "write":
            p = rng.choice(self.files)
            off = rng.choice([0, rng.randrange(1 << 16), rng.randrange(1 << 22)])
            data = rng.randbytes(rng.choice([1, 100, 4096, 5000, 65536, 300000]))

            def w(r):
                fd = os.open(os.path.join(r, p), os.O_WRONLY)
                try:
                    os.pwrite(fd, data, off)
                finally:
                    os.close(fd)
            self.both(w)
        elif op == "append":
            p = rng.choice(self.files)
            data = rng.randbytes(rng.randrange(1, 20000))

            def a(r):
                with open(os.path.join(r, p), "ab") as fh:
                    fh.write(data)
            self.both(a)
        elif op == "truncate":
            p = rng.choice(self.files)
            size = rng.choice([0, rng.randrange(1 << 12), rng.randrange(1 << 20), rng.randrange(1 << 23)])
            self.both(lambda r: os.truncate(os.path.join(r, p), size))
        elif op == "unlink":
            p = rng.choice(self.files)
            if self.both(lambda r: os.unlink(os.path.join(r, p))) is None:
                self.files.remove(p)
        elif op == "mkdir":
            p = os.path.join(rng.choice(self.dirs), self.name())
            if self.both(lambda r: os.mkdir(os.path.join(r, p))) is None:
                self.dirs.append(p)
        elif op == "rmdir" and len(self.dirs) > 1:
            p = rng.choice(self.dirs[1:])
            if self.both(lambda r: os.rmdir(os.path.join(r, p))) is None:
                self.dirs.remove(p)
        elif op == "rename":
            if rng.random() < 0.8 or len(self.dirs) < 2:
                src = rng.choice(self.files)
                dst = os.path.join(rng.choice(self.dirs), rng.choice([self.name(), os.path.basename(rng.choice(self.files))]))
                if src == dst:
                    return
                if self.both(lambda r: os.rename(os.path.join(r, src), os.path.join(r, dst))) is None:
                    self.files = [f for f in self.files if f != dst and f != src] + [dst]
            else:
                src = rng.choice(self.dirs[1:])
                parent = rng.choice(self.dirs)
                if parent == src or parent.startswith(src + "/"):
                    return
                dst = os.path.join(parent, self.name())
                if self.both(lambda r: os.rename(os.path.join(r, src), os.path.join(r, dst))) is None:
                    pre = src + "/"
                    self.dirs = [dst + d[len(src):] if d == src or d.startswith(pre) else d for d in self.dirs]
                    self.files = [dst + f[len(src):] if f.startswith(pre) else f for f in self.files]
        elif op == "link":
            src = rng.choice(self.files)
            dst = os.path.join(rng.choice(self.dirs), self.name())
            if self.both(lambda r: os.link(os.path.join(r, src), os.path.join(r, dst))) is None:
                self.files.append(dst)


def main(argv):
    if argv[1] == "compare":
        return compare(argv[2], argv[3])
    if argv[1] == "run":
        w = Workload([argv[2], argv[3]], int(argv[4]))
        for _ in range(int(argv[5])):
            w.step()
        print(f"{len(w.files)} files, {len(w.dirs)} directories")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

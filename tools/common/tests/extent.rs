// SPDX-License-Identifier: GPL-2.0

//! Tests of the extent-tree code (`rust/common/extent.rs`): an in-memory
//! node store that counts what every operation touches, unit tests of each
//! case at every block size, worst cases for the journal credits, property
//! tests against a naive per-block model, and large trees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use proptest::prelude::*;
use swapfs_common::crc32c;
use swapfs_common::extent::{
    free_all, lookup, max_freed_blocks, max_touched_blocks, set_range, set_range_all, shift,
    shift_all, stats, visit, walk, Item, Mapping, NodeStore, NodeStoreMut, Shift, TreeError,
    TreeStats, MAX_REPLACED,
};
use swapfs_common::format::{
    encode_node_header, extent_flags, get_u16, get_u64, magic, max_lblk, put_u64, CrcFn, Extent,
    FormatError, Geometry, IndexEntry, LayoutParams, RootHeader, Superblock, ENTRY_SIZE,
    INODE_ROOT_SIZE, MAX_DEPTH, MAX_EXTENT_LEN, NODE_ENTRIES_OFFSET, NODE_HEADER_OFFSET,
    ROOT_ENTRIES, ROOT_HEADER_SIZE,
};

const OWNER: u64 = 12;
const SIZES: [u32; 3] = [10, 11, 12];
const UNWRITTEN: u32 = extent_flags::UNWRITTEN;

/// A cheap stand-in for CRC-32C for the big tests (the checksum function
/// is a parameter of the geometry; the tree code only seals and checks).
fn fast_crc(seed: u32, data: &[u8]) -> u32 {
    let mut h = u64::from(seed) ^ 0x9e37_79b9_7f4a_7c15;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 29)) as u32
}

/// A geometry with a data region large enough for extents of
/// `MAX_EXTENT_LEN` blocks.
fn geometry(log2: u32, crc: CrcFn) -> Geometry {
    let block_count = 1u64 << 33;
    let mut sb = Superblock::layout(LayoutParams {
        block_size_log2: log2,
        block_count,
        inode_count: 1024,
        journal_blocks: 1024,
    })
    .unwrap();
    sb.uuid = [0x5a; 16];
    sb.geometry(block_count, crc).unwrap()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum E {
    Format(FormatError),
    Tree(TreeError),
    Store(&'static str),
    Callback,
}

impl From<FormatError> for E {
    fn from(e: FormatError) -> E {
        E::Format(e)
    }
}

impl From<TreeError> for E {
    fn from(e: TreeError) -> E {
        E::Tree(e)
    }
}

/// Node blocks in memory. Counts reads, modifications, allocations and
/// frees, and remembers the distinct blocks modified or allocated (and the
/// frees) since the last `reset`. Freed blocks are reused first, so a stale
/// reference shows.
struct MemStore {
    geo: Geometry,
    blocks: HashMap<u64, Vec<u8>>,
    next: u64,
    free_list: Vec<u64>,
    allocs: u64,
    frees: u64,
    modifies: u64,
    touched: HashSet<u64>,
    freed_now: u32,
    /// Fail allocations once `allocs` reaches this.
    alloc_limit: Option<u64>,
    reads: u64,
    /// If set, the blocks whose check passed (as the kernel's buffer flag):
    /// their checksum is not verified again until they are dropped from it.
    verified: Option<HashSet<u64>>,
    /// Checksums verified by node checks.
    crc_checks: u64,
}

impl MemStore {
    fn new(geo: Geometry) -> MemStore {
        MemStore {
            next: geo.data_start + 7,
            geo,
            blocks: HashMap::new(),
            free_list: Vec::new(),
            allocs: 0,
            frees: 0,
            modifies: 0,
            touched: HashSet::new(),
            freed_now: 0,
            alloc_limit: None,
            reads: 0,
            verified: None,
            crc_checks: 0,
        }
    }

    fn reset(&mut self) {
        self.touched.clear();
        self.freed_now = 0;
    }

    fn live(&self) -> u64 {
        self.allocs - self.frees
    }
}

impl NodeStore for MemStore {
    type Error = E;

    fn geometry(&self) -> &Geometry {
        &self.geo
    }

    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, E> {
        self.reads += 1;
        let b = self
            .blocks
            .get(&blk)
            .ok_or(E::Store("read of a block that is not a live node"))?;
        Ok(f(b))
    }

    fn read_checked<R, F>(
        &mut self,
        blk: u64,
        f: impl FnOnce(&[u8], bool) -> Result<R, F>,
    ) -> Result<Result<R, F>, E> {
        let crc = !self.verified.as_ref().is_some_and(|v| v.contains(&blk));
        self.crc_checks += u64::from(crc);
        let r = self.read(blk, |b| f(b, crc))?;
        if let (Ok(_), Some(v)) = (&r, &mut self.verified) {
            v.insert(blk);
        }
        Ok(r)
    }
}

impl NodeStoreMut for MemStore {
    fn modify<R>(&mut self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, E> {
        let b = self
            .blocks
            .get_mut(&blk)
            .ok_or(E::Store("modify of a block that is not a live node"))?;
        self.modifies += 1;
        self.touched.insert(blk);
        Ok(f(b))
    }

    fn alloc(&mut self, _goal: u64) -> Result<u64, E> {
        if self.alloc_limit.is_some_and(|l| self.allocs >= l) {
            return Err(E::Store("no space"));
        }
        let blk = self.free_list.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.blocks.insert(blk, vec![0; self.geo.block_size()]);
        self.allocs += 1;
        self.touched.insert(blk);
        Ok(blk)
    }

    fn free(&mut self, blk: u64) -> Result<(), E> {
        self.blocks
            .remove(&blk)
            .ok_or(E::Store("free of a block that is not a live node"))?;
        self.frees += 1;
        self.freed_now += 1;
        self.free_list.push(blk);
        Ok(())
    }
}

fn empty_root() -> [u8; INODE_ROOT_SIZE] {
    let mut r = [0u8; INODE_ROOT_SIZE];
    RootHeader::empty().encode(&mut r);
    r
}

fn depth_of(root: &[u8; INODE_ROOT_SIZE]) -> u16 {
    RootHeader::decode(root).unwrap().depth
}

fn x(lblk: u64, pblk: u64, len: u32, flags: u32) -> Extent {
    Extent {
        lblk,
        pblk,
        len,
        flags,
    }
}

/// What `walk` sees: extents, node blocks, and the extents grouped by leaf.
#[derive(Debug, Default)]
struct Seen {
    extents: Vec<Extent>,
    nodes: Vec<u64>,
    leaves: Vec<Vec<Extent>>,
}

fn seen(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE]) -> Seen {
    let mut s = Seen::default();
    walk(st, root, OWNER, |item| {
        match item {
            Item::Node(n) => {
                if let Some(b) = n.blk {
                    s.nodes.push(b);
                }
                if n.depth == 0 {
                    s.leaves.push(Vec::new());
                }
            }
            Item::Extent(e) => {
                s.extents.push(e);
                s.leaves.last_mut().unwrap().push(e);
            }
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("walk failed: {e:?}"));
    s
}

/// Checks every invariant of a tree that does not depend on a model, and
/// returns what it holds: `walk` succeeds, every node block is reachable
/// once, the live blocks of the store are exactly the nodes, `stats` agrees.
fn check_tree(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE]) -> Seen {
    let s = seen(st, root);
    let set: HashSet<u64> = s.nodes.iter().copied().collect();
    assert_eq!(set.len(), s.nodes.len(), "a node is reachable twice");
    let live: HashSet<u64> = st.blocks.keys().copied().collect();
    assert_eq!(set, live, "live blocks are not the tree's nodes");
    assert_eq!(st.live(), s.nodes.len() as u64);
    let stt = stats(st, root, OWNER).unwrap();
    assert_eq!(
        stt,
        TreeStats {
            depth: depth_of(root),
            node_blocks: s.nodes.len() as u64,
            extents: s.extents.len() as u64,
            mapped_blocks: s.extents.iter().map(|e| u64::from(e.len)).sum(),
            unwritten_blocks: s
                .extents
                .iter()
                .filter(|e| e.is_unwritten())
                .map(|e| u64::from(e.len))
                .sum(),
        }
    );
    if s.extents.is_empty() {
        assert_eq!(depth_of(root), 0, "an empty tree is an empty leaf root");
    }
    s
}

/// Index keys equal the first logical block of their subtrees (the trees
/// this code builds from scratch keep them exact).
fn check_exact_keys(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE]) {
    fn first_of(st: &mut MemStore, blk: u64, depth: u16) -> u64 {
        let (n, entries) = st
            .read(blk, |b| {
                let n = usize::from(get_u16(b, NODE_HEADER_OFFSET));
                let e: Vec<(u64, u64)> = (0..n)
                    .map(|i| {
                        let off = NODE_ENTRIES_OFFSET + i * ENTRY_SIZE;
                        (get_u64(b, off), get_u64(b, off + 8))
                    })
                    .collect();
                (n, e)
            })
            .unwrap();
        assert!(n > 0);
        if depth > 0 {
            for &(key, child) in &entries {
                assert_eq!(key, first_of(st, child, depth - 1), "inexact index key");
            }
        }
        entries[0].0
    }
    let rh = RootHeader::decode(root).unwrap();
    if rh.depth == 0 {
        return;
    }
    for i in 0..usize::from(rh.entries) {
        let off = ROOT_HEADER_SIZE + i * ENTRY_SIZE;
        let (key, child) = (get_u64(root, off), get_u64(root, off + 8));
        assert_eq!(key, first_of(st, child, rh.depth - 1), "inexact root key");
    }
}

/// No two neighbours in one leaf could be one extent.
fn check_merged(s: &Seen) {
    for leaf in &s.leaves {
        for w in leaf.windows(2) {
            let (a, b) = (w[0], w[1]);
            let mergeable = a.lend() == b.lblk
                && a.pblk + u64::from(a.len) == b.pblk
                && a.flags == b.flags
                && u64::from(a.len) + u64::from(b.len) <= u64::from(MAX_EXTENT_LEN);
            assert!(!mergeable, "unmerged neighbours {a:?} {b:?}");
        }
    }
}

/// A per-block model: logical block -> (physical block, flags).
type Model = BTreeMap<u64, (u64, u32)>;

fn expand(extents: &[Extent]) -> Model {
    let mut m = Model::new();
    for e in extents {
        for i in 0..u64::from(e.len) {
            assert!(m.insert(e.lblk + i, (e.pblk + i, e.flags)).is_none());
        }
    }
    m
}

fn model_set(m: &mut Model, lblk: u64, len: u64, map: Option<(u64, u32)>) -> Model {
    let old: Model = m.range(lblk..lblk + len).map(|(&k, &v)| (k, v)).collect();
    for k in old.keys() {
        m.remove(k);
    }
    if let Some((p, f)) = map {
        for i in 0..len {
            m.insert(lblk + i, (p + i, f));
        }
    }
    old
}

/// `lookup` at `l` agrees with the model, hole ends included.
fn check_lookup(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE], m: &Model, l: u64) {
    let got = lookup(st, root, OWNER, l).unwrap();
    match (got, m.get(&l)) {
        (Mapping::Mapped(e), Some(&(p, f))) => {
            assert!(e.lblk <= l && l < e.lend(), "lookup {l}: {e:?}");
            assert_eq!((e.pblk + (l - e.lblk), e.flags), (p, f), "lookup {l}");
        }
        (Mapping::Hole { end }, None) => {
            let next = m.range(l..).next().map_or(u64::MAX, |(&k, _)| k);
            assert_eq!(end, next, "hole end at {l}");
        }
        (got, want) => panic!("lookup {l}: got {got:?}, model {want:?}"),
    }
}

/// Everything: tree invariants, the map equals the model, lookups agree at
/// every extent boundary and at `extra` blocks.
fn check_all(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE], m: &Model, extra: &[u64]) -> Seen {
    let s = check_tree(st, root);
    assert!(expand(&s.extents) == *m, "tree map differs from the model");
    // Probe the boundaries of the extents near the `extra` blocks (where
    // the last operation worked) and of a sample of the others.
    let xs = &s.extents;
    let mut near: Vec<usize> = (0..xs.len()).step_by(xs.len() / 24 + 1).collect();
    for &p in extra {
        let i = xs.partition_point(|e| e.lend() <= p);
        near.extend(i.saturating_sub(3)..(i + 3).min(xs.len()));
    }
    let mut probes: Vec<u64> = extra.to_vec();
    for i in near {
        let e = xs[i];
        probes.extend([e.lblk.saturating_sub(1), e.lblk, e.lend() - 1, e.lend()]);
    }
    probes.extend([0, 1, u64::MAX / 2]);
    for l in probes {
        check_lookup(st, root, m, l);
    }
    s
}

/// Calls `set_range` once, checking the credits and the reported pieces
/// against the model (updated for the handled prefix). Returns `done`.
fn step_set(
    st: &mut MemStore,
    root: &mut [u8; INODE_ROOT_SIZE],
    m: &mut Model,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
) -> Result<u64, E> {
    let depth = depth_of(root);
    let allocs = st.allocs;
    st.reset();
    let mut pieces = Vec::new();
    let done = set_range(st, root, OWNER, lblk, len, map, |p| {
        pieces.push(p);
        Ok(())
    })?;
    assert!(done >= 1 && done <= len, "done {done} of {len}");
    assert!(
        st.touched.len() as u32 <= max_touched_blocks(depth),
        "touched {} > {} at depth {depth}",
        st.touched.len(),
        max_touched_blocks(depth)
    );
    assert!(st.freed_now <= max_freed_blocks(depth));
    assert!(st.allocs - allocs <= u64::from(depth) + 1);
    assert!(pieces.len() <= MAX_REPLACED);
    for w in pieces.windows(2) {
        assert!(w[0].lend() <= w[1].lblk, "pieces out of order");
    }
    for p in &pieces {
        assert!(p.len > 0 && p.lblk >= lblk && p.lend() <= lblk + done);
    }
    let old = model_set(m, lblk, done, map);
    assert!(
        expand(&pieces) == old,
        "pieces {pieces:?} != replaced {old:?}"
    );
    Ok(done)
}

/// `set_range` until done, checking everything after every call.
fn set_checked(
    st: &mut MemStore,
    root: &mut [u8; INODE_ROOT_SIZE],
    m: &mut Model,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
) {
    let mut done = 0;
    while done < len {
        let mm = map.map(|(p, f)| (p + done, f));
        done += step_set(st, root, m, lblk + done, len - done, mm).unwrap();
        check_all(st, root, m, &[lblk, lblk + done]);
        check_exact_keys(st, root);
    }
}

fn extents_of(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE]) -> Vec<Extent> {
    seen(st, root).extents
}

// ---------------------------------------------------------------------------
// A builder of trees node by node, for worst cases and for trees whose
// index keys are mere lower bounds (which the format allows).

struct Builder<'a> {
    st: &'a mut MemStore,
    next_lblk: u64,
    next_pblk: u64,
    /// Logical blocks left free between extents.
    gap: u64,
    /// Index keys are this much (times the child's depth + 1) below the
    /// subtree's first block.
    slack: u64,
}

impl Builder<'_> {
    fn extent(&mut self) -> Extent {
        let e = x(self.next_lblk, self.next_pblk, 1, 0);
        self.next_lblk += 1 + self.gap;
        self.next_pblk += 2;
        e
    }

    fn write_node(&mut self, depth: u16, entries: &[[u8; ENTRY_SIZE]]) -> u64 {
        let cap = self.st.geo.node_capacity();
        let geo = self.st.geo;
        let blk = self.st.alloc(0).unwrap();
        self.st
            .modify(blk, |b| {
                let h = RootHeader {
                    entries: entries.len() as u16,
                    max: cap as u16,
                    depth,
                };
                encode_node_header(b, &h, OWNER);
                for (i, r) in entries.iter().enumerate() {
                    let off = NODE_ENTRIES_OFFSET + i * ENTRY_SIZE;
                    b[off..off + ENTRY_SIZE].copy_from_slice(r);
                }
                geo.seal_block(b, magic::EXTENT, blk);
            })
            .unwrap();
        blk
    }

    /// A subtree of depth `d`: full (every node on its rightmost path holds
    /// `cap` entries) or minimal (one entry per node). Returns its index
    /// entry and its first logical block.
    fn subtree(&mut self, d: u16, full: bool) -> (IndexEntry, u64) {
        let n = if full { self.st.geo.node_capacity() } else { 1 };
        let mut raws = Vec::new();
        let mut first = None;
        for i in 0..n {
            let mut r = [0u8; ENTRY_SIZE];
            if d == 0 {
                let e = self.extent();
                first.get_or_insert(e.lblk);
                e.encode(&mut r);
            } else {
                let (c, f) = self.subtree(d - 1, full && i == n - 1);
                first.get_or_insert(f);
                c.encode(&mut r);
            }
            raws.push(r);
        }
        let blk = self.write_node(d, &raws);
        let first = first.unwrap();
        // Keys below the first block, but above the previous extent.
        let slack = (self.slack * (u64::from(d) + 1)).min(self.gap);
        (
            IndexEntry {
                lblk: first - slack,
                child: blk,
            },
            first,
        )
    }

    /// A root of depth `depth` with `n` entries; the last subtree is full
    /// if `full`.
    fn root(&mut self, depth: u16, n: usize, full: bool) -> [u8; INODE_ROOT_SIZE] {
        let mut root = [0u8; INODE_ROOT_SIZE];
        RootHeader {
            entries: n as u16,
            max: ROOT_ENTRIES as u16,
            depth,
        }
        .encode(&mut root);
        for i in 0..n {
            let off = ROOT_HEADER_SIZE + i * ENTRY_SIZE;
            if depth == 0 {
                let e = self.extent();
                e.encode(&mut root[off..off + ENTRY_SIZE]);
            } else {
                let (c, _) = self.subtree(depth - 1, full && i == n - 1);
                c.encode(&mut root[off..off + ENTRY_SIZE]);
            }
        }
        root
    }
}

fn builder(st: &mut MemStore, gap: u64, slack: u64) -> Builder<'_> {
    let base = st.geo.data_start + 1_000_000;
    Builder {
        st,
        next_lblk: 1000,
        next_pblk: base,
        gap,
        slack,
    }
}

// ---------------------------------------------------------------------------
// Unit tests, at every block size.

#[test]
fn empty_tree() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let mut root = empty_root();
        assert_eq!(
            lookup(&mut st, &root, OWNER, 0).unwrap(),
            Mapping::Hole { end: u64::MAX }
        );
        let mut m = Model::new();
        // Punching nothing changes nothing and reports nothing.
        set_checked(&mut st, &mut root, &mut m, 5, 100, None);
        assert_eq!(st.modifies + st.allocs, 0);
        assert_eq!(root, empty_root());
        assert_eq!(stats(&mut st, &root, OWNER).unwrap(), TreeStats::default());
    }
}

#[test]
fn map_merge_and_lookup() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 5000;
        let mut root = empty_root();
        let mut m = Model::new();
        // Appending contiguous blocks grows one extent.
        for i in 0..10 {
            set_checked(&mut st, &mut root, &mut m, 100 + i, 1, Some((base + i, 0)));
        }
        assert_eq!(extents_of(&mut st, &root), [x(100, base, 10, 0)]);
        // Prepending too.
        set_checked(&mut st, &mut root, &mut m, 98, 2, Some((base - 2, 0)));
        assert_eq!(extents_of(&mut st, &root), [x(98, base - 2, 12, 0)]);
        // Different flags or a physical gap do not merge.
        set_checked(
            &mut st,
            &mut root,
            &mut m,
            110,
            3,
            Some((base + 12, UNWRITTEN)),
        );
        set_checked(
            &mut st,
            &mut root,
            &mut m,
            113,
            1,
            Some((base + 16, UNWRITTEN)),
        );
        assert_eq!(
            extents_of(&mut st, &root),
            [
                x(98, base - 2, 12, 0),
                x(110, base + 12, 3, UNWRITTEN),
                x(113, base + 16, 1, UNWRITTEN)
            ]
        );
        // Filling a hole between two extents merges all three.
        let mut root = empty_root();
        let mut m = Model::new();
        set_checked(&mut st, &mut root, &mut m, 0, 4, Some((base, 0)));
        set_checked(&mut st, &mut root, &mut m, 8, 4, Some((base + 8, 0)));
        set_checked(&mut st, &mut root, &mut m, 4, 4, Some((base + 4, 0)));
        assert_eq!(extents_of(&mut st, &root), [x(0, base, 12, 0)]);
        assert_eq!(
            lookup(&mut st, &root, OWNER, 11).unwrap(),
            Mapping::Mapped(x(0, base, 12, 0))
        );
        assert_eq!(
            lookup(&mut st, &root, OWNER, 12).unwrap(),
            Mapping::Hole { end: u64::MAX }
        );
    }
}

#[test]
fn punch_middle_and_overwrite() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 5000;
        let mut root = empty_root();
        let mut m = Model::new();
        set_checked(&mut st, &mut root, &mut m, 0, 100, Some((base, 0)));
        // Punching the middle of an extent leaves two.
        let mut pieces = Vec::new();
        set_range_all(&mut st, &mut root, OWNER, 40, 10, None, |p| {
            pieces.push(p);
            Ok(())
        })
        .unwrap();
        model_set(&mut m, 40, 10, None);
        assert_eq!(pieces, [x(40, base + 40, 10, 0)]);
        assert_eq!(
            extents_of(&mut st, &root),
            [x(0, base, 40, 0), x(50, base + 50, 50, 0)]
        );
        check_all(&mut st, &root, &m, &[]);
        // Overwriting across the hole reports both clipped pieces.
        let mut pieces = Vec::new();
        set_range_all(
            &mut st,
            &mut root,
            OWNER,
            30,
            30,
            Some((base + 1000, 0)),
            |p| {
                pieces.push(p);
                Ok(())
            },
        )
        .unwrap();
        model_set(&mut m, 30, 30, Some((base + 1000, 0)));
        assert_eq!(pieces, [x(30, base + 30, 10, 0), x(50, base + 50, 10, 0)]);
        assert_eq!(
            extents_of(&mut st, &root),
            [
                x(0, base, 30, 0),
                x(30, base + 1000, 30, 0),
                x(60, base + 60, 40, 0)
            ]
        );
        check_all(&mut st, &root, &m, &[]);
        // Punching everything frees the tree.
        set_checked(&mut st, &mut root, &mut m, 0, 1000, None);
        assert_eq!(root, empty_root());
    }
}

#[test]
fn unwritten_conversion_reports_the_same_blocks() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 5000;
        let mut root = empty_root();
        let mut m = Model::new();
        set_checked(&mut st, &mut root, &mut m, 0, 10, Some((base, 0)));
        set_checked(
            &mut st,
            &mut root,
            &mut m,
            10,
            20,
            Some((base + 10, UNWRITTEN)),
        );
        set_checked(&mut st, &mut root, &mut m, 30, 10, Some((base + 30, 0)));
        assert_eq!(extents_of(&mut st, &root).len(), 3);
        // Writing the middle of the unwritten extent: the piece is the
        // same blocks (the caller recognises it by pblk).
        let (lblk, pblk) = (15, base + 15);
        let mut pieces = Vec::new();
        set_range(&mut st, &mut root, OWNER, lblk, 5, Some((pblk, 0)), |p| {
            pieces.push(p);
            Ok(())
        })
        .unwrap();
        model_set(&mut m, lblk, 5, Some((pblk, 0)));
        assert_eq!(pieces, [x(15, base + 15, 5, UNWRITTEN)]);
        assert!(pieces
            .iter()
            .all(|p| p.pblk == pblk + (p.lblk - lblk) && p.is_unwritten()));
        check_all(&mut st, &root, &m, &[]);
        // Converting the rest merges everything back into one extent.
        set_checked(&mut st, &mut root, &mut m, 10, 5, Some((base + 10, 0)));
        set_checked(&mut st, &mut root, &mut m, 20, 10, Some((base + 20, 0)));
        assert_eq!(extents_of(&mut st, &root), [x(0, base, 40, 0)]);
        // Setting an unchanged mapping reports it and changes nothing.
        st.reset();
        let before = st.modifies;
        let mut pieces = Vec::new();
        set_range(&mut st, &mut root, OWNER, 5, 10, Some((base + 5, 0)), |p| {
            pieces.push(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, [x(5, base + 5, 10, 0)]);
        assert_eq!(st.modifies, before);
    }
}

#[test]
fn long_mappings_respect_max_extent_len() {
    let mut st = MemStore::new(geometry(12, crc32c::update));
    let base = st.geo.data_start + 5000;
    let mut root = empty_root();
    let max = u64::from(MAX_EXTENT_LEN);
    let len = 2 * max + 10;
    set_range_all(&mut st, &mut root, OWNER, 7, len, Some((base, 0)), |_| {
        Ok(())
    })
    .unwrap();
    let xs = extents_of(&mut st, &root);
    assert_eq!(
        xs,
        [
            x(7, base, MAX_EXTENT_LEN, 0),
            x(7 + max, base + max, MAX_EXTENT_LEN, 0),
            x(7 + 2 * max, base + 2 * max, 10, 0)
        ]
    );
    // A neighbour that would overflow the length stays separate.
    set_range_all(&mut st, &mut root, OWNER, 6, 1, Some((base - 1, 0)), |_| {
        Ok(())
    })
    .unwrap();
    assert_eq!(extents_of(&mut st, &root).len(), 4);
    // Punch one block in the middle of the first: reported exactly.
    let mut pieces = Vec::new();
    set_range_all(&mut st, &mut root, OWNER, 1000, 1, None, |p| {
        pieces.push(p);
        Ok(())
    })
    .unwrap();
    assert_eq!(pieces, [x(1000, base + 993, 1, 0)]);
    check_tree(&mut st, &root);
}

#[test]
fn splits_growth_and_shrink_to_empty() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let base = st.geo.data_start + 100_000;
        let cap = st.geo.node_capacity() as u64;
        let mut root = empty_root();
        let mut m = Model::new();
        // Non-contiguous one-block extents in a scrambled order, until the
        // tree has depth 2.
        // (Everything is checked every few steps: the checks are linear.)
        let n = ROOT_ENTRIES as u64 * cap + 50;
        for k in 0..n {
            let i = (k * 7919) % n;
            step_set(
                &mut st,
                &mut root,
                &mut m,
                2 * i,
                1,
                Some((base + 3 * i, 0)),
            )
            .unwrap();
            if k % 8 == 0 {
                check_all(&mut st, &root, &m, &[2 * i]);
                check_exact_keys(&mut st, &root);
            }
        }
        check_all(&mut st, &root, &m, &[]);
        assert_eq!(depth_of(&root), 2, "log2 {log2}");
        // Remove them in another order; nodes go as they empty.
        for k in 0..n {
            let i = (k * 104_729) % n;
            step_set(&mut st, &mut root, &mut m, 2 * i, 1, None).unwrap();
            if k % 8 == 0 {
                check_all(&mut st, &root, &m, &[2 * i]);
                check_exact_keys(&mut st, &root);
            }
        }
        assert_eq!(root, empty_root());
        assert_eq!(st.live(), 0);
    }
}

#[test]
fn appending_keeps_nodes_full() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let base = st.geo.data_start + 100_000;
        let cap = st.geo.node_capacity();
        let mut root = empty_root();
        let n = (ROOT_ENTRIES * cap * cap / 2) as u64;
        for i in 0..n {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                i,
                1,
                Some((base + 2 * i, 0)),
                |_| Ok(()),
            )
            .unwrap();
        }
        let s = check_tree(&mut st, &root);
        check_exact_keys(&mut st, &root);
        assert_eq!(depth_of(&root), 2);
        // Every leaf but the last holds cap - 1 extents or more.
        for leaf in &s.leaves[..s.leaves.len() - 1] {
            assert!(
                leaf.len() >= cap - 1,
                "leaf of {} at log2 {log2}",
                leaf.len()
            );
        }
    }
}

#[test]
fn inserting_before_the_first_key_lowers_it() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 100_000;
        let cap = st.geo.node_capacity() as u64;
        let mut root = empty_root();
        let mut m = Model::new();
        for i in 0..2 * cap {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                1000 + 2 * i,
                1,
                Some((base + 2 * i, 0)),
                |_| Ok(()),
            )
            .unwrap();
            model_set(&mut m, 1000 + 2 * i, 1, Some((base + 2 * i, 0)));
        }
        assert_eq!(depth_of(&root), 1);
        set_checked(&mut st, &mut root, &mut m, 3, 1, Some((base - 100, 0)));
        set_checked(
            &mut st,
            &mut root,
            &mut m,
            0,
            1,
            Some((base - 200, UNWRITTEN)),
        );
        // Removing the first extent raises the key again.
        set_checked(&mut st, &mut root, &mut m, 0, 1, None);
        set_checked(&mut st, &mut root, &mut m, 0, 999, None);
        assert_eq!(get_u64(&root, ROOT_HEADER_SIZE), 1000);
    }
}

/// Worst cases of `max_touched_blocks`: every node on the path full, at
/// every depth, at every block size: the bound is reached exactly.
#[test]
fn credits_worst_case_is_tight() {
    for log2 in SIZES {
        for depth in 0..=MAX_DEPTH {
            let mut st = MemStore::new(geometry(log2, fast_crc));
            let mut b = builder(&mut st, 0, 0);
            let mut root = b.root(depth, ROOT_ENTRIES, true);
            let (next_lblk, next_pblk) = (b.next_lblk, b.next_pblk);
            let mut m = expand(&check_tree(&mut st, &root).extents);
            check_exact_keys(&mut st, &root);
            // Append a block that does not continue the last extent.
            let r = step_set(
                &mut st,
                &mut root,
                &mut m,
                next_lblk,
                1,
                Some((next_pblk, 0)),
            );
            if depth == MAX_DEPTH {
                assert_eq!(r, Err(E::Tree(TreeError::TooDeep)));
                assert!(st.touched.is_empty());
                check_all(&mut st, &root, &m, &[next_lblk]);
                continue;
            }
            r.unwrap();
            assert_eq!(
                st.touched.len() as u32,
                max_touched_blocks(depth),
                "log2 {log2} depth {depth}"
            );
            assert_eq!(st.allocs - st.frees, st.live());
            assert_eq!(depth_of(&root), depth + 1);
            check_all(&mut st, &root, &m, &[next_lblk]);
            check_exact_keys(&mut st, &root);
        }
    }
}

/// A middle insertion into full nodes (not at the right edge), and the
/// maximum depth with room in the root.
#[test]
fn credits_worst_case_middle_and_max_depth() {
    for log2 in SIZES {
        for depth in 1..=MAX_DEPTH {
            let mut st = MemStore::new(geometry(log2, fast_crc));
            // Extents two blocks long with gaps, so that punching one block
            // splits one.
            let mut b = builder(&mut st, 3, 0);
            let entries = if depth == MAX_DEPTH {
                ROOT_ENTRIES - 1
            } else {
                ROOT_ENTRIES
            };
            let mut root = b.root(depth, entries, true);
            let mut m = expand(&check_tree(&mut st, &root).extents);
            // A new extent in a gap in the middle of the last (full) leaf,
            // not at its end: a middle split, up the whole path.
            let s = seen(&mut st, &root);
            let leaf = s.leaves.last().unwrap();
            assert_eq!(leaf.len(), st.geo.node_capacity());
            let mid = leaf[leaf.len() / 3];
            step_set(
                &mut st,
                &mut root,
                &mut m,
                mid.lend(),
                1,
                Some((1 << 30, 0)),
            )
            .unwrap();
            let want = if depth == MAX_DEPTH {
                2 * u32::from(depth)
            } else {
                2 * u32::from(depth) + 1
            };
            assert_eq!(want, max_touched_blocks(depth));
            assert_eq!(st.touched.len() as u32, want, "log2 {log2} depth {depth}");
            check_all(&mut st, &root, &m, &[]);
        }
    }
}

/// Trees whose index keys are lower bounds below their subtrees' first
/// blocks (valid, though this code never writes them): lookups give exact
/// hole ends and every operation keeps them valid.
#[test]
fn lower_bound_keys() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let mut b = builder(&mut st, 20, 3);
        let mut root = b.root(2, 3, true);
        let mut m = expand(&check_tree(&mut st, &root).extents);
        let keys: Vec<u64> = m.keys().copied().collect();
        for &k in &keys {
            for l in k.saturating_sub(25)..k + 2 {
                check_lookup(&mut st, &root, &m, l);
            }
        }
        // Map into the slack before a key, punch first extents of leaves,
        // shift both ways.
        let s = seen(&mut st, &root);
        let firsts: Vec<u64> = s.leaves.iter().map(|l| l[0].lblk).collect();
        for (i, &f) in firsts.iter().enumerate().take(10) {
            if i % 2 == 0 {
                set_checked_fast(
                    &mut st,
                    &mut root,
                    &mut m,
                    f - 2,
                    1,
                    Some((1 << 30, 0)),
                    false,
                );
            } else {
                set_checked_fast(&mut st, &mut root, &mut m, f, 1, None, false);
            }
        }
        let from = firsts[3] - 1;
        shift_checked(&mut st, &mut root, &mut m, from, 50, true);
        set_checked_fast(&mut st, &mut root, &mut m, from - 10, 60, None, false);
        shift_checked(&mut st, &mut root, &mut m, from + 50, 60, false);
        let all = m.keys().copied().collect::<Vec<_>>();
        for l in all {
            check_lookup(&mut st, &root, &m, l);
        }
    }
}

fn model_shift(m: &mut Model, sh_from: u64, delta: u64, right: bool) {
    let moved: Model = m.range(sh_from..).map(|(&k, &v)| (k, v)).collect();
    for k in moved.keys() {
        m.remove(k);
    }
    for (k, v) in moved {
        let nk = if right { k + delta } else { k - delta };
        assert!(m.insert(nk, v).is_none());
    }
}

/// Runs a shift to the end, checking the tree and the credits after every
/// step and the model at the end.
fn shift_checked(
    st: &mut MemStore,
    root: &mut [u8; INODE_ROOT_SIZE],
    m: &mut Model,
    from: u64,
    delta: u64,
    right: bool,
) {
    let mut sh = if right {
        Shift::right(from, delta)
    } else {
        Shift::left(from, delta)
    };
    let mut steps = 0;
    loop {
        let depth = depth_of(root);
        st.reset();
        let done = shift(st, root, OWNER, &mut sh).unwrap();
        assert!(st.touched.len() as u32 <= max_touched_blocks(depth));
        assert!(st.freed_now <= max_freed_blocks(depth));
        check_tree(st, root);
        steps += 1;
        assert!(steps < 100_000);
        if done {
            break;
        }
    }
    assert!(sh.is_done());
    model_shift(m, from, delta, right);
    check_all(
        st,
        root,
        m,
        &[from, from + delta, from.saturating_sub(delta)],
    );
}

#[test]
fn shift_collapse_and_insert() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 100_000;
        let cap = st.geo.node_capacity() as u64;
        let mut root = empty_root();
        let mut m = Model::new();
        for i in 0..3 * cap {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                3 * i,
                2,
                Some((base + 5 * i, 0)),
                |_| Ok(()),
            )
            .unwrap();
            model_set(&mut m, 3 * i, 2, Some((base + 5 * i, 0)));
        }
        check_all(&mut st, &root, &m, &[]);
        // Insert in the middle of an extent: it splits first.
        let before = extents_of(&mut st, &root).len();
        let from = 3 * cap + 1;
        shift_checked(&mut st, &mut root, &mut m, from, 1000, true);
        check_exact_keys(&mut st, &root);
        assert_eq!(extents_of(&mut st, &root).len(), before + 1);
        // Collapse it again (the hole is exactly [from, from + 1000)): the
        // two halves merge back.
        let before = extents_of(&mut st, &root).len();
        shift_checked(&mut st, &mut root, &mut m, from + 1000, 1000, false);
        check_exact_keys(&mut st, &root);
        assert_eq!(extents_of(&mut st, &root).len(), before - 1);
        check_merged(&seen(&mut st, &root));
        // Collapse from before the first extent: keys go down everywhere.
        set_checked(&mut st, &mut root, &mut m, 0, 2, None);
        shift_checked(&mut st, &mut root, &mut m, 3, 3, false);
        check_exact_keys(&mut st, &root);
        // Collapsing onto mapped blocks is refused and changes nothing.
        let snapshot = extents_of(&mut st, &root);
        let mut sh = Shift::left(10, 5);
        assert!(matches!(
            shift(&mut st, &mut root, OWNER, &mut sh),
            Err(E::Tree(TreeError::NotAHole { .. }))
        ));
        assert_eq!(extents_of(&mut st, &root), snapshot);
        let mut sh = Shift::left(3, 5);
        assert!(matches!(
            shift(&mut st, &mut root, OWNER, &mut sh),
            Err(E::Tree(TreeError::OutOfRange { .. }))
        ));
        // Inserting past the largest file is refused.
        let max = max_lblk(&st.geo);
        let mut sh = Shift::right(0, max);
        assert!(matches!(
            shift(&mut st, &mut root, OWNER, &mut sh),
            Err(E::Tree(TreeError::OutOfRange { .. }))
        ));
        assert_eq!(extents_of(&mut st, &root), snapshot);
        // A shift past the last extent, or by 0, does nothing.
        let last = snapshot.last().unwrap().lend();
        shift_checked(&mut st, &mut root, &mut m, last + 5, 10, true);
        shift_checked(&mut st, &mut root, &mut m, last + 5, 5, false);
        shift_checked(&mut st, &mut root, &mut m, 7, 0, false);
        assert_eq!(extents_of(&mut st, &root), snapshot);
        // Shifting the root leaf of a small tree.
        let mut root = empty_root();
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let mut m = Model::new();
        set_checked(&mut st, &mut root, &mut m, 10, 5, Some((base, 0)));
        set_checked(&mut st, &mut root, &mut m, 20, 5, Some((base + 10, 0)));
        shift_checked(&mut st, &mut root, &mut m, 12, 3, true);
        shift_checked(&mut st, &mut root, &mut m, 15, 3, false);
        shift_checked(&mut st, &mut root, &mut m, 20, 5, false);
        assert_eq!(
            extents_of(&mut st, &root),
            [x(10, base, 5, 0), x(15, base + 10, 5, 0)]
        );
    }
}

#[test]
fn visit_ranges() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let n = 3 * st.geo.node_capacity() as u64;
        for i in 0..n {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                4 * i,
                2,
                Some((base + 3 * i, 0)),
                |_| Ok(()),
            )
            .unwrap();
        }
        let all = extents_of(&mut st, &root);
        for (from, to) in [
            (0, 1),
            (1, 2),
            (2, 4),
            (5, 4 * n),
            (0, u64::MAX),
            (7, 9),
            (4 * n, 5 * n),
        ] {
            let mut got = Vec::new();
            visit(&mut st, &root, OWNER, from, to, |e| {
                got.push(e);
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
            let want: Vec<Extent> = all
                .iter()
                .copied()
                .filter(|e| e.lend() > from && e.lblk < to)
                .collect();
            assert_eq!(got, want, "[{from}, {to})");
        }
        let mut got = 0;
        visit(&mut st, &root, OWNER, 0, u64::MAX, |_| {
            got += 1;
            Ok(if got == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .unwrap();
        assert_eq!(got, 5);
    }
}

#[test]
fn free_all_releases_everything() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let n = 7 * st.geo.node_capacity() as u64;
        for i in 0..n {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                2 * i,
                1,
                Some((base + 2 * i, 0)),
                |_| Ok(()),
            )
            .unwrap();
        }
        assert_eq!(depth_of(&root), 2);
        let all = extents_of(&mut st, &root);
        st.reset();
        let mut got = Vec::new();
        free_all(&mut st, &mut root, OWNER, |e| {
            got.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, all);
        assert!(st.touched.is_empty(), "free_all modifies no node");
        assert_eq!(st.live(), 0);
        assert_eq!(root, empty_root());
        // An empty tree, and a root leaf.
        free_all(&mut st, &mut root, OWNER, |_| panic!()).unwrap();
        set_range(&mut st, &mut root, OWNER, 5, 1, Some((base, 0)), |_| Ok(())).unwrap();
        let mut got = Vec::new();
        free_all(&mut st, &mut root, OWNER, |e| {
            got.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [x(5, base, 1, 0)]);
        assert_eq!(root, empty_root());
    }
}

#[test]
fn argument_errors_change_nothing() {
    let mut st = MemStore::new(geometry(10, crc32c::update));
    let base = st.geo.data_start + 100_000;
    let mut root = empty_root();
    set_range(&mut st, &mut root, OWNER, 0, 3, Some((base, 0)), |_| Ok(())).unwrap();
    let snapshot = root;
    let max = max_lblk(&st.geo);
    type Case = (u64, u64, Option<(u64, u32)>);
    let cases: [Case; 5] = [
        (max - 1, 2, None),
        (u64::MAX, 2, None),
        (5, 1, Some((0, 0))),
        (5, 1, Some((base, 0x80))),
        (5, 10, Some((st.geo.block_count - 5, 0))),
    ];
    for (lblk, len, map) in cases {
        let r = set_range(&mut st, &mut root, OWNER, lblk, len, map, |_| Ok(()));
        assert!(matches!(r, Err(E::Tree(_))), "{lblk} {len} {map:?}: {r:?}");
        assert_eq!(root, snapshot);
    }
    assert_eq!(
        set_range(&mut st, &mut root, OWNER, 5, 0, None, |_| Ok(())),
        Ok(0)
    );
    // The last block of the largest file is fine.
    set_range_all(
        &mut st,
        &mut root,
        OWNER,
        max - 1,
        1,
        Some((base + 9, 0)),
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(
        lookup(&mut st, &root, OWNER, max - 1).unwrap(),
        Mapping::Mapped(x(max - 1, base + 9, 1, 0))
    );
    assert_eq!(
        lookup(&mut st, &root, OWNER, 3).unwrap(),
        Mapping::Hole { end: max - 1 }
    );
}

/// Running out of space in the middle of a split leaves a valid tree with
/// the old mapping, and nothing leaked.
#[test]
fn allocation_failure_is_clean() {
    for log2 in SIZES {
        // Appending to a full tree of depth 3 needs 4 new blocks: fail at
        // each of them in turn.
        for extra in 0..4 {
            let mut st = MemStore::new(geometry(log2, fast_crc));
            let mut b = builder(&mut st, 0, 0);
            let mut root = b.root(3, ROOT_ENTRIES, true);
            let (l, p) = (b.next_lblk, b.next_pblk);
            let mut m = expand(&check_tree(&mut st, &root).extents);
            st.alloc_limit = Some(st.allocs + extra);
            let r = set_range(&mut st, &mut root, OWNER, l, 1, Some((p, 0)), |_| Ok(()));
            assert_eq!(r, Err(E::Store("no space")));
            check_all(&mut st, &root, &m, &[l]);
            // The tree may have grown or split on the way; it goes on.
            st.alloc_limit = None;
            step_set(&mut st, &mut root, &mut m, l, 1, Some((p, 0))).unwrap();
            check_all(&mut st, &root, &m, &[l]);
        }
    }
}

/// A failing callback stops the call: the tree is already changed and the
/// rest of the pieces are not reported (leaked, never doubly used).
#[test]
fn callback_error_after_change() {
    let mut st = MemStore::new(geometry(10, crc32c::update));
    let base = st.geo.data_start + 100_000;
    let mut root = empty_root();
    for i in 0..5 {
        set_range(
            &mut st,
            &mut root,
            OWNER,
            2 * i,
            1,
            Some((base + 2 * i, 0)),
            |_| Ok(()),
        )
        .unwrap();
    }
    let mut calls = 0;
    let r = set_range(&mut st, &mut root, OWNER, 0, 10, None, |_| {
        calls += 1;
        if calls == 2 {
            Err(E::Callback)
        } else {
            Ok(())
        }
    });
    assert_eq!(r, Err(E::Callback));
    assert_eq!(calls, 2);
    assert!(extents_of(&mut st, &root).is_empty());
}

/// Corruption anywhere gives an error, never a panic, from every entry
/// point.
/// A tree of `n` one-block extents at every other logical block (nothing
/// merges), block `2i` mapped to `base + 2i`.
fn every_other_block(st: &mut MemStore, base: u64, n: u64) -> [u8; INODE_ROOT_SIZE] {
    let mut root = empty_root();
    for i in 0..n {
        set_range(
            st,
            &mut root,
            OWNER,
            2 * i,
            1,
            Some((base + 2 * i, 0)),
            |_| Ok(()),
        )
        .unwrap();
    }
    root
}

#[test]
fn corruption_is_an_error() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        let base = st.geo.data_start + 100_000;
        let n = 3 * st.geo.node_capacity() as u64;
        let mut root = every_other_block(&mut st, base, n);
        let nodes = seen(&mut st, &root).nodes;
        let bs = st.geo.block_size();
        // Flip bytes of a node and reseal, so that only the tree's own
        // checks can tell.
        for (k, &blk) in nodes.iter().enumerate() {
            for off in [16usize, 18, 20, 24, 32, 40, 48, 52, 56, 64, bs - 1] {
                let mut st2 = MemStore {
                    blocks: st.blocks.clone(),
                    free_list: st.free_list.clone(),
                    touched: HashSet::new(),
                    ..MemStore::new(st.geo)
                };
                st2.next = st.next;
                st2.allocs = st.allocs;
                st2.frees = st.frees;
                let geo = st2.geo;
                st2.modify(blk, |b| {
                    b[off] ^= 0xa5 ^ (k as u8);
                    geo.seal_block(b, magic::EXTENT, blk);
                })
                .unwrap();
                let mut r2 = root;
                let _ = lookup(&mut st2, &r2, OWNER, off as u64);
                let _ = visit(&mut st2, &r2, OWNER, 0, u64::MAX, |_| {
                    Ok(ControlFlow::Continue(()))
                });
                let _ = set_range_all(
                    &mut st2,
                    &mut r2,
                    OWNER,
                    off as u64,
                    3,
                    Some((base, 0)),
                    |_| Ok(()),
                );
                let _ = set_range_all(&mut st2, &mut r2, OWNER, 0, 4 * n, None, |_| Ok(()));
                let mut r3 = root;
                let _ = shift_all(&mut st2, &mut r3, OWNER, Shift::right(5, 7));
                let _ = shift_all(&mut st2, &mut r3, OWNER, Shift::left(100, 1));
                let mut r4 = root;
                let _ = free_all(&mut st2, &mut r4, OWNER, |_| Ok(()));
            }
        }
        // A bad root header.
        let mut r = root;
        put_u64(&mut r, 0, 0x0007_0006_0003);
        assert!(lookup(&mut st, &r, OWNER, 0).is_err());
        assert!(set_range(&mut st, &mut r, OWNER, 0, 1, None, |_| Ok(())).is_err());
        // A bad checksum: free_all changes nothing.
        let blk = nodes[1];
        st.blocks.get_mut(&blk).unwrap()[40] ^= 1;
        let before = root;
        assert!(matches!(
            free_all(&mut st, &mut root, OWNER, |_| Ok(())),
            Err(E::Format(FormatError::BadChecksum { .. }))
        ));
        assert_eq!(root, before);
    }
}

/// A store that remembers verified nodes (the kernel's buffer flag) is asked
/// to verify each node's checksum once; the other checks of a node (magic,
/// block number, header, owner) are made on every read, so a cached block
/// of another kind or another file is never taken for the node.
#[test]
fn verified_nodes_skip_only_the_checksum() {
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, crc32c::update));
        st.verified = Some(HashSet::new());
        let base = st.geo.data_start + 100_000;
        let n = 3 * st.geo.node_capacity() as u64;
        let root = every_other_block(&mut st, base, n);
        st.verified = Some(HashSet::new());
        let nodes = seen(&mut st, &root).nodes;
        assert!(nodes.len() > 3);
        st.crc_checks = 0;
        let all = |st: &mut MemStore| {
            visit(st, &root, OWNER, 0, u64::MAX, |_| {
                Ok(ControlFlow::Continue(()))
            })
        };
        all(&mut st).unwrap();
        assert_eq!(
            st.crc_checks, 0,
            "every node was verified by the walk before"
        );
        let leaf = nodes[nodes.len() - 1];
        // A changed byte without a new checksum: not seen while cached
        // (as ext4's verified buffers), found once read again from disk.
        st.blocks.get_mut(&leaf).unwrap()[40] ^= 1;
        all(&mut st).unwrap();
        st.verified.as_mut().unwrap().remove(&leaf);
        assert!(matches!(
            all(&mut st),
            Err(E::Format(FormatError::BadChecksum { .. }))
        ));
        st.blocks.get_mut(&leaf).unwrap()[40] ^= 1;
        all(&mut st).unwrap();
        assert_eq!(st.crc_checks, 2);
        // Magic, block number and owner are checked on cached blocks too.
        for (off, what) in [(0usize, "magic"), (8, "block number"), (24, "owner")] {
            st.blocks.get_mut(&leaf).unwrap()[off] ^= 1;
            assert!(all(&mut st).is_err(), "a cached node with a bad {what}");
            st.blocks.get_mut(&leaf).unwrap()[off] ^= 1;
            all(&mut st).unwrap();
        }
        assert_eq!(st.crc_checks, 2);
    }
}

/// `walk` reads a leaf once per batch of entries, not once per extent (the
/// walk behind swapon visits every extent of the file), and a leaf entry
/// that does not decode stops it after exactly the extents before it, in
/// the middle of a batch as anywhere else.
#[test]
fn walk_reads_leaves_in_batches() {
    const BATCH: u64 = 16;
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let base = st.geo.data_start + 100_000;
        let n = 3 * st.geo.node_capacity() as u64 + 5;
        let root = every_other_block(&mut st, base, n);
        st.reads = 0;
        let s = seen(&mut st, &root);
        assert_eq!(s.extents.len() as u64, n);
        let leaf_reads: u64 = s
            .leaves
            .iter()
            .map(|l| (l.len() as u64).div_ceil(BATCH))
            .sum();
        // Besides the leaf batches: a node's header, and for an index entry
        // in a block its key and the next one's.
        assert!(
            st.reads <= leaf_reads + 3 * s.nodes.len() as u64,
            "log2 {log2}: {} reads for {} extents in {} nodes",
            st.reads,
            n,
            s.nodes.len()
        );
        assert!(
            st.reads * 8 < n,
            "log2 {log2}: {} reads for {n} extents",
            st.reads
        );

        // Entry 20 of the first leaf (past the first batch) gets length 0.
        let leaf = s.nodes[0];
        assert!(s.leaves[0].len() > 20);
        let geo = st.geo;
        st.modify(leaf, |b| {
            let off = NODE_ENTRIES_OFFSET + 20 * ENTRY_SIZE + 16;
            b[off..off + 4].copy_from_slice(&0u32.to_le_bytes());
            geo.seal_block(b, magic::EXTENT, leaf);
        })
        .unwrap();
        let mut got = Vec::new();
        let r = walk(&mut st, &root, OWNER, |item| {
            if let Item::Extent(e) = item {
                got.push(e);
            }
            Ok(())
        });
        assert!(
            matches!(
                r,
                Err(E::Format(FormatError::BadField {
                    what: "extent length",
                    value: 0
                }))
            ),
            "{r:?}"
        );
        assert_eq!(got, s.leaves[0][..20]);
    }
}

// ---------------------------------------------------------------------------
// Large trees.

#[test]
fn hundred_thousand_extents() {
    const N: u64 = 100_000;
    for log2 in SIZES {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let base = st.geo.data_start + 1_000_000;
        let cap = st.geo.node_capacity() as u64;
        let mut root = empty_root();
        let mut max_touched = 0;
        for i in 0..N {
            let d = depth_of(&root);
            st.reset();
            let done = set_range(
                &mut st,
                &mut root,
                OWNER,
                i,
                1,
                Some((base + 2 * i, 0)),
                |_| panic!("nothing to replace"),
            )
            .unwrap();
            assert_eq!(done, 1);
            assert!(st.touched.len() as u32 <= max_touched_blocks(d));
            max_touched = max_touched.max(st.touched.len());
        }
        let s = check_tree(&mut st, &root);
        check_exact_keys(&mut st, &root);
        assert_eq!(s.extents.len() as u64, N);
        // The shallowest possible tree: ROOT_ENTRIES * cap^depth >= N.
        let mut want = 0u16;
        while ROOT_ENTRIES as u64 * cap.pow(u32::from(want)) < N {
            want += 1;
        }
        assert_eq!(depth_of(&root), want, "log2 {log2}");
        // Nearly full nodes.
        let min_leaves = N.div_ceil(cap);
        assert!(s.leaves.len() as u64 <= min_leaves + min_leaves / 20 + 1);
        for i in (0..N).step_by(7).chain([0, N - 1]) {
            assert_eq!(
                lookup(&mut st, &root, OWNER, i).unwrap(),
                Mapping::Mapped(x(i, base + 2 * i, 1, 0))
            );
        }
        assert_eq!(
            lookup(&mut st, &root, OWNER, N).unwrap(),
            Mapping::Hole { end: u64::MAX }
        );
        // Punch every other block in the second half: holes with exact ends.
        for i in (N / 2..N).step_by(2) {
            set_range(&mut st, &mut root, OWNER, i, 1, None, |_| Ok(())).unwrap();
        }
        for i in (N / 2..N).step_by(11) {
            let want = if i % 2 == 0 {
                Mapping::Hole { end: i + 1 }
            } else {
                Mapping::Mapped(x(i, base + 2 * i, 1, 0))
            };
            assert_eq!(lookup(&mut st, &root, OWNER, i).unwrap(), want);
        }
        check_tree(&mut st, &root);
        // Truncate everything in bounded steps.
        let mut released = 0u64;
        let mut calls = 0;
        let mut done = 0;
        while done < N {
            let d = depth_of(&root);
            st.reset();
            done += set_range(&mut st, &mut root, OWNER, done, N - done, None, |_| {
                released += 1;
                Ok(())
            })
            .unwrap();
            calls += 1;
            assert!(st.touched.len() as u32 <= max_touched_blocks(d));
            assert!(st.freed_now <= max_freed_blocks(d));
        }
        assert_eq!(released, N - N / 4);
        assert!(calls <= N / MAX_REPLACED as u64 + 2 * N / cap);
        assert_eq!(root, empty_root());
        assert_eq!(st.live(), 0);
    }
}

#[test]
fn hundred_thousand_extents_random_order() {
    const N: u64 = 100_000;
    let mut st = MemStore::new(geometry(10, fast_crc));
    let base = st.geo.data_start + 1_000_000;
    let mut root = empty_root();
    // A permutation of 0..N (multiplication by a unit mod N).
    for k in 0..N {
        let i = (k * 7_919) % N;
        set_range(
            &mut st,
            &mut root,
            OWNER,
            i,
            1,
            Some((base + 2 * i, 0)),
            |_| Ok(()),
        )
        .unwrap();
    }
    let s = check_tree(&mut st, &root);
    check_exact_keys(&mut st, &root);
    assert_eq!(s.extents.len() as u64, N);
    assert!(depth_of(&root) <= 4);
    for i in (0..N).step_by(13) {
        assert_eq!(
            lookup(&mut st, &root, OWNER, i).unwrap(),
            Mapping::Mapped(x(i, base + 2 * i, 1, 0))
        );
    }
    // Remapping everything contiguously collapses the tree to one extent.
    set_range_all(&mut st, &mut root, OWNER, 0, N, Some((base, 0)), |_| Ok(())).unwrap();
    let s = check_tree(&mut st, &root);
    assert!(s.extents.len() < 3000, "{}", s.extents.len());
    set_range_all(&mut st, &mut root, OWNER, 0, N, None, |_| Ok(())).unwrap();
    assert_eq!(root, empty_root());
    assert_eq!(st.live(), 0);
}

// ---------------------------------------------------------------------------
// Property tests against the per-block model.

/// Logical blocks the random operations use.
const SPACE: u64 = 3000;

#[derive(Clone, Debug)]
enum Op {
    /// Map to physical blocks that continue the identity map (so that
    /// neighbours merge) or to scattered ones.
    Map {
        lblk: u64,
        len: u64,
        scattered: Option<u64>,
        unwritten: bool,
    },
    Punch {
        lblk: u64,
        len: u64,
    },
    /// Rewrite the unwritten runs of a range as written, same blocks.
    Convert {
        lblk: u64,
        len: u64,
    },
    Collapse {
        from: u64,
        delta: u64,
    },
    Insert {
        from: u64,
        delta: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let lblk = 0..SPACE;
    prop_oneof![
        4 => (lblk.clone(), 1..40u64, prop::option::of(0..1_000_000u64), any::<bool>()).prop_map(
            |(lblk, len, scattered, unwritten)| Op::Map { lblk, len, scattered, unwritten }
        ),
        2 => (lblk.clone(), 1..200u64).prop_map(|(lblk, len)| Op::Punch { lblk, len }),
        1 => (lblk.clone(), 1..300u64).prop_map(|(lblk, len)| Op::Convert { lblk, len }),
        1 => (lblk.clone(), 1..100u64).prop_map(|(from, delta)| Op::Collapse { from, delta }),
        1 => (lblk, 1..100u64).prop_map(|(from, delta)| Op::Insert { from, delta }),
    ]
}

/// Unwritten runs of the model in `[lblk, lblk + len)`: (lblk, pblk, len).
fn unwritten_runs(m: &Model, lblk: u64, len: u64) -> Vec<(u64, u64, u64)> {
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    for (&l, &(p, f)) in m.range(lblk..lblk + len) {
        if f & UNWRITTEN == 0 {
            continue;
        }
        match runs.last_mut() {
            Some(r) if r.0 + r.2 == l && r.1 + r.2 == p => r.2 += 1,
            _ => runs.push((l, p, 1)),
        }
    }
    runs
}

fn run_ops(
    prefill: &[u64],
    ops: &[Op],
    exact_keys: bool,
    st: MemStore,
    root: [u8; INODE_ROOT_SIZE],
) {
    let mut st = st;
    let mut root = root;
    let base = st.geo.data_start + 10_000_000;
    let mut m = expand(&check_tree(&mut st, &root).extents);
    for &l in prefill {
        let l = l % SPACE;
        let p = base + 5_000_000 + 3 * l;
        set_range_all(&mut st, &mut root, OWNER, l, 1, Some((p, 0)), |_| Ok(())).unwrap();
        model_set(&mut m, l, 1, Some((p, 0)));
    }
    check_all(&mut st, &root, &m, &[]);
    for op in ops {
        match *op {
            Op::Map {
                lblk,
                len,
                scattered,
                unwritten,
            } => {
                let p = scattered.map_or(base + lblk, |s| base + 2_000_000 + 64 * s);
                let f = if unwritten { UNWRITTEN } else { 0 };
                set_checked_fast(
                    &mut st,
                    &mut root,
                    &mut m,
                    lblk,
                    len,
                    Some((p, f)),
                    exact_keys,
                );
            }
            Op::Punch { lblk, len } => {
                set_checked_fast(&mut st, &mut root, &mut m, lblk, len, None, exact_keys);
            }
            Op::Convert { lblk, len } => {
                for (l, p, n) in unwritten_runs(&m, lblk, len) {
                    let mut done = 0;
                    while done < n {
                        let mut pieces = Vec::new();
                        let d = set_range(
                            &mut st,
                            &mut root,
                            OWNER,
                            l + done,
                            n - done,
                            Some((p + done, 0)),
                            |x| {
                                pieces.push(x);
                                Ok(())
                            },
                        )
                        .unwrap();
                        // The conversion contract: the same blocks come back.
                        for x in &pieces {
                            assert!(x.is_unwritten() && x.pblk == p + (x.lblk - l));
                        }
                        assert_eq!(pieces.iter().map(|x| u64::from(x.len)).sum::<u64>(), d);
                        model_set(&mut m, l + done, d, Some((p + done, 0)));
                        done += d;
                    }
                }
                check_all(&mut st, &root, &m, &[lblk, lblk + len]);
            }
            Op::Collapse { from, delta } => {
                let delta = delta.min(from);
                if delta == 0 {
                    continue;
                }
                set_checked_fast(
                    &mut st,
                    &mut root,
                    &mut m,
                    from - delta,
                    delta,
                    None,
                    exact_keys,
                );
                shift_checked(&mut st, &mut root, &mut m, from, delta, false);
            }
            Op::Insert { from, delta } => {
                shift_checked(&mut st, &mut root, &mut m, from, delta, true);
            }
        }
        let s = check_tree(&mut st, &root);
        check_merged(&s);
        if exact_keys {
            check_exact_keys(&mut st, &root);
        }
    }
}

/// Like `set_checked`, with lookups at the boundaries only.
fn set_checked_fast(
    st: &mut MemStore,
    root: &mut [u8; INODE_ROOT_SIZE],
    m: &mut Model,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
    exact_keys: bool,
) {
    let mut done = 0;
    while done < len {
        let mm = map.map(|(p, f)| (p + done, f));
        done += step_set(st, root, m, lblk + done, len - done, mm).unwrap();
        check_all(st, root, m, &[lblk, lblk + done, lblk + len]);
        if exact_keys {
            check_exact_keys(st, root);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_operations(
        log2 in 10u32..=12,
        prefill in prop::collection::vec(0..SPACE, 0..1200),
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let st = MemStore::new(geometry(log2, fast_crc));
        run_ops(&prefill, &ops, true, st, empty_root());
    }

    #[test]
    fn random_operations_small_trees(
        log2 in 10u32..=12,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let st = MemStore::new(geometry(log2, fast_crc));
        run_ops(&[], &ops, true, st, empty_root());
    }

    /// Starting from trees whose keys are lower bounds, with gaps.
    #[test]
    fn random_operations_lower_bound_keys(
        log2 in 10u32..=12,
        depth in 1u16..=2,
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let mut st = MemStore::new(geometry(log2, fast_crc));
        let mut b = builder(&mut st, 2, 1);
        b.next_lblk = 10;
        let root = b.root(depth, 2, true);
        // Keep the trees small enough for the model.
        run_ops(&[], &ops, false, st, root);
    }
}

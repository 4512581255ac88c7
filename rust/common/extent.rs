// SPDX-License-Identifier: GPL-2.0

//! Extent trees: the B+tree that maps a file's logical blocks to data blocks
//! (`Documentation/format.md`, "Extent trees").
//!
//! The root lives in the inode ([`INODE_ROOT_SIZE`] bytes); the other nodes
//! are blocks reached through a [`NodeStore`], which the kernel implements on
//! buffer heads inside a jbd2 transaction and the host tools on an image
//! file. Every node read is verified (block header, node header, owner,
//! depth, key order) before it is used, so a corrupt tree yields a
//! [`FormatError`], never a panic or a wrong mapping.
//!
//! Reading: [`lookup`], [`walk`] (verifies everything), [`visit`] (the
//! extents of a range), [`stats`]. Writing goes through a [`NodeStoreMut`]:
//! [`set_range`] maps a range or makes it a hole (every write, fallocate,
//! conversion, copy-on-write, punch and truncate), [`shift`] moves extents
//! for collapse and insert range, [`free_all`] releases a whole tree. Each
//! call of `set_range` and `shift` does a bounded amount of work, so that a
//! jbd2 handle can reserve its credits up front ([`max_touched_blocks`],
//! [`max_freed_blocks`], [`MAX_REPLACED`]); the caller loops. Index keys
//! may be any lower bounds of their subtrees on disk (the format allows
//! it); the trees this code writes keep them equal to the first logical
//! block of each subtree. Nothing here recurses deeper than the tree, puts
//! a node buffer on the stack, or allocates.

use core::fmt;
use core::ops::ControlFlow;

use super::format::{
    decode_node_header, encode_node_header, entry, extent_flags, get_u16, get_u64, magic, max_lblk,
    put_u16, put_u64, Extent, FormatError, Geometry, IndexEntry, RootHeader, ENTRY_SIZE,
    INODE_ROOT_SIZE, MAX_DEPTH, MAX_EXTENT_LEN, NODE_ENTRIES_OFFSET, NODE_HEADER_OFFSET,
    ROOT_ENTRIES, ROOT_HEADER_SIZE,
};

/// Read access to extent-tree node blocks.
pub trait NodeStore {
    /// The store's error; corruption found by the tree code converts into it.
    type Error: From<FormatError>;

    /// The filesystem's geometry.
    fn geometry(&self) -> &Geometry;

    /// Calls `f` with the contents of block `blk` (exactly one block). The
    /// tree code verifies the contents itself.
    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, Self::Error>;

    /// Like [`read`](Self::read), for the check of a node: `f` also gets
    /// whether the block's checksum must be verified. A store that caches
    /// blocks may answer `false` for a block whose check passed since it
    /// was last read from disk, and remembers a block as checked when `f`
    /// returns `Ok`. By default every check verifies the checksum.
    fn read_checked<R, E>(
        &mut self,
        blk: u64,
        f: impl FnOnce(&[u8], bool) -> Result<R, E>,
    ) -> Result<Result<R, E>, Self::Error> {
        self.read(blk, |buf| f(buf, true))
    }
}

/// What a lookup found at a logical block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// The block is mapped by this extent.
    Mapped(Extent),
    /// The block is in a hole that ends before `end` (the next extent's
    /// first block, or `u64::MAX` if no extent follows).
    Hole {
        /// One past the last block of the hole.
        end: u64,
    },
}

/// One node of a tree, as seen by [`walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's block; `None` for the root (in the inode).
    pub blk: Option<u64>,
    /// The node's depth (0 for leaves).
    pub depth: u16,
    /// Entries in the node.
    pub entries: u16,
}

/// What [`walk`] reports, in logical order: every node before its entries,
/// and every extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A node of the tree.
    Node(NodeInfo),
    /// An extent (leaf entry).
    Extent(Extent),
}

/// A verified node: header and where its entries start in the buffer.
struct NodeView {
    header: RootHeader,
}

/// The logical range `[lo, hi)` a subtree may cover, from its parents'
/// index entries.
#[derive(Clone, Copy)]
struct Bounds {
    lo: u64,
    hi: u64,
}

const BAD_ORDER: FormatError = FormatError::BadField {
    what: "extent tree key order",
    value: 0,
};

/// Verifies node block `blk` (at `depth`, owned by `owner`) and returns its
/// header.
fn read_node_header<S: NodeStore>(
    store: &mut S,
    blk: u64,
    depth: u16,
    owner: u64,
) -> Result<NodeView, S::Error> {
    let geo = *store.geometry();
    let header = store.read_checked(blk, |buf, crc| -> Result<RootHeader, FormatError> {
        geo.check_block_crc(buf, "extent node", magic::EXTENT, blk, crc)?;
        decode_node_header(&geo, buf, owner)
    })??;
    if header.depth != depth {
        return Err(FormatError::BadField {
            what: "extent node depth",
            value: u64::from(header.depth),
        }
        .into());
    }
    if header.entries == 0 {
        return Err(FormatError::BadField {
            what: "empty extent node",
            value: blk,
        }
        .into());
    }
    Ok(NodeView { header })
}

/// Entry `i` of node `blk` (already verified), decoded as an index entry.
fn read_index<S: NodeStore>(store: &mut S, blk: u64, i: usize) -> Result<IndexEntry, S::Error> {
    let geo = *store.geometry();
    Ok(store.read(blk, |buf| {
        IndexEntry::decode(&geo, entry(buf, NODE_ENTRIES_OFFSET, i))
    })??)
}

/// Entry `i` of node `blk` (already verified), decoded as an extent.
fn read_extent<S: NodeStore>(store: &mut S, blk: u64, i: usize) -> Result<Extent, S::Error> {
    let geo = *store.geometry();
    Ok(store.read(blk, |buf| {
        Extent::decode(&geo, entry(buf, NODE_ENTRIES_OFFSET, i))
    })??)
}

/// Where the entries of a node live: the inode root or a block.
#[derive(Clone, Copy)]
enum Place<'r> {
    Root(&'r [u8; INODE_ROOT_SIZE]),
    Block(u64),
}

impl Place<'_> {
    fn index<S: NodeStore>(&self, store: &mut S, i: usize) -> Result<IndexEntry, S::Error> {
        match *self {
            Place::Root(r) => {
                let geo = *store.geometry();
                Ok(IndexEntry::decode(&geo, entry(r, ROOT_HEADER_SIZE, i))?)
            }
            Place::Block(b) => read_index(store, b, i),
        }
    }

    fn extent<S: NodeStore>(&self, store: &mut S, i: usize) -> Result<Extent, S::Error> {
        match *self {
            Place::Root(r) => {
                let geo = *store.geometry();
                Ok(Extent::decode(&geo, entry(r, ROOT_HEADER_SIZE, i))?)
            }
            Place::Block(b) => read_extent(store, b, i),
        }
    }

    /// Decodes entries `start..` as extents into `out` with one read of the
    /// node, stopping at the first entry that does not decode: how many
    /// were decoded, and that entry's error.
    fn extents<S: NodeStore>(
        &self,
        store: &mut S,
        start: usize,
        out: &mut [Extent],
    ) -> Result<(usize, Option<FormatError>), S::Error> {
        let geo = *store.geometry();
        let mut decode = |buf: &[u8], base: usize| {
            for (k, slot) in out.iter_mut().enumerate() {
                match Extent::decode(&geo, entry(buf, base, start + k)) {
                    Ok(e) => *slot = e,
                    Err(err) => return (k, Some(err)),
                }
            }
            (out.len(), None)
        };
        match *self {
            Place::Root(r) => Ok(decode(r, ROOT_HEADER_SIZE)),
            Place::Block(b) => store.read(b, |buf| decode(buf, NODE_ENTRIES_OFFSET)),
        }
    }
}

/// Leaf entries [`walk`] decodes per read of the node: the node's buffer is
/// looked up once per batch rather than once per extent (the walk behind
/// swapon visits every extent of the file), and the batch, 16 x 24 bytes,
/// stays small for the kernel stack.
const WALK_BATCH: usize = 16;

/// Decodes and checks the root header: an index root is never empty.
fn decode_root(root: &[u8; INODE_ROOT_SIZE]) -> Result<RootHeader, FormatError> {
    let rh = RootHeader::decode(root)?;
    if rh.depth > 0 && rh.entries == 0 {
        return Err(FormatError::BadField {
            what: "empty extent index root",
            value: u64::from(rh.depth),
        });
    }
    Ok(rh)
}

/// Looks up logical block `lblk`.
///
/// A hole's `end` is exact: the first block of the next extent, even when
/// the index keys on the way are mere lower bounds of their subtrees (the
/// format allows that), at the cost of reading the next leaf when the hole
/// runs past the end of the leaf holding `lblk`.
pub fn lookup<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    lblk: u64,
) -> Result<Mapping, S::Error> {
    let mut path = descend(store, root, owner, lblk)?;
    let leaf = path.leaf()?;
    let place = leaf.loc.place(root);
    // The number of extents that start at or before lblk.
    let (mut lo, mut hi) = (0usize, leaf.n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if place.extent(store, mid)?.lblk <= lblk {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo > 0 {
        let e = place.extent(store, lo - 1)?;
        if lblk < e.lend() {
            return Ok(Mapping::Mapped(e));
        }
    }
    if lo < leaf.n {
        return Ok(Mapping::Hole {
            end: place.extent(store, lo)?.lblk,
        });
    }
    // The hole runs to the first extent of the next leaf (whose index key
    // is only a lower bound of it).
    if !next_leaf(store, root, owner, &mut path, |_, _| Ok(()))? {
        return Ok(Mapping::Hole { end: u64::MAX });
    }
    let next = path.leaf()?;
    let end = next.loc.place(root).extent(store, 0)?.lblk;
    if end <= lblk {
        return Err(BAD_ORDER.into());
    }
    Ok(Mapping::Hole { end })
}

/// Visits every node and every extent of a tree in logical order, checking
/// the whole structure on the way: block headers and checksums, owners,
/// depths (every leaf at depth 0, each level one below its parent), no empty
/// node but an empty root, strictly increasing keys, extents inside their
/// parents' bounds and not overlapping. Stops at the first problem.
pub fn walk<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    mut f: impl FnMut(Item) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let rh = decode_root(root)?;
    f(Item::Node(NodeInfo {
        blk: None,
        depth: rh.depth,
        entries: rh.entries,
    }))?;
    let mut last_end = 0u64;
    walk_entries(
        store,
        Place::Root(root),
        rh,
        owner,
        Bounds {
            lo: 0,
            hi: u64::MAX,
        },
        &mut last_end,
        &mut f,
    )
}

fn walk_entries<S: NodeStore>(
    store: &mut S,
    place: Place<'_>,
    header: RootHeader,
    owner: u64,
    bounds: Bounds,
    last_end: &mut u64,
    f: &mut impl FnMut(Item) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let n = usize::from(header.entries);
    if header.depth == 0 {
        return walk_leaf(store, place, n, bounds, last_end, f);
    }
    let mut prev: Option<u64> = None;
    for i in 0..n {
        let ie = place.index(store, i)?;
        if prev.is_some_and(|p| ie.lblk <= p) || ie.lblk < bounds.lo || ie.lblk >= bounds.hi {
            return Err(BAD_ORDER.into());
        }
        prev = Some(ie.lblk);
        let hi = if i + 1 < n {
            place.index(store, i + 1)?.lblk
        } else {
            bounds.hi
        };
        let child = read_node_header(store, ie.child, header.depth - 1, owner)?;
        f(Item::Node(NodeInfo {
            blk: Some(ie.child),
            depth: child.header.depth,
            entries: child.header.entries,
        }))?;
        walk_entries(
            store,
            Place::Block(ie.child),
            child.header,
            owner,
            Bounds { lo: ie.lblk, hi },
            last_end,
            f,
        )?;
    }
    Ok(())
}

/// The `n` extents of a leaf, for [`walk_entries`]. Not inlined, so that
/// only the leaf's frame holds the batch, not every level of the recursion.
#[inline(never)]
fn walk_leaf<S: NodeStore>(
    store: &mut S,
    place: Place<'_>,
    n: usize,
    bounds: Bounds,
    last_end: &mut u64,
    f: &mut impl FnMut(Item) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let mut batch = [Extent {
        lblk: 0,
        pblk: 0,
        len: 0,
        flags: 0,
    }; WALK_BATCH];
    let mut i = 0;
    while i < n {
        let chunk = batch.get_mut(..WALK_BATCH.min(n - i)).ok_or(INTERNAL)?;
        let (got, err) = place.extents(store, i, chunk)?;
        for e in chunk.iter().take(got) {
            if e.lblk < *last_end || e.lblk < bounds.lo || e.lend() > bounds.hi {
                return Err(FormatError::BadField {
                    what: "extent overlaps or leaves its parent's range",
                    value: e.lblk,
                }
                .into());
            }
            *last_end = e.lend();
            f(Item::Extent(*e))?;
        }
        if let Some(err) = err {
            return Err(err.into());
        }
        i += chunk.len();
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Paths from the root to a leaf.

/// Levels of a path: the root and up to [`MAX_DEPTH`] node blocks.
const LEVELS: usize = MAX_DEPTH as usize + 1;

/// Where a node lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// The root, in the inode.
    Root,
    /// A node block.
    Block(u64),
}

impl Loc {
    fn place(self, root: &[u8; INODE_ROOT_SIZE]) -> Place<'_> {
        match self {
            Loc::Root => Place::Root(root),
            Loc::Block(b) => Place::Block(b),
        }
    }
}

/// One node of a path.
#[derive(Clone, Copy, Debug)]
struct Level {
    loc: Loc,
    /// Entries in the node (never 0 but for an empty root).
    n: usize,
    /// The entry followed to the next level (index nodes only).
    idx: usize,
    /// The node's key range `[lo, hi)`, from its ancestors' index entries;
    /// `hi` is `u64::MAX` on the right edge of the tree.
    lo: u64,
    hi: u64,
}

const NO_LEVEL: Level = Level {
    loc: Loc::Root,
    n: 0,
    idx: 0,
    lo: 0,
    hi: u64::MAX,
};

/// A path from the root (level 0) to a leaf (level `leaf`, the root's
/// depth). Nodes are re-read through the store when needed: a path holds no
/// node contents, so it is small enough for the kernel stack.
#[derive(Clone, Copy, Debug)]
struct Path {
    lv: [Level; LEVELS],
    leaf: usize,
}

/// An internal inconsistency of the tree code (never expected; reported as
/// an error rather than a panic).
const INTERNAL: FormatError = FormatError::BadField {
    what: "extent tree update (internal inconsistency)",
    value: 0,
};

impl Path {
    fn at(&self, l: usize) -> Result<Level, FormatError> {
        self.lv.get(l).copied().ok_or(INTERNAL)
    }

    fn set(&mut self, l: usize, v: Level) -> Result<(), FormatError> {
        *self.lv.get_mut(l).ok_or(INTERNAL)? = v;
        Ok(())
    }

    fn leaf(&self) -> Result<Level, FormatError> {
        self.at(self.leaf)
    }

    /// The key of the leaf in its parent (0 for a root leaf).
    fn leaf_key(&self) -> u64 {
        self.lv.get(self.leaf).map_or(0, |l| l.lo)
    }

    /// Whether the path follows the first entry at every index level.
    fn leftmost(&self) -> bool {
        self.lv.iter().take(self.leaf).all(|l| l.idx == 0)
    }
}

/// The depth of a node at level `l` of a path whose leaf is at `leaf`.
fn depth_at(leaf: usize, l: usize) -> Result<u16, FormatError> {
    leaf.checked_sub(l)
        .and_then(|d| u16::try_from(d).ok())
        .ok_or(INTERNAL)
}

/// Descends from the root to the leaf that covers `lblk` (the last child
/// whose key is at or before `lblk` at every level, the first child if
/// there is none), verifying every node on the way.
fn descend<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    lblk: u64,
) -> Result<Path, S::Error> {
    let rh = decode_root(root)?;
    let mut path = Path {
        lv: [NO_LEVEL; LEVELS],
        leaf: usize::from(rh.depth),
    };
    let mut cur = Level {
        loc: Loc::Root,
        n: usize::from(rh.entries),
        idx: 0,
        lo: 0,
        hi: u64::MAX,
    };
    let mut depth = rh.depth;
    let mut l = 0usize;
    while depth > 0 {
        let place = cur.loc.place(root);
        let n = cur.n;
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if place.index(store, mid)?.lblk <= lblk {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.saturating_sub(1);
        let ie = place.index(store, i)?;
        let next_hi = if i + 1 < n {
            place.index(store, i + 1)?.lblk
        } else {
            cur.hi
        };
        if ie.lblk < cur.lo || ie.lblk >= next_hi {
            return Err(BAD_ORDER.into());
        }
        cur.idx = i;
        path.set(l, cur)?;
        depth -= 1;
        let h = read_node_header(store, ie.child, depth, owner)?.header;
        cur = Level {
            loc: Loc::Block(ie.child),
            n: usize::from(h.entries),
            idx: 0,
            lo: ie.lblk,
            hi: next_hi,
        };
        l += 1;
    }
    path.set(l, cur)?;
    Ok(path)
}

/// Moves `path` to the next leaf to the right, verifying the nodes it
/// enters. Calls `leave` for every node block it leaves for good (all the
/// remaining ones when there is no next leaf). Returns `false` after the
/// last leaf.
fn next_leaf<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    path: &mut Path,
    mut leave: impl FnMut(&mut S, u64) -> Result<(), S::Error>,
) -> Result<bool, S::Error> {
    // The deepest index level with an entry to the right of the path.
    let mut up = None;
    for l in (0..path.leaf).rev() {
        let lv = path.at(l)?;
        if lv.idx + 1 < lv.n {
            up = Some(l);
            break;
        }
    }
    let first_done = up.map_or(0, |u| u + 1);
    for l in (first_done..=path.leaf).rev() {
        if let Loc::Block(b) = path.at(l)?.loc {
            leave(store, b)?;
        }
    }
    let Some(u) = up else {
        return Ok(false);
    };
    let mut parent = path.at(u)?;
    let prev_key = parent.loc.place(root).index(store, parent.idx)?.lblk;
    parent.idx += 1;
    path.set(u, parent)?;
    let mut lo_min = prev_key.saturating_add(1);
    for l in u + 1..=path.leaf {
        let place = parent.loc.place(root);
        let ie = place.index(store, parent.idx)?;
        let hi = if parent.idx + 1 < parent.n {
            place.index(store, parent.idx + 1)?.lblk
        } else {
            parent.hi
        };
        if ie.lblk < lo_min || ie.lblk < parent.lo || ie.lblk >= hi {
            return Err(BAD_ORDER.into());
        }
        lo_min = ie.lblk;
        let h = read_node_header(store, ie.child, depth_at(path.leaf, l)?, owner)?.header;
        let node = Level {
            loc: Loc::Block(ie.child),
            n: usize::from(h.entries),
            idx: 0,
            lo: ie.lblk,
            hi,
        };
        path.set(l, node)?;
        parent = node;
    }
    Ok(true)
}

/// The index of the first extent of a leaf that ends after `lblk`.
fn first_ending_after<S: NodeStore>(
    store: &mut S,
    place: Place<'_>,
    n: usize,
    lblk: u64,
) -> Result<usize, S::Error> {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if place.extent(store, mid)?.lend() <= lblk {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// The index of the first extent of a leaf that starts at or after `lblk`.
fn first_starting_at<S: NodeStore>(
    store: &mut S,
    place: Place<'_>,
    n: usize,
    lblk: u64,
) -> Result<usize, S::Error> {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if place.extent(store, mid)?.lblk < lblk {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

// ---------------------------------------------------------------------------
// Reading helpers for the filesystem.

/// Calls `f` with every extent that overlaps logical blocks `[from, to)`, in
/// logical order (the first and last may extend beyond the range: they are
/// reported whole). `f` returns [`ControlFlow::Break`] to stop early.
///
/// This is what FIEMAP, swap activation and `SEEK_DATA`/`SEEK_HOLE` need: it
/// reads only the leaves that cover the range (plus the path to the first
/// one), verifying every node it enters and checking that the extents it
/// reports are in order and inside their leaves' key ranges.
pub fn visit<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    from: u64,
    to: u64,
    mut f: impl FnMut(Extent) -> Result<ControlFlow<()>, S::Error>,
) -> Result<(), S::Error> {
    if from >= to {
        return Ok(());
    }
    let mut path = descend(store, root, owner, from)?;
    let leaf = path.leaf()?;
    let mut i = first_ending_after(store, leaf.loc.place(root), leaf.n, from)?;
    let mut prev_end = 0u64;
    loop {
        let leaf = path.leaf()?;
        let place = leaf.loc.place(root);
        while i < leaf.n {
            let e = place.extent(store, i)?;
            if e.lblk >= to {
                return Ok(());
            }
            if e.lblk < prev_end || e.lblk < leaf.lo || e.lend() > leaf.hi {
                return Err(FormatError::BadField {
                    what: "extent overlaps or leaves its parent's range",
                    value: e.lblk,
                }
                .into());
            }
            prev_end = e.lend();
            if f(e)?.is_break() {
                return Ok(());
            }
            i += 1;
        }
        if !next_leaf(store, root, owner, &mut path, |_, _| Ok(()))? {
            return Ok(());
        }
        i = 0;
    }
}

/// Statistics of a tree, from [`stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// The root's depth (0: the extents are in the inode).
    pub depth: u16,
    /// Node blocks (the root, in the inode, is not counted). The inode's
    /// `blocks` counts them along with the data blocks.
    pub node_blocks: u64,
    /// Extents.
    pub extents: u64,
    /// Logical blocks mapped (written or unwritten).
    pub mapped_blocks: u64,
    /// Logical blocks mapped by unwritten extents.
    pub unwritten_blocks: u64,
}

/// Counts the nodes and extents of a tree, verifying all of it ([`walk`]).
pub fn stats<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
) -> Result<TreeStats, S::Error> {
    let mut st = TreeStats {
        depth: decode_root(root)?.depth,
        ..TreeStats::default()
    };
    walk(store, root, owner, |item| {
        match item {
            Item::Node(n) => {
                if n.blk.is_some() {
                    st.node_blocks += 1;
                }
            }
            Item::Extent(e) => {
                st.extents += 1;
                st.mapped_blocks += u64::from(e.len);
                if e.is_unwritten() {
                    st.unwritten_blocks += u64::from(e.len);
                }
            }
        }
        Ok(())
    })?;
    Ok(st)
}

/// The depth of a tree, from its root (for [`max_touched_blocks`]).
pub fn depth(root: &[u8; INODE_ROOT_SIZE]) -> Result<u16, FormatError> {
    Ok(decode_root(root)?.depth)
}

// ---------------------------------------------------------------------------
// Changing trees.

/// Read-write access to extent-tree node blocks, inside one transaction.
///
/// The tree code verifies every node it reads, changes blocks only through
/// [`modify`](NodeStoreMut::modify) and re-seals every block it changes
/// ([`Geometry::seal_block`] with [`magic::EXTENT`] and the block's number;
/// node headers written with [`encode_node_header`], owner = the inode).
/// The kernel implements it on buffer heads in a jbd2 handle, the host tools
/// on an image file. Errors the tree code detects itself convert into the
/// store's error from [`FormatError`] (corruption) and [`TreeError`] (an
/// operation that cannot be done).
pub trait NodeStoreMut: NodeStore<Error: From<TreeError>> {
    /// Calls `f` with the contents of block `blk` (exactly one block) to
    /// change them; the new contents are what `f` leaves in the buffer. The
    /// kernel runs `f` between `jbd2_journal_get_write_access` and
    /// `jbd2_journal_dirty_metadata`. A block just returned by
    /// [`alloc`](NodeStoreMut::alloc) reads as zeroes.
    fn modify<R>(&mut self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, Self::Error>;

    /// Allocates a data block for a new node, preferably near `goal` (a
    /// hint: a neighbouring node or data block), in the same transaction,
    /// and returns its number; its contents are zeroes. The caller accounts
    /// it in the inode's `blocks` (and its reference count is 1).
    fn alloc(&mut self, goal: u64) -> Result<u64, Self::Error>;

    /// Releases node block `blk`, which the tree no longer references (the
    /// caller drops it from the inode's `blocks`; the kernel also forgets or
    /// revokes the buffer).
    fn free(&mut self, blk: u64) -> Result<(), Self::Error>;
}

/// Why a tree operation cannot be done. This is not corruption (that is a
/// [`FormatError`]): the tree is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// The logical range is empty where it must not be, overflows, or goes
    /// past [`max_lblk`] (for [`shift`] right: an extent would). The kernel
    /// reports `EFBIG` or `EINVAL`.
    OutOfRange {
        /// First logical block of the range.
        lblk: u64,
        /// Its length.
        len: u64,
    },
    /// The physical blocks of a new mapping are not all in the data region,
    /// or its flags are unknown (a caller bug: `EINVAL`/`EIO`).
    BadMapping {
        /// First physical block.
        pblk: u64,
        /// The flags.
        flags: u32,
    },
    /// The tree would need more than [`MAX_DEPTH`] levels (`ENOSPC`).
    TooDeep,
    /// A collapsing [`shift`]: the blocks the extents would move to are not
    /// a hole (`EINVAL`).
    NotAHole {
        /// A logical block in the way.
        lblk: u64,
    },
    /// [`NodeStoreMut::alloc`] returned a block outside the data region (a
    /// store bug).
    BadAlloc {
        /// The block.
        blk: u64,
    },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TreeError::OutOfRange { lblk, len } => {
                write!(f, "logical range {lblk}+{len} out of range")
            }
            TreeError::BadMapping { pblk, flags } => {
                write!(f, "bad mapping to block {pblk} (flags {flags:#x})")
            }
            TreeError::TooDeep => write!(f, "extent tree too deep"),
            TreeError::NotAHole { lblk } => {
                write!(f, "logical block {lblk} is mapped (a hole is needed)")
            }
            TreeError::BadAlloc { blk } => {
                write!(f, "allocator returned block {blk} outside the data region")
            }
        }
    }
}

/// Most pieces of the previous mapping one [`set_range`] call replaces (and
/// reports): one call handles at most this many old extents, then returns
/// how far it got.
pub const MAX_REPLACED: usize = 16;

/// The worst-case number of distinct node blocks one call of [`set_range`]
/// or [`shift`] on a tree of depth `depth` modifies or allocates (an
/// allocated block is also modified; it is counted once), for reserving
/// jbd2 credits. The inode (which holds the root) is not counted, nor are
/// the caller's own blocks (bitmaps, reference counts, data).
///
/// Why: a call works on one leaf and the path to it (`depth` blocks). Making
/// room in a full leaf splits it and, if they are full too, its ancestors up
/// to the first that has room: every split modifies the node and its parent
/// (both on the path) and allocates one sibling, so at most `depth` new
/// blocks; if the root itself is full the tree first grows by one level,
/// which allocates one more block (impossible at [`MAX_DEPTH`]). After the
/// splits, the path to the leaf goes through old or new nodes only, so
/// fixing the index keys on it touches nothing new. Without a split, a call
/// may also merge the leaf's first extent into the previous leaf: the path
/// plus that leaf, `depth + 1`. Removing an emptied leaf modifies one
/// ancestor and frees blocks (see [`max_freed_blocks`]); moving the root's
/// only child up into the root modifies no block. Hence `2 * depth + 1`,
/// and `2 * MAX_DEPTH` at the maximum depth. The depth grows by at most one
/// per call: recompute it before each call.
pub const fn max_touched_blocks(depth: u16) -> u32 {
    if depth >= MAX_DEPTH {
        2 * MAX_DEPTH as u32
    } else {
        2 * depth as u32 + 1
    }
}

/// The worst-case number of node blocks one call of [`set_range`] or
/// [`shift`] on a tree of depth `depth` frees, for reserving revoke
/// credits: the path below the root when the last extent of a leaf goes,
/// and the nodes whose entries move up into the root when the tree then
/// loses levels (each at most `depth`).
pub const fn max_freed_blocks(depth: u16) -> u32 {
    if depth >= MAX_DEPTH {
        2 * MAX_DEPTH as u32
    } else {
        2 * depth as u32
    }
}

/// A raw 24-byte entry.
type Raw = [u8; ENTRY_SIZE];

fn raw_of(b: &[u8]) -> Raw {
    let mut r = [0u8; ENTRY_SIZE];
    if let Some(s) = b.get(..ENTRY_SIZE) {
        r.copy_from_slice(s);
    }
    r
}

fn raw_extent(e: &Extent) -> Raw {
    let mut r = [0u8; ENTRY_SIZE];
    e.encode(&mut r);
    r
}

fn raw_index(e: &IndexEntry) -> Raw {
    let mut r = [0u8; ENTRY_SIZE];
    e.encode(&mut r);
    r
}

/// Whether `b` continues `a` logically and physically, with the same flags,
/// and the two fit in one extent.
fn mergeable(a: &Extent, b: &Extent) -> bool {
    a.flags == b.flags
        && a.lend() == b.lblk
        && a.pblk.checked_add(u64::from(a.len)) == Some(b.pblk)
        && a.len
            .checked_add(b.len)
            .is_some_and(|l| l <= MAX_EXTENT_LEN)
}

/// Where a node's header and entries are in its buffer.
#[derive(Clone, Copy)]
struct Layout {
    hdr: usize,
    base: usize,
    cap: usize,
}

impl Layout {
    fn entries_end(&self, n: usize) -> usize {
        self.base + n * ENTRY_SIZE
    }
}

/// The number of entries in a node buffer.
fn count_of(buf: &[u8], lay: Layout) -> usize {
    usize::from(get_u16(buf, lay.hdr))
}

/// Replaces entries `[s, t)` of the node in `buf` by `new`. Checks
/// everything first and changes nothing on error (the node does not have
/// `expect` entries, or the result would not fit).
fn splice_buf(
    buf: &mut [u8],
    lay: Layout,
    expect: usize,
    s: usize,
    t: usize,
    new: &[Raw],
) -> Result<(), FormatError> {
    let n = count_of(buf, lay);
    if n != expect || s > t || t > n {
        return Err(INTERNAL);
    }
    let new_n = n - (t - s) + new.len();
    let count = u16::try_from(new_n).map_err(|_| INTERNAL)?;
    if new_n > lay.cap || lay.entries_end(lay.cap.max(n)) > buf.len() {
        return Err(INTERNAL);
    }
    // All ranges below are inside base..base + cap * ENTRY_SIZE <= len.
    let tail = lay.entries_end(t)..lay.entries_end(n);
    buf.copy_within(tail, lay.entries_end(s + new.len()));
    for (k, r) in new.iter().enumerate() {
        let off = lay.entries_end(s + k);
        if let Some(d) = buf.get_mut(off..off + ENTRY_SIZE) {
            d.copy_from_slice(r);
        }
    }
    if new_n < n {
        if let Some(d) = buf.get_mut(lay.entries_end(new_n)..lay.entries_end(n)) {
            d.fill(0);
        }
    }
    put_u16(buf, lay.hdr, count);
    Ok(())
}

/// At most 5 extents: what replaces a stretch of a leaf.
#[derive(Clone, Copy)]
struct Small {
    e: [Extent; 5],
    n: usize,
}

const NO_EXTENT: Extent = Extent {
    lblk: 0,
    pblk: 0,
    len: 0,
    flags: 0,
};

impl Small {
    fn new() -> Small {
        Small {
            e: [NO_EXTENT; 5],
            n: 0,
        }
    }

    fn as_slice(&self) -> &[Extent] {
        self.e.get(..self.n).unwrap_or(&[])
    }

    fn first(&self) -> Option<Extent> {
        self.as_slice().first().copied()
    }

    fn last(&self) -> Option<Extent> {
        self.as_slice().last().copied()
    }

    fn push(&mut self, x: Extent) -> Result<(), FormatError> {
        *self.e.get_mut(self.n).ok_or(INTERNAL)? = x;
        self.n += 1;
        Ok(())
    }

    /// Pushes `x`, merged into the last extent if it continues it.
    fn push_merging(&mut self, x: Extent) -> Result<(), FormatError> {
        if let Some(last) = self.n.checked_sub(1).and_then(|i| self.e.get_mut(i)) {
            if mergeable(last, &x) {
                last.len += x.len;
                return Ok(());
            }
        }
        self.push(x)
    }
}

/// Pieces of the old mapping a step replaced.
struct Pieces {
    e: [Extent; MAX_REPLACED],
    n: usize,
}

impl Pieces {
    fn as_slice(&self) -> &[Extent] {
        self.e.get(..self.n).unwrap_or(&[])
    }
}

/// What one step of [`set_range`] does to its leaf: entries `[s, t)` become
/// `list`; logical blocks `[lblk, stop)` are handled.
struct Plan {
    s: usize,
    t: usize,
    list: Small,
    pieces: Pieces,
    stop: u64,
    unchanged: bool,
}

/// Restarts of one step (a split or growth each), with a wide margin.
const MAX_RESTARTS: usize = 2 * LEVELS + 2;

/// Entries copied at a time when splitting a node (through the stack: a
/// whole node does not fit there).
const COPY_CHUNK: usize = 8;

/// A tree being changed: the store, the root in the inode, the owner.
struct Tree<'a, S: NodeStoreMut> {
    s: &'a mut S,
    root: &'a mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    geo: Geometry,
}

impl<'a, S: NodeStoreMut> Tree<'a, S> {
    fn new(s: &'a mut S, root: &'a mut [u8; INODE_ROOT_SIZE], owner: u64) -> Self {
        let geo = *s.geometry();
        Tree {
            s,
            root,
            owner,
            geo,
        }
    }

    fn layout(&self, loc: Loc) -> Layout {
        match loc {
            Loc::Root => Layout {
                hdr: 0,
                base: ROOT_HEADER_SIZE,
                cap: ROOT_ENTRIES,
            },
            Loc::Block(_) => Layout {
                hdr: NODE_HEADER_OFFSET,
                base: NODE_ENTRIES_OFFSET,
                cap: self.geo.node_capacity(),
            },
        }
    }

    fn descend(&mut self, lblk: u64) -> Result<Path, S::Error> {
        descend(self.s, self.root, self.owner, lblk)
    }

    fn ext(&mut self, loc: Loc, i: usize) -> Result<Extent, S::Error> {
        loc.place(self.root).extent(self.s, i)
    }

    fn index(&mut self, loc: Loc, i: usize) -> Result<IndexEntry, S::Error> {
        loc.place(self.root).index(self.s, i)
    }

    /// Entry `i` of a node, raw (the node was verified on the way down).
    fn raw(&mut self, loc: Loc, i: usize) -> Result<Raw, S::Error> {
        let base = self.layout(loc).base;
        match loc {
            Loc::Root => Ok(raw_of(entry(self.root, base, i))),
            Loc::Block(b) => self.s.read(b, |buf| raw_of(entry(buf, base, i))),
        }
    }

    /// Changes a node with `f` (given the buffer and the node's layout) and
    /// re-seals it if it is a block.
    fn edit(
        &mut self,
        loc: Loc,
        f: impl FnOnce(&mut [u8], Layout) -> Result<(), FormatError>,
    ) -> Result<(), S::Error> {
        let lay = self.layout(loc);
        match loc {
            Loc::Root => Ok(f(self.root, lay)?),
            Loc::Block(b) => {
                let geo = self.geo;
                self.s.modify(b, |buf| {
                    let r = f(buf, lay);
                    geo.seal_block(buf, magic::EXTENT, b);
                    r
                })??;
                Ok(())
            }
        }
    }

    fn splice(
        &mut self,
        loc: Loc,
        expect: usize,
        s: usize,
        t: usize,
        new: &[Raw],
    ) -> Result<(), S::Error> {
        self.edit(loc, |buf, lay| splice_buf(buf, lay, expect, s, t, new))
    }

    fn alloc(&mut self, goal: u64) -> Result<u64, S::Error> {
        let b = self.s.alloc(goal)?;
        if !self.geo.is_data_block(b) {
            return Err(TreeError::BadAlloc { blk: b }.into());
        }
        Ok(b)
    }

    /// Sets the key of the path's entry at level `l` to `v`, and at the
    /// levels above as long as the path follows their first entry (so that
    /// `v` is also the lowest key of those subtrees). `v` must be the first
    /// logical block of the subtree (or a lower bound of it that is above
    /// everything to its left): every key it replaces then stays valid.
    fn set_keys_up(&mut self, path: &Path, l: usize, v: u64) -> Result<(), S::Error> {
        let mut l = l;
        loop {
            let lv = path.at(l)?;
            let i = lv.idx;
            if self.index(lv.loc, i)?.lblk != v {
                self.edit(lv.loc, |buf, lay| {
                    if i >= count_of(buf, lay) {
                        return Err(INTERNAL);
                    }
                    put_u64(buf, lay.entries_end(i), v);
                    Ok(())
                })?;
            }
            if i != 0 || l == 0 {
                return Ok(());
            }
            l -= 1;
        }
    }

    /// Computes what one step of `set_range` does in the leaf of `path`.
    fn plan(
        &mut self,
        path: &Path,
        lblk: u64,
        end: u64,
        map: Option<(u64, u32)>,
        merge: bool,
    ) -> Result<Plan, S::Error> {
        let leaf = path.leaf()?;
        let (loc, n) = (leaf.loc, leaf.n);
        let i0 = first_ending_after(self.s, loc.place(self.root), n, lblk)?;
        let mut stop = end.min(leaf.hi);
        if map.is_some() {
            stop = stop.min(lblk.saturating_add(u64::from(MAX_EXTENT_LEN)));
        }
        if stop <= lblk {
            return Err(BAD_ORDER.into());
        }
        let mut pieces = Pieces {
            e: [NO_EXTENT; MAX_REPLACED],
            n: 0,
        };
        let (mut first, mut last) = (None, None);
        let mut prev_end = 0u64;
        let mut i1 = i0;
        while i1 < n {
            let e = self.ext(loc, i1)?;
            if e.lblk >= stop {
                break;
            }
            if pieces.n == MAX_REPLACED {
                stop = e.lblk;
                break;
            }
            if e.lblk < prev_end {
                return Err(BAD_ORDER.into());
            }
            prev_end = e.lend();
            first.get_or_insert(e);
            last = Some(e);
            // Later extents start after this one ends, so a later (smaller)
            // `stop` never cuts this piece.
            let from = e.lblk.max(lblk);
            let to = e.lend().min(stop);
            *pieces.e.get_mut(pieces.n).ok_or(INTERNAL)? = Extent {
                lblk: from,
                pblk: e.pblk + (from - e.lblk),
                len: u32::try_from(to - from).map_err(|_| INTERNAL)?,
                flags: e.flags,
            };
            pieces.n += 1;
            i1 += 1;
        }
        // The middle: what is left of the first and last old extents, and
        // the new one.
        let mut mid = Small::new();
        if let Some(f) = first {
            if f.lblk < lblk {
                mid.push(Extent {
                    len: u32::try_from(lblk - f.lblk).map_err(|_| INTERNAL)?,
                    ..f
                })?;
            }
        }
        if let Some((pblk, flags)) = map {
            mid.push(Extent {
                lblk,
                pblk,
                len: u32::try_from(stop - lblk).map_err(|_| INTERNAL)?,
                flags,
            })?;
        }
        if let Some(l) = last {
            if l.lend() > stop {
                mid.push(Extent {
                    lblk: stop,
                    pblk: l.pblk + (stop - l.lblk),
                    len: u32::try_from(l.lend() - stop).map_err(|_| INTERNAL)?,
                    flags: l.flags,
                })?;
            }
        }
        // The neighbours join when they continue the middle.
        let (mut s, mut t) = (i0, i1);
        let mut list = Small::new();
        if merge {
            if let (Some(m0), true) = (mid.first(), s > 0) {
                let left = self.ext(loc, s - 1)?;
                if mergeable(&left, &m0) {
                    list.push(left)?;
                    s -= 1;
                }
            }
            for &x in mid.as_slice() {
                list.push_merging(x)?;
            }
            if let (Some(ml), true) = (list.last(), t < n) {
                let right = self.ext(loc, t)?;
                if mergeable(&ml, &right) {
                    list.push_merging(right)?;
                    t += 1;
                }
            }
        } else {
            list = mid;
        }
        let mut unchanged = list.n == t - s;
        if unchanged {
            for (k, x) in list.as_slice().iter().enumerate() {
                if self.ext(loc, s + k)? != *x {
                    unchanged = false;
                    break;
                }
            }
        }
        Ok(Plan {
            s,
            t,
            list,
            pieces,
            stop,
            unchanged,
        })
    }

    /// One step of `set_range`: handles `[lblk, stop)` for some `stop` in
    /// `(lblk, end]` within one leaf, and returns the plan it carried out.
    fn range_step(
        &mut self,
        lblk: u64,
        end: u64,
        map: Option<(u64, u32)>,
        merge: bool,
    ) -> Result<Plan, S::Error> {
        let mut restructured = false;
        for _ in 0..MAX_RESTARTS {
            let path = self.descend(lblk)?;
            let plan = self.plan(&path, lblk, end, map, merge)?;
            let leaf = path.leaf()?;
            let new_n = (leaf.n - (plan.t - plan.s)) + plan.list.n;
            if new_n > self.layout(leaf.loc).cap {
                self.make_room(&path, &plan, lblk)?;
                restructured = true;
                continue;
            }
            if plan.unchanged {
                return Ok(plan);
            }
            let mut shrank = new_n < leaf.n;
            if new_n == 0 && leaf.loc != Loc::Root {
                self.remove_leaf(&path)?;
            } else {
                self.apply(&path, &plan)?;
                // The first extent of the leaf may continue the last one of
                // the previous leaf (a file filled from left to right). Not
                // after a split: the previous leaf would be one block more
                // than the credits allow for.
                if merge && !restructured && plan.s == 0 && plan.list.n > 0 {
                    shrank |= self.merge_into_prev_leaf(&path, new_n)?;
                }
            }
            if shrank {
                self.shrink()?;
            }
            return Ok(plan);
        }
        Err(INTERNAL.into())
    }

    /// The last extent of the leaf to the left of the path's leaf, if any:
    /// its block, its number of entries, the extent.
    fn prev_leaf_last(&mut self, path: &Path) -> Result<Option<(u64, usize, Extent)>, S::Error> {
        let mut up = None;
        for l in (0..path.leaf).rev() {
            if path.at(l)?.idx > 0 {
                up = Some(l);
                break;
            }
        }
        let Some(l) = up else {
            return Ok(None);
        };
        let lv = path.at(l)?;
        // Everything to the left ends at or before this key.
        let bound = self.index(lv.loc, lv.idx)?.lblk;
        let mut child = self.index(lv.loc, lv.idx - 1)?.child;
        for k in l + 1..=path.leaf {
            let h = read_node_header(self.s, child, depth_at(path.leaf, k)?, self.owner)?.header;
            let last = usize::from(h.entries).checked_sub(1).ok_or(INTERNAL)?;
            if k == path.leaf {
                let e = self.ext(Loc::Block(child), last)?;
                if e.lend() > bound {
                    return Err(BAD_ORDER.into());
                }
                return Ok(Some((child, last + 1, e)));
            }
            child = self.index(Loc::Block(child), last)?.child;
        }
        Ok(None)
    }

    /// Merges the first extent of the path's leaf (which has `n` entries)
    /// into the last extent of the previous leaf if it continues it.
    /// Returns whether it did. Touches the path and the previous leaf.
    fn merge_into_prev_leaf(&mut self, path: &Path, n: usize) -> Result<bool, S::Error> {
        let leaf = path.leaf()?;
        if leaf.loc == Loc::Root || path.leftmost() {
            return Ok(false);
        }
        let first = self.ext(leaf.loc, 0)?;
        let Some((pb, pn, prev)) = self.prev_leaf_last(path)? else {
            return Ok(false);
        };
        if !mergeable(&prev, &first) {
            return Ok(false);
        }
        // Take the extent out of this leaf first (raising its keys): then
        // the previous leaf may grow into its range.
        if n == 1 {
            self.remove_leaf(path)?;
        } else {
            self.splice(leaf.loc, n, 0, 1, &[])?;
            let v = self.ext(leaf.loc, 0)?.lblk;
            self.set_keys_up(path, path.leaf - 1, v)?;
        }
        let merged = Extent {
            len: prev.len + first.len,
            ..prev
        };
        let last = pn - 1;
        self.edit(Loc::Block(pb), |buf, lay| {
            if count_of(buf, lay) != pn {
                return Err(INTERNAL);
            }
            let off = lay.entries_end(last);
            let e = buf.get_mut(off..off + ENTRY_SIZE).ok_or(INTERNAL)?;
            merged.encode(e);
            Ok(())
        })?;
        Ok(true)
    }

    /// While the root is an index with one entry whose child's entries fit
    /// in the root, moves them up and frees the child (the tree loses a
    /// level). Modifies no node block.
    fn shrink(&mut self) -> Result<(), S::Error> {
        loop {
            let rh = decode_root(self.root)?;
            if rh.depth == 0 || rh.entries != 1 {
                return Ok(());
            }
            let child = self.index(Loc::Root, 0)?.child;
            let h = read_node_header(self.s, child, rh.depth - 1, self.owner)?.header;
            let n = usize::from(h.entries);
            if n > ROOT_ENTRIES {
                return Ok(());
            }
            let mut ents = [0u8; ROOT_ENTRIES * ENTRY_SIZE];
            let size = n * ENTRY_SIZE;
            self.s.read(child, |buf| {
                if let (Some(d), Some(src)) = (
                    ents.get_mut(..size),
                    buf.get(NODE_ENTRIES_OFFSET..NODE_ENTRIES_OFFSET + size),
                ) {
                    d.copy_from_slice(src);
                }
            })?;
            self.root.fill(0);
            RootHeader {
                entries: h.entries,
                max: rh.max,
                depth: h.depth,
            }
            .encode(self.root);
            if let Some(d) = self.root.get_mut(ROOT_HEADER_SIZE..) {
                d.copy_from_slice(&ents);
            }
            self.s.free(child)?;
        }
    }

    /// Writes a plan into its leaf (which has room, and keeps entries) and
    /// keeps the index keys above it equal to the leaf's first extent.
    fn apply(&mut self, path: &Path, plan: &Plan) -> Result<(), S::Error> {
        let leaf = path.leaf()?;
        let mut raws = [[0u8; ENTRY_SIZE]; 5];
        for (r, x) in raws.iter_mut().zip(plan.list.as_slice()) {
            *r = raw_extent(x);
        }
        let raws = raws.get(..plan.list.n).ok_or(INTERNAL)?;
        let keyed = plan.s == 0 && leaf.loc != Loc::Root;
        let (new_first, key) = if keyed {
            let new_first = match plan.list.first() {
                Some(x) => x.lblk,
                None => self.ext(leaf.loc, plan.t)?.lblk,
            };
            (new_first, path.leaf_key())
        } else {
            (0, 0)
        };
        // A lower key goes in first (it is valid before the extent arrives),
        // a higher one after (it is valid only once the extents below it
        // are gone): every intermediate state is a valid tree.
        if keyed && new_first < key {
            self.set_keys_up(path, path.leaf - 1, new_first)?;
        }
        self.splice(leaf.loc, leaf.n, plan.s, plan.t, raws)?;
        if keyed && new_first > key {
            self.set_keys_up(path, path.leaf - 1, new_first)?;
        }
        Ok(())
    }

    /// Removes the (non-root) leaf of `path`, whose extents all go, with the
    /// ancestors it leaves empty; the tree returns to an empty root when
    /// nothing is left.
    fn remove_leaf(&mut self, path: &Path) -> Result<(), S::Error> {
        let mut keep = None;
        for l in (0..path.leaf).rev() {
            if path.at(l)?.n >= 2 {
                keep = Some(l);
                break;
            }
        }
        let first_gone = match keep {
            Some(l) => {
                let lv = path.at(l)?;
                self.splice(lv.loc, lv.n, lv.idx, lv.idx + 1, &[])?;
                if lv.idx == 0 && l > 0 {
                    let v = self.index(lv.loc, 0)?.lblk;
                    self.set_keys_up(path, l - 1, v)?;
                }
                l + 1
            }
            None => {
                self.root.fill(0);
                RootHeader::empty().encode(self.root);
                1
            }
        };
        for l in first_gone..=path.leaf {
            if let Loc::Block(b) = path.at(l)?.loc {
                self.s.free(b)?;
            }
        }
        Ok(())
    }

    /// Makes room for a plan that does not fit its leaf: splits the highest
    /// full node below the deepest ancestor with room, or grows the tree
    /// when every node of the path is full. The caller starts over.
    fn make_room(&mut self, path: &Path, plan: &Plan, lblk: u64) -> Result<(), S::Error> {
        for l in (0..path.leaf).rev() {
            let lv = path.at(l)?;
            if lv.n < self.layout(lv.loc).cap {
                return self.split(path, l + 1, plan, lblk);
            }
        }
        self.grow()
    }

    /// Moves the root's entries into a new block and makes the root an
    /// index with that one entry (the tree gains a level).
    fn grow(&mut self) -> Result<(), S::Error> {
        let rh = decode_root(self.root)?;
        if rh.depth >= MAX_DEPTH {
            return Err(TreeError::TooDeep.into());
        }
        let n = usize::from(rh.entries);
        let first = self.raw(Loc::Root, 0)?;
        // Entry offset 8 is the pblk of an extent or the child of an index
        // entry: a good place for the new node either way.
        let goal = get_u64(&first, 8);
        let key = get_u64(&first, 0);
        let blk = self.alloc(goal)?;
        let h = RootHeader {
            entries: rh.entries,
            max: u16::try_from(self.geo.node_capacity()).map_err(|_| INTERNAL)?,
            depth: rh.depth,
        };
        let (geo, owner) = (self.geo, self.owner);
        let src = self
            .root
            .get(ROOT_HEADER_SIZE..ROOT_HEADER_SIZE + n * ENTRY_SIZE)
            .ok_or(INTERNAL)?;
        let r = self.s.modify(blk, |buf| {
            encode_node_header(buf, &h, owner);
            if let Some(d) = buf.get_mut(NODE_ENTRIES_OFFSET..NODE_ENTRIES_OFFSET + src.len()) {
                d.copy_from_slice(src);
            }
            geo.seal_block(buf, magic::EXTENT, blk);
        });
        if let Err(e) = r {
            // Best effort: the block is not referenced yet.
            let _ = self.s.free(blk);
            return Err(e);
        }
        self.root.fill(0);
        RootHeader {
            entries: 1,
            max: rh.max,
            depth: rh.depth + 1,
        }
        .encode(self.root);
        let ie = IndexEntry {
            lblk: key,
            child: blk,
        };
        ie.encode(entry_mut_root(self.root, 0));
        Ok(())
    }

    /// Splits the full node at level `l` of `path` into two; its parent has
    /// room for the new sibling's entry.
    fn split(&mut self, path: &Path, l: usize, plan: &Plan, lblk: u64) -> Result<(), S::Error> {
        let x = path.at(l)?;
        let parent = path.at(l.checked_sub(1).ok_or(INTERNAL)?)?;
        let Loc::Block(xb) = x.loc else {
            return Err(INTERNAL.into());
        };
        let n = x.n;
        let rightmost = x.hi == u64::MAX;
        // Appending at the right edge of the tree (the usual way files
        // grow) splits at the insertion point so that nodes stay full;
        // anything else splits in the middle.
        let (at, key) = if l == path.leaf {
            if rightmost && plan.t == n && plan.s >= n / 2 {
                let at = plan.s.min(n - 1);
                // Entries before `at` end at or before lblk (they are left
                // of the plan), so lblk is a valid key and sends lblk right.
                (at, self.ext(x.loc, at)?.lblk.min(lblk))
            } else {
                (n / 2, self.ext(x.loc, n / 2)?.lblk)
            }
        } else {
            let at = if rightmost && x.idx + 1 == n {
                n - 1
            } else {
                n / 2
            };
            (at, self.index(x.loc, at)?.lblk)
        };
        if at == 0 || at >= n {
            return Err(INTERNAL.into());
        }
        let h = RootHeader {
            entries: u16::try_from(n - at).map_err(|_| INTERNAL)?,
            max: u16::try_from(self.geo.node_capacity()).map_err(|_| INTERNAL)?,
            depth: depth_at(path.leaf, l)?,
        };
        let y = self.alloc(xb)?;
        if let Err(e) = self.fill_sibling(xb, y, at, n, &h) {
            let _ = self.s.free(y);
            return Err(e);
        }
        // Parent first, then the old node: in between, the moved entries
        // are in both nodes (a tree that fails to verify, rather than one
        // that silently lost them).
        let ie = raw_index(&IndexEntry {
            lblk: key,
            child: y,
        });
        self.splice(parent.loc, parent.n, parent.idx + 1, parent.idx + 1, &[ie])?;
        self.splice(x.loc, n, at, n, &[])
    }

    /// Writes the new node `y`: header `h` and entries `[at, n)` of `x`.
    fn fill_sibling(
        &mut self,
        x: u64,
        y: u64,
        at: usize,
        n: usize,
        h: &RootHeader,
    ) -> Result<(), S::Error> {
        let (geo, owner) = (self.geo, self.owner);
        self.s.modify(y, |buf| {
            encode_node_header(buf, h, owner);
            geo.seal_block(buf, magic::EXTENT, y);
        })?;
        let mut k = at;
        while k < n {
            let m = (n - k).min(COPY_CHUNK);
            let mut tmp = [[0u8; ENTRY_SIZE]; COPY_CHUNK];
            self.s.read(x, |buf| {
                for (j, r) in tmp.iter_mut().take(m).enumerate() {
                    *r = raw_of(entry(buf, NODE_ENTRIES_OFFSET, k + j));
                }
            })?;
            let dst = k - at;
            self.s.modify(y, |buf| {
                for (j, r) in tmp.iter().take(m).enumerate() {
                    let off = NODE_ENTRIES_OFFSET + (dst + j) * ENTRY_SIZE;
                    if let Some(d) = buf.get_mut(off..off + ENTRY_SIZE) {
                        d.copy_from_slice(r);
                    }
                }
                geo.seal_block(buf, magic::EXTENT, y);
            })?;
            k += m;
        }
        Ok(())
    }
}

/// Entry `i` of the root, mutable.
fn entry_mut_root(root: &mut [u8; INODE_ROOT_SIZE], i: usize) -> &mut [u8] {
    let off = ROOT_HEADER_SIZE + i * ENTRY_SIZE;
    root.get_mut(off..off + ENTRY_SIZE).unwrap_or(&mut [])
}

/// Checks a new mapping of `len` blocks at `lblk`; returns the end of the
/// logical range.
fn check_range(
    geo: &Geometry,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
) -> Result<u64, TreeError> {
    let end = lblk
        .checked_add(len)
        .filter(|&e| e <= max_lblk(geo))
        .ok_or(TreeError::OutOfRange { lblk, len })?;
    if let Some((pblk, flags)) = map {
        if flags & !extent_flags::KNOWN != 0 || !geo.is_data_range(pblk, len) {
            return Err(TreeError::BadMapping { pblk, flags });
        }
    }
    Ok(end)
}

/// Makes logical blocks `[lblk, lblk + len)` map to `map`: `Some((pblk,
/// flags))` maps them to the physical blocks `[pblk, pblk + len)` with
/// [`extent_flags`] `flags`, `None` makes them a hole; whatever they mapped
/// before is replaced. This is the one operation behind writes (mapping
/// new blocks), fallocate (unwritten), unwritten-to-written conversion,
/// copy-on-write, punching holes and truncating.
///
/// **One call does a bounded amount of work**: it handles a prefix
/// `[lblk, lblk + done)` of the range inside one leaf, at most
/// [`MAX_REPLACED`] old extents, modifying or allocating at most
/// [`max_touched_blocks`] node blocks and freeing at most
/// [`max_freed_blocks`], and returns `done` (at least 1 when `len` is not
/// 0). The caller calls again for `[lblk + done, lblk + len)` (mapping to
/// `pblk + done`), restarting or extending its transaction in between as
/// needed; [`set_range_all`] loops for callers that need not. After every
/// call the tree is valid and maps the prefix as asked; a mapping longer
/// than [`MAX_EXTENT_LEN`] or crossing a leaf's key range ends up as
/// several extents.
///
/// **The `replaced` callback** is called once per *piece* of the previous
/// mapping inside the handled prefix, after the tree has been changed, in
/// logical order: each piece is the part of one old extent inside
/// `[lblk, lblk + done)` (lblk, pblk, len and flags of that part). The
/// pieces are disjoint and cover exactly the blocks of the prefix that were
/// mapped before; holes produce none. The tree itself never touches
/// reference counts or data blocks: the caller has already referenced the
/// new mapping's blocks, and each piece is a reference the tree no longer
/// holds, which the caller drops (punch and truncate free the blocks,
/// copy-on-write drops one reference to shared ones). A piece is reported
/// even when the new mapping maps the same blocks again (converting
/// unwritten to written, or setting an unchanged mapping): such a piece has
/// `piece.pblk == pblk + (piece.lblk - lblk)`, and a caller that did not
/// take a new reference for those blocks must recognise it and keep them.
/// If `replaced` fails, the call stops and returns its error with the tree
/// already changed; the pieces not yet reported are leaked (never doubly
/// referenced), and the caller should treat it as a filesystem error.
///
/// Adjacent extents that continue each other physically with the same
/// flags are merged (up to [`MAX_EXTENT_LEN`]): within the leaf, and a new
/// first extent of a leaf into the last extent of the previous leaf (so a
/// file filled from left to right ends up as few extents as possible; the
/// other way round, two such extents may stay apart across a leaf
/// boundary). A full leaf splits (in the middle, or at the insertion point
/// when appending at the right edge of the tree, which keeps appended files
/// in full nodes); the tree grows through the root when every node on the
/// path is full. An emptied leaf is freed along with the index nodes it
/// empties, and the tree loses levels when the root's only child fits in
/// the root; an empty tree is an empty leaf root. Index keys stay equal to
/// the first logical block of their subtrees.
///
/// Errors: [`TreeError`] for a range past [`max_lblk`], a mapping outside
/// the data region or with unknown flags, or a tree that would exceed
/// [`MAX_DEPTH`] (the tree is then unchanged); [`FormatError`] for
/// corruption; the store's own errors. A store error in the middle of a
/// split can leave the tree inconsistent: in the kernel the journal handle
/// must then not commit (as for any failure inside a jbd2 transaction).
pub fn set_range<S: NodeStoreMut>(
    store: &mut S,
    root: &mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
    mut replaced: impl FnMut(Extent) -> Result<(), S::Error>,
) -> Result<u64, S::Error> {
    if len == 0 {
        return Ok(0);
    }
    let end = check_range(store.geometry(), lblk, len, map)?;
    let plan = Tree::new(store, root, owner).range_step(lblk, end, map, true)?;
    for &p in plan.pieces.as_slice() {
        replaced(p)?;
    }
    Ok(plan.stop - lblk)
}

/// [`set_range`] over the whole range, calling it until it is done (for
/// callers whose transaction is not bounded, such as the host tools).
pub fn set_range_all<S: NodeStoreMut>(
    store: &mut S,
    root: &mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    lblk: u64,
    len: u64,
    map: Option<(u64, u32)>,
    mut replaced: impl FnMut(Extent) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    check_range(store.geometry(), lblk, len, map)?;
    let mut done = 0u64;
    while done < len {
        let m = map.map(|(p, f)| (p + done, f));
        let n = set_range(
            store,
            root,
            owner,
            lblk + done,
            len - done,
            m,
            &mut replaced,
        )?;
        if n == 0 {
            return Err(INTERNAL.into());
        }
        done += n;
    }
    Ok(())
}

/// A shift of extents in progress (`FALLOC_FL_COLLAPSE_RANGE` and
/// `FALLOC_FL_INSERT_RANGE`), carried out by calls of [`shift`], each of
/// bounded work like [`set_range`]. Between calls the tree is valid: the
/// extents already moved are in their new place, the others in their old
/// one. Keep it across transactions; it remembers where to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shift {
    from: u64,
    delta: u64,
    right: bool,
    /// Left: the next logical block to move from. Right: moved extents are
    /// those that started at or after this (before the shift).
    next: u64,
    /// Right: the extent straddling `from` has been split (or there was
    /// none).
    split: bool,
    done: bool,
}

impl Shift {
    /// Moves every extent that starts at or after `from` down by `delta`
    /// blocks (collapse). The caller guarantees that `[from - delta, from)`
    /// is a hole (it punches it first); [`shift`] checks it and returns
    /// [`TreeError::NotAHole`] otherwise. An extent that becomes adjacent
    /// to and continues the one before it in the same leaf merges with it.
    pub fn left(from: u64, delta: u64) -> Shift {
        Shift {
            from,
            delta,
            right: false,
            next: from,
            split: true,
            done: delta == 0,
        }
    }

    /// Moves every extent that starts at or after `from` up by `delta`
    /// blocks (insert), first splitting an extent that straddles `from`, so
    /// that `[from, from + delta)` becomes a hole. [`shift`] returns
    /// [`TreeError::OutOfRange`] (and changes nothing) if the last extent
    /// would end past [`max_lblk`].
    pub fn right(from: u64, delta: u64) -> Shift {
        Shift {
            from,
            delta,
            right: true,
            next: u64::MAX,
            split: false,
            done: delta == 0,
        }
    }

    /// Whether the shift is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Does one bounded step of a [`Shift`] (one leaf, or splitting the extent
/// that straddles `from`): at most [`max_touched_blocks`] node blocks
/// modified or allocated and [`max_freed_blocks`] freed (when a merge
/// empties a leaf), no mapping replaced (the extents keep their physical
/// blocks). Returns `true` when the shift is complete. Index keys move with
/// the extents (each stays equal to the first logical block of its
/// subtree).
pub fn shift<S: NodeStoreMut>(
    store: &mut S,
    root: &mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    sh: &mut Shift,
) -> Result<bool, S::Error> {
    if sh.done {
        return Ok(true);
    }
    let mut t = Tree::new(store, root, owner);
    let done = if sh.right {
        t.shift_right_step(sh)?
    } else {
        t.shift_left_step(sh)?
    };
    sh.done = done;
    Ok(done)
}

/// [`shift`] until the shift is complete.
pub fn shift_all<S: NodeStoreMut>(
    store: &mut S,
    root: &mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    mut sh: Shift,
) -> Result<(), S::Error> {
    while !shift(store, root, owner, &mut sh)? {}
    Ok(())
}

impl<S: NodeStoreMut> Tree<'_, S> {
    /// Adds `delta` to (or subtracts it from) the `lblk` of entries `[j, m)`
    /// of a leaf, which were checked to stay in order and in range.
    fn move_extents(
        &mut self,
        loc: Loc,
        n: usize,
        j: usize,
        m: usize,
        delta: u64,
        up: bool,
    ) -> Result<(), S::Error> {
        self.edit(loc, |buf, lay| {
            if count_of(buf, lay) != n || m > n {
                return Err(INTERNAL);
            }
            for i in j..m {
                let off = lay.entries_end(i);
                let v = get_u64(buf, off);
                let v = if up {
                    v.checked_add(delta)
                } else {
                    v.checked_sub(delta)
                };
                put_u64(buf, off, v.ok_or(INTERNAL)?);
            }
            Ok(())
        })
    }

    fn shift_left_step(&mut self, sh: &mut Shift) -> Result<bool, S::Error> {
        let delta = sh.delta;
        let mut pos = sh.next;
        let dest = pos.checked_sub(delta).ok_or(TreeError::OutOfRange {
            lblk: pos,
            len: delta,
        })?;
        match lookup(self.s, self.root, self.owner, dest)? {
            Mapping::Hole { end } if end >= pos => {}
            Mapping::Hole { end } => return Err(TreeError::NotAHole { lblk: end }.into()),
            Mapping::Mapped(_) => return Err(TreeError::NotAHole { lblk: dest }.into()),
        }
        // The leaf holding the first extent at or after pos. (Moving pos
        // to the next leaf's key keeps [pos - delta, pos) a hole: nothing
        // starts in between.)
        let mut found = None;
        for _ in 0..3 {
            let path = self.descend(pos)?;
            let leaf = path.leaf()?;
            let j = first_starting_at(self.s, leaf.loc.place(self.root), leaf.n, pos)?;
            if j < leaf.n {
                found = Some((path, j));
                break;
            }
            if leaf.hi == u64::MAX {
                return Ok(true);
            }
            if leaf.hi <= pos {
                return Err(BAD_ORDER.into());
            }
            pos = leaf.hi;
        }
        let (path, j) = found.ok_or(INTERNAL)?;
        let leaf = path.leaf()?;
        let (loc, n) = (leaf.loc, leaf.n);
        // Check the extents that move (sorted, starting at or after pos).
        let mut prev_end = pos;
        let mut first_moved = None;
        for i in j..n {
            let e = self.ext(loc, i)?;
            if e.lblk < prev_end || e.lend() > leaf.hi {
                return Err(BAD_ORDER.into());
            }
            prev_end = e.lend();
            first_moved.get_or_insert(e);
        }
        let first_moved = first_moved.ok_or(INTERNAL)?;
        let new_first = first_moved.lblk - delta;
        // Lower the keys first: [new_first, pos) is a hole, so new_first is
        // above everything to the left.
        if j == 0 && loc != Loc::Root {
            self.set_keys_up(&path, path.leaf - 1, new_first)?;
        }
        self.move_extents(loc, n, j, n, delta, false)?;
        // The first extent moved may now continue the one before it.
        let merged = if j > 0 {
            let left = self.ext(loc, j - 1)?;
            let moved = Extent {
                lblk: new_first,
                ..first_moved
            };
            if mergeable(&left, &moved) {
                let merged = Extent {
                    len: left.len + moved.len,
                    ..left
                };
                self.splice(loc, n, j - 1, j + 1, &[raw_extent(&merged)])?;
                true
            } else {
                false
            }
        } else {
            self.merge_into_prev_leaf(&path, n)?
        };
        if merged {
            self.shrink()?;
        }
        if leaf.hi == u64::MAX {
            return Ok(true);
        }
        sh.next = leaf.hi;
        Ok(false)
    }

    fn shift_right_step(&mut self, sh: &mut Shift) -> Result<bool, S::Error> {
        let (from, delta) = (sh.from, sh.delta);
        if !sh.split {
            // Refuse a shift that would push the last extent past the
            // largest file before changing anything.
            let path = self.descend(u64::MAX)?;
            let leaf = path.leaf()?;
            if let Some(i) = leaf.n.checked_sub(1) {
                let end = self.ext(leaf.loc, i)?.lend();
                if end > from
                    && end
                        .checked_add(delta)
                        .is_none_or(|e| e > max_lblk(&self.geo))
                {
                    return Err(TreeError::OutOfRange {
                        lblk: from,
                        len: delta,
                    }
                    .into());
                }
            }
            // Then split the extent that straddles `from`, if any.
            sh.split = true;
            if let Mapping::Mapped(e) = lookup(self.s, self.root, self.owner, from)? {
                if e.lblk < from {
                    let tail = (e.pblk + (from - e.lblk), e.flags);
                    self.range_step(from, e.lend(), Some(tail), false)?;
                    return Ok(false);
                }
            }
        }
        let until = sh.next;
        if until <= from {
            return Ok(true);
        }
        let path = self.descend(until - 1)?;
        let leaf = path.leaf()?;
        let (loc, n) = (leaf.loc, leaf.n);
        let m = first_starting_at(self.s, loc.place(self.root), n, until)?;
        if m == 0 {
            // Nothing before `until` here (a key below the leaf's first
            // extent): go on to the left of the key.
            let key = path.leaf_key();
            if path.leftmost() || key <= from || key >= until {
                return Ok(true);
            }
            sh.next = key;
            return Ok(false);
        }
        let j = first_starting_at(self.s, loc.place(self.root), m, from)?;
        if j >= m {
            return Ok(true);
        }
        let mut prev_end = 0u64;
        let mut old_first = None;
        for i in j..m {
            let e = self.ext(loc, i)?;
            if e.lblk < prev_end {
                return Err(BAD_ORDER.into());
            }
            prev_end = e.lend();
            old_first.get_or_insert(e.lblk);
        }
        let old_first = old_first.ok_or(INTERNAL)?;
        let new_end = prev_end.checked_add(delta);
        let limit = max_lblk(&self.geo);
        if new_end.is_none_or(|e| e > limit) {
            return Err(TreeError::OutOfRange {
                lblk: from,
                len: delta,
            }
            .into());
        }
        let bound = if m < n {
            self.ext(loc, m)?.lblk
        } else {
            leaf.hi
        };
        if new_end.is_none_or(|e| e > bound) {
            return Err(BAD_ORDER.into());
        }
        self.move_extents(loc, n, j, m, delta, true)?;
        // Raise the keys after the move (the old keys stay valid lower
        // bounds until then); the next step's leaf is bounded by them.
        if j == 0 && loc != Loc::Root {
            self.set_keys_up(&path, path.leaf - 1, old_first + delta)?;
        }
        if j > 0 || path.leftmost() {
            return Ok(true);
        }
        sh.next = old_first;
        Ok(false)
    }
}

/// Releases a whole tree (truncate to 0, or evicting a deleted inode):
/// reports every extent to `released` in logical order (each is a reference
/// the tree no longer holds, as for [`set_range`]), frees every node block,
/// and leaves an empty leaf root.
///
/// The tree is verified first ([`walk`]): on corruption nothing is changed.
/// Then the root is emptied before anything is released, so an error from
/// `released` or the store leaks the rest rather than leaving a root that
/// points to freed blocks. This modifies no node block, but its frees and
/// reports are not bounded: a caller with a bounded transaction calls
/// [`set_range`] with `None` over the file instead.
pub fn free_all<S: NodeStoreMut>(
    store: &mut S,
    root: &mut [u8; INODE_ROOT_SIZE],
    owner: u64,
    mut released: impl FnMut(Extent) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    walk(store, root, owner, |_| Ok(()))?;
    let old = *root;
    root.fill(0);
    RootHeader::empty().encode(root);
    let mut path = descend(store, &old, owner, 0)?;
    loop {
        let leaf = path.leaf()?;
        let place = leaf.loc.place(&old);
        for i in 0..leaf.n {
            released(place.extent(store, i)?)?;
        }
        if !next_leaf(store, &old, owner, &mut path, |s, b| s.free(b))? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(lblk: u64, pblk: u64, len: u32, flags: u32) -> Extent {
        Extent {
            lblk,
            pblk,
            len,
            flags,
        }
    }

    fn raw(v: u8) -> Raw {
        [v; ENTRY_SIZE]
    }

    /// A node of capacity 6 holding `n` entries filled with 1, 2, ...
    fn node(n: usize) -> ([u8; 8 + 6 * ENTRY_SIZE], Layout) {
        let mut b = [0u8; 8 + 6 * ENTRY_SIZE];
        let lay = Layout {
            hdr: 0,
            base: 8,
            cap: 6,
        };
        for i in 0..n {
            let off = lay.entries_end(i);
            b[off..off + ENTRY_SIZE].copy_from_slice(&raw(i as u8 + 1));
        }
        put_u16(&mut b, 0, n as u16);
        (b, lay)
    }

    fn entries(b: &[u8], lay: Layout) -> std::vec::Vec<u8> {
        (0..count_of(b, lay))
            .map(|i| b[lay.entries_end(i)])
            .collect()
    }

    #[test]
    fn splice_inserts_removes_replaces() {
        let (mut b, lay) = node(3);
        assert!(splice_buf(&mut b, lay, 3, 1, 1, &[raw(9)]).is_ok());
        assert_eq!(entries(&b, lay), [1, 9, 2, 3]);
        assert!(splice_buf(&mut b, lay, 4, 0, 2, &[]).is_ok());
        assert_eq!(entries(&b, lay), [2, 3]);
        // Removed entries are zeroed.
        assert!(b[lay.entries_end(2)..].iter().all(|&c| c == 0));
        assert!(splice_buf(&mut b, lay, 2, 1, 2, &[raw(7), raw(8), raw(9)]).is_ok());
        assert_eq!(entries(&b, lay), [2, 7, 8, 9]);
    }

    #[test]
    fn splice_checks_before_changing() {
        let (mut b, lay) = node(5);
        let before = b;
        // Wrong count, bad ranges, no room: nothing changes.
        assert!(splice_buf(&mut b, lay, 4, 0, 0, &[]).is_err());
        assert!(splice_buf(&mut b, lay, 5, 3, 2, &[]).is_err());
        assert!(splice_buf(&mut b, lay, 5, 4, 6, &[]).is_err());
        assert!(splice_buf(&mut b, lay, 5, 5, 5, &[raw(1), raw(2)]).is_err());
        let mut short = [0u8; 40];
        put_u16(&mut short, 0, 1);
        assert!(splice_buf(&mut short, lay, 1, 1, 1, &[raw(1)]).is_err());
        assert_eq!(b, before);
        assert!(splice_buf(&mut b, lay, 5, 5, 5, &[raw(6)]).is_ok());
        assert_eq!(entries(&b, lay), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn merging_rules() {
        assert!(mergeable(&x(0, 100, 5, 0), &x(5, 105, 3, 0)));
        assert!(!mergeable(&x(0, 100, 5, 0), &x(6, 106, 3, 0)));
        assert!(!mergeable(&x(0, 100, 5, 0), &x(5, 106, 3, 0)));
        assert!(!mergeable(
            &x(0, 100, 5, 0),
            &x(5, 105, 3, extent_flags::UNWRITTEN)
        ));
        let max = MAX_EXTENT_LEN;
        assert!(mergeable(
            &x(0, 100, max - 1, 0),
            &x(u64::from(max) - 1, 100 + u64::from(max) - 1, 1, 0)
        ));
        assert!(!mergeable(
            &x(0, 100, max, 0),
            &x(u64::from(max), 100 + u64::from(max), 1, 0)
        ));
        let mut s = Small::new();
        assert!(s.push_merging(x(0, 100, 5, 0)).is_ok());
        assert!(s.push_merging(x(5, 105, 3, 0)).is_ok());
        assert!(s.push_merging(x(8, 200, 1, 0)).is_ok());
        assert_eq!(s.as_slice(), [x(0, 100, 8, 0), x(8, 200, 1, 0)]);
        for i in 0..3 {
            assert!(s.push(x(20 + i, 300 + 2 * i, 1, 0)).is_ok());
        }
        assert!(s.push(x(30, 400, 1, 0)).is_err());
    }

    #[test]
    fn credit_bounds() {
        assert_eq!(max_touched_blocks(0), 1);
        assert_eq!(max_touched_blocks(1), 3);
        assert_eq!(max_touched_blocks(4), 9);
        assert_eq!(max_touched_blocks(MAX_DEPTH), 10);
        assert_eq!(max_touched_blocks(u16::MAX), 10);
        assert_eq!(max_freed_blocks(0), 0);
        assert_eq!(max_freed_blocks(MAX_DEPTH), 10);
    }
}

/// KUnit: the extent-tree code compiled for the kernel, driven by a few
/// hundred deterministic operations against a per-block model over a small
/// in-memory node store (the host runs the property tests and the worst
/// cases in `tools/common/tests/extent.rs`).
#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_extent)]
mod kunit {
    use super::super::crc32c;
    use super::super::format::{
        extent_flags, FormatError, Geometry, LayoutParams, RootHeader, Superblock, INODE_ROOT_SIZE,
    };
    use super::{
        lookup, max_touched_blocks, set_range, shift, walk, Item, Mapping, NodeStore, NodeStoreMut,
        Shift, TreeError,
    };
    use kernel::alloc::AllocError;
    use kernel::prelude::*;

    const OWNER: u64 = 7;
    /// Logical blocks the operations use.
    const SPACE: u64 = 480;
    /// Logical blocks the model holds (room for inserts).
    const MODEL: usize = 512;

    enum TestError {
        Format(FormatError),
        Tree(TreeError),
        NoMemory,
        /// The store was asked for a block that is not a live node.
        Store(u64),
        /// The tree disagrees with the model at this logical block.
        Mismatch(u64),
    }

    // Written out (not derived) so that the fields count as read; the
    // kernel's `pr_*` format `{:?}` through `core::fmt::Debug`.
    impl core::fmt::Debug for TestError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                TestError::Format(e) => write!(f, "{e:?}"),
                TestError::Tree(e) => write!(f, "{e:?}"),
                TestError::NoMemory => write!(f, "out of memory"),
                TestError::Store(b) => write!(f, "block {b} is not a live node"),
                TestError::Mismatch(l) => {
                    write!(f, "tree and model disagree at logical block {l}")
                }
            }
        }
    }

    impl From<FormatError> for TestError {
        fn from(e: FormatError) -> Self {
            TestError::Format(e)
        }
    }

    impl From<TreeError> for TestError {
        fn from(e: TreeError) -> Self {
            TestError::Tree(e)
        }
    }

    impl From<AllocError> for TestError {
        fn from(_: AllocError) -> Self {
            TestError::NoMemory
        }
    }

    type TestResult<T = ()> = core::result::Result<T, TestError>;

    /// Node blocks in one `KVec`, block `first + i` in slot `i`.
    struct MemStore {
        geo: Geometry,
        first: u64,
        data: KVec<u8>,
        live: KVec<bool>,
        /// Distinct blocks modified or allocated since the last `reset`.
        touched: KVec<u64>,
        allocated: u64,
        freed: u64,
    }

    impl MemStore {
        fn new() -> TestResult<MemStore> {
            let sb = Superblock::layout(LayoutParams {
                block_size_log2: 10,
                block_count: 1 << 20,
                inode_count: 64,
                journal_blocks: 1024,
            })?;
            let geo = sb.geometry(1 << 20, crc32c::update)?;
            Ok(MemStore {
                first: geo.data_start + 10,
                geo,
                data: KVec::with_capacity(16 * 1024, GFP_KERNEL)?,
                live: KVec::with_capacity(64, GFP_KERNEL)?,
                touched: KVec::with_capacity(16, GFP_KERNEL)?,
                allocated: 0,
                freed: 0,
            })
        }

        fn bs(&self) -> usize {
            self.geo.block_size()
        }

        fn slot(&self, blk: u64) -> TestResult<usize> {
            let i = blk
                .checked_sub(self.first)
                .and_then(|i| usize::try_from(i).ok())
                .ok_or(TestError::Store(blk))?;
            if self.live.get(i).copied() == Some(true) {
                Ok(i)
            } else {
                Err(TestError::Store(blk))
            }
        }

        fn touch(&mut self, blk: u64) -> TestResult {
            if !self.touched.contains(&blk) {
                self.touched.push(blk, GFP_KERNEL)?;
            }
            Ok(())
        }

        fn reset(&mut self) {
            self.touched.clear();
        }

        fn live_blocks(&self) -> u64 {
            self.allocated - self.freed
        }
    }

    impl NodeStore for MemStore {
        type Error = TestError;

        fn geometry(&self) -> &Geometry {
            &self.geo
        }

        fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> TestResult<R> {
            let i = self.slot(blk)?;
            let bs = self.bs();
            let b = self
                .data
                .get(i * bs..(i + 1) * bs)
                .ok_or(TestError::Store(blk))?;
            Ok(f(b))
        }
    }

    impl NodeStoreMut for MemStore {
        fn modify<R>(&mut self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> TestResult<R> {
            let i = self.slot(blk)?;
            self.touch(blk)?;
            let bs = self.bs();
            let b = self
                .data
                .get_mut(i * bs..(i + 1) * bs)
                .ok_or(TestError::Store(blk))?;
            Ok(f(b))
        }

        fn alloc(&mut self, _goal: u64) -> TestResult<u64> {
            let bs = self.bs();
            let i = match self.live.iter().position(|&l| !l) {
                Some(i) => i,
                None => {
                    self.data.extend_with(bs, 0, GFP_KERNEL)?;
                    self.live.push(false, GFP_KERNEL)?;
                    self.live.len() - 1
                }
            };
            let off = u64::try_from(i).map_err(|_| TestError::NoMemory)?;
            let blk = self.first + off;
            if let Some(b) = self.data.get_mut(i * bs..(i + 1) * bs) {
                b.fill(0);
            }
            if let Some(l) = self.live.get_mut(i) {
                *l = true;
            }
            self.allocated += 1;
            self.touch(blk)?;
            Ok(blk)
        }

        fn free(&mut self, blk: u64) -> TestResult {
            let i = self.slot(blk)?;
            if let Some(l) = self.live.get_mut(i) {
                *l = false;
            }
            self.freed += 1;
            Ok(())
        }
    }

    /// The model: `0` for a hole, else `pblk << 1 | unwritten`.
    struct Model {
        map: KVec<u64>,
    }

    impl Model {
        fn new() -> TestResult<Model> {
            let mut map = KVec::with_capacity(MODEL, GFP_KERNEL)?;
            map.extend_with(MODEL, 0, GFP_KERNEL)?;
            Ok(Model { map })
        }

        fn get(&self, l: u64) -> u64 {
            usize::try_from(l)
                .ok()
                .and_then(|i| self.map.get(i).copied())
                .unwrap_or(0)
        }

        fn set(&mut self, l: u64, v: u64) {
            if let Some(x) = usize::try_from(l).ok().and_then(|i| self.map.get_mut(i)) {
                *x = v;
            }
        }

        fn set_range(&mut self, lblk: u64, len: u64, map: Option<(u64, u32)>) {
            for i in 0..len {
                let v = match map {
                    Some((p, f)) => ((p + i) << 1) | u64::from(f & extent_flags::UNWRITTEN),
                    None => 0,
                };
                self.set(lblk + i, v);
            }
        }

        /// Moves every block at or after `from` by `delta`, down or up.
        fn shift(&mut self, from: u64, delta: u64, up: bool) {
            let n = MODEL as u64;
            if up {
                for l in (from..n).rev() {
                    let v = self.get(l);
                    self.set(l, 0);
                    self.set(l + delta, v);
                }
            } else {
                for l in from..n {
                    let v = self.get(l);
                    self.set(l, 0);
                    self.set(l - delta, v);
                }
            }
        }
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn empty_root() -> [u8; INODE_ROOT_SIZE] {
        let mut r = [0u8; INODE_ROOT_SIZE];
        RootHeader::empty().encode(&mut r);
        r
    }

    /// `walk` succeeds, every block the extents map agrees with the model,
    /// the model maps nothing else, and the store holds exactly the node
    /// blocks of the tree.
    fn check_tree(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE], m: &Model) -> TestResult {
        let mut mapped = 0u64;
        let mut nodes = 0u64;
        let mut bad = None;
        walk(st, root, OWNER, |item| {
            match item {
                Item::Node(n) => {
                    if n.blk.is_some() {
                        nodes += 1;
                    }
                }
                Item::Extent(e) => {
                    for i in 0..u64::from(e.len) {
                        let want =
                            ((e.pblk + i) << 1) | u64::from(e.flags & extent_flags::UNWRITTEN);
                        if m.get(e.lblk + i) != want {
                            bad.get_or_insert(e.lblk + i);
                        }
                    }
                    mapped += u64::from(e.len);
                }
            }
            Ok(())
        })?;
        if let Some(l) = bad {
            return Err(TestError::Mismatch(l));
        }
        let model_mapped = m.map.iter().filter(|&&v| v != 0).count();
        if usize::try_from(mapped).ok() != Some(model_mapped) {
            return Err(TestError::Mismatch(u64::MAX));
        }
        if nodes != st.live_blocks() {
            return Err(TestError::Store(nodes));
        }
        Ok(())
    }

    /// `lookup` at `l` agrees with the model (hole ends included).
    fn check_lookup(
        st: &mut MemStore,
        root: &[u8; INODE_ROOT_SIZE],
        m: &Model,
        l: u64,
    ) -> TestResult {
        let ok = match lookup(st, root, OWNER, l)? {
            Mapping::Mapped(e) => {
                let want = m.get(l);
                e.lblk <= l
                    && l < e.lend()
                    && want == ((e.pblk + (l - e.lblk)) << 1) | u64::from(e.flags & 1)
            }
            Mapping::Hole { end } => {
                let next = (l..MODEL as u64)
                    .find(|&k| m.get(k) != 0)
                    .unwrap_or(u64::MAX);
                m.get(l) == 0 && end == next
            }
        };
        if ok {
            Ok(())
        } else {
            Err(TestError::Mismatch(l))
        }
    }

    /// `set_range` until done, checking the credits of every call.
    fn set(
        st: &mut MemStore,
        root: &mut [u8; INODE_ROOT_SIZE],
        m: &mut Model,
        lblk: u64,
        len: u64,
        map: Option<(u64, u32)>,
    ) -> TestResult {
        let mut done = 0;
        while done < len {
            let depth = RootHeader::decode(root)?.depth;
            st.reset();
            let mm = map.map(|(p, f)| (p + done, f));
            let mut replaced = 0u64;
            let n = set_range(st, root, OWNER, lblk + done, len - done, mm, |p| {
                replaced += u64::from(p.len);
                Ok(())
            })?;
            // The pieces cover exactly what the model had mapped.
            let had = (lblk + done..lblk + done + n)
                .filter(|&l| m.get(l) != 0)
                .count();
            let too_many = st.touched.len() > max_touched_blocks(depth) as usize;
            if n == 0 || too_many || usize::try_from(replaced).ok() != Some(had) {
                return Err(TestError::Mismatch(lblk + done));
            }
            m.set_range(lblk + done, n, mm);
            done += n;
        }
        Ok(())
    }

    fn run_shift(st: &mut MemStore, root: &mut [u8; INODE_ROOT_SIZE], sh: Shift) -> TestResult {
        let mut sh = sh;
        while !shift(st, root, OWNER, &mut sh)? {}
        Ok(())
    }

    fn random_ops(seed: u64) -> TestResult {
        let mut st = MemStore::new()?;
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let mut m = Model::new()?;
        let mut rng = Rng(seed);
        for step in 0..400u64 {
            let l = rng.below(SPACE);
            let len = 1 + rng.below(12).min(SPACE - 1 - l);
            match rng.below(10) {
                0..=4 => {
                    // Contiguous with the identity map (merges), or not.
                    let p = if rng.below(2) == 0 {
                        base + l
                    } else {
                        base + 10_000 + 64 * rng.below(1000)
                    };
                    let f = if rng.below(4) == 0 {
                        extent_flags::UNWRITTEN
                    } else {
                        0
                    };
                    set(&mut st, &mut root, &mut m, l, len, Some((p, f)))?;
                }
                5..=7 => set(&mut st, &mut root, &mut m, l, len, None)?,
                8 => {
                    // Collapse: punch [l - d, l), then shift down.
                    let d = len.min(l);
                    if d > 0 {
                        set(&mut st, &mut root, &mut m, l - d, d, None)?;
                        run_shift(&mut st, &mut root, Shift::left(l, d))?;
                        m.shift(l, d, false);
                    }
                }
                _ => {
                    // Insert: keep everything inside the model.
                    set(&mut st, &mut root, &mut m, SPACE - len, MODEL as u64, None)?;
                    run_shift(&mut st, &mut root, Shift::right(l, len))?;
                    m.shift(l, len, true);
                }
            }
            check_tree(&mut st, &root, &m)?;
            for _ in 0..8 {
                check_lookup(&mut st, &root, &m, rng.below(MODEL as u64))?;
            }
            if step % 50 == 0 {
                for k in 0..MODEL as u64 {
                    check_lookup(&mut st, &root, &m, k)?;
                }
            }
        }
        // Punching everything leaves an empty root and no node.
        set(&mut st, &mut root, &mut m, 0, MODEL as u64, None)?;
        check_tree(&mut st, &root, &m)?;
        if root != empty_root() || st.live_blocks() != 0 {
            return Err(TestError::Mismatch(0));
        }
        Ok(())
    }

    fn many_extents() -> TestResult {
        let mut st = MemStore::new()?;
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let n = 1000u64;
        // One-block extents, not physically contiguous: a tree of depth 2
        // with 1 KiB blocks.
        for i in 0..n {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                i,
                1,
                Some((base + 2 * i, 0)),
                |_| Ok(()),
            )?;
        }
        if RootHeader::decode(&root)?.depth != 2 {
            return Err(TestError::Mismatch(n));
        }
        for i in (0..n).step_by(7) {
            match lookup(&mut st, &root, OWNER, i)? {
                Mapping::Mapped(e) if e.lblk == i && e.pblk == base + 2 * i && e.len == 1 => {}
                _ => return Err(TestError::Mismatch(i)),
            }
        }
        if lookup(&mut st, &root, OWNER, n)? != (Mapping::Hole { end: u64::MAX }) {
            return Err(TestError::Mismatch(n));
        }
        let mut done = 0;
        while done < n {
            done += set_range(&mut st, &mut root, OWNER, done, n - done, None, |_| Ok(()))?;
        }
        if root != empty_root() || st.live_blocks() != 0 {
            return Err(TestError::Mismatch(0));
        }
        Ok(())
    }

    fn report(r: TestResult) -> TestResult {
        if let Err(e) = &r {
            pr_err!("swapfs_extent: {:?}\n", e);
        }
        r
    }

    #[test]
    fn operations_against_model() -> TestResult {
        report(random_ops(0x9e37_79b9_7f4a_7c15))?;
        report(random_ops(0x0123_4567_89ab_cdef))
    }

    #[test]
    fn deep_tree() -> TestResult {
        report(many_extents())
    }
}

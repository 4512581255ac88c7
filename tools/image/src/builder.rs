// SPDX-License-Identifier: GPL-2.0

//! A test image builder: formats with the mkfs code, then adds directories,
//! files with given extents (written, unwritten, shared), symlinks, device
//! nodes and hard links, keeping bitmaps, reference counts, inode `blocks`,
//! link counts and parents exact. [`Builder::finish`] writes everything out
//! and hands back an [`Editor`], which reads and (for corruption tests)
//! modifies individual structures.
//!
//! The builder keeps its state in memory and writes file data, tree nodes
//! and symlink blocks as it goes; directory blocks, inodes, bitmaps,
//! reference counts and the superblock are written by `finish`.
//!
//! Newly allocated written blocks are filled with [`data_pattern`] of the
//! file and logical block, unwritten ones with [`UNWRITTEN_FILL`] bytes
//! (which must never be read back: unwritten blocks read as zeroes).

use std::collections::{BTreeMap, HashSet};
use std::io;

use swapfs_common::crc32c;
use swapfs_common::format::{
    dir_add, dir_block_init, dir_records, encode_node_header, entry_mut, extent_flags, get_u32,
    get_u64, is_valid_name, magic, max_lblk, mode, put_u16, refcounts_per_block, Extent, Geometry,
    IndexEntry, Inode, RootHeader, Superblock, Timestamp, BLOCK_HEADER_SIZE, ENTRY_SIZE,
    INODE_ROOT_SIZE, INODE_SIZE, MAX_DEPTH, NODE_ENTRIES_OFFSET, ROOT_ENTRIES, ROOT_HEADER_SIZE,
    ROOT_INO,
};

use crate::device::Image;
use crate::mkfs::{self, MkfsParams};
use crate::store::{read_tree, Tree};

/// What unwritten blocks are filled with on disk.
pub const UNWRITTEN_FILL: u8 = 0xee;

/// Fills `buf` (one block) with the data the builder writes at logical
/// block `lblk` of inode `ino`: 32-byte lines `"{ino:>10} {lblk:>20}\n"`.
pub fn data_pattern(ino: u64, lblk: u64, buf: &mut [u8]) {
    let line = format!("{ino:>10} {lblk:>20}\n");
    for chunk in buf.chunks_mut(line.len()) {
        let n = chunk.len();
        chunk.copy_from_slice(&line.as_bytes()[..n]);
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One extent of a file to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileExtent {
    /// First logical block.
    pub lblk: u64,
    /// Length in blocks.
    pub len: u32,
    /// Allocated but unwritten.
    pub unwritten: bool,
    /// `None`: allocate new blocks. `Some(p)`: map the blocks from `p`,
    /// which must already hold file data (they become shared).
    pub pblk: Option<u64>,
}

impl FileExtent {
    /// Newly allocated, written blocks.
    pub fn new(lblk: u64, len: u32) -> FileExtent {
        FileExtent {
            lblk,
            len,
            unwritten: false,
            pblk: None,
        }
    }

    /// Newly allocated, unwritten blocks.
    pub fn unwritten(lblk: u64, len: u32) -> FileExtent {
        FileExtent {
            unwritten: true,
            ..FileExtent::new(lblk, len)
        }
    }

    /// Blocks from `pblk` that another extent already maps (a reflink).
    pub fn shared(lblk: u64, pblk: u64, len: u32) -> FileExtent {
        FileExtent {
            pblk: Some(pblk),
            ..FileExtent::new(lblk, len)
        }
    }
}

/// A change to undo if the operation that made it fails.
enum Undo {
    Refs(u64, u64),
    Meta(u64),
    Ino(u64),
}

struct Entry {
    name: Vec<u8>,
    ino: u64,
    dtype: u8,
}

#[derive(Default)]
struct Dir {
    entries: Vec<Entry>,
    names: HashSet<Vec<u8>>,
}

/// Builds a valid swapfs image; see the module documentation.
pub struct Builder {
    img: Image,
    sb: Superblock,
    geo: Geometry,
    /// Reference count of every data block.
    refs: Vec<u16>,
    /// Data blocks holding metadata (never shared).
    meta: Vec<bool>,
    inode_used: Vec<bool>,
    inodes: BTreeMap<u64, Inode>,
    extents: BTreeMap<u64, Vec<Extent>>,
    dirs: BTreeMap<u64, Dir>,
    orphans: Vec<u64>,
    undo: Vec<Undo>,
    node_fill: usize,
    dir_spacing: u64,
    hint: u64,
    now: Timestamp,
    generation: u32,
}

impl Builder {
    /// Formats `img` with the mkfs code and starts building on it.
    pub fn format(mut img: Image, p: &MkfsParams) -> io::Result<Builder> {
        mkfs::format(&mut img, p).map_err(|e| invalid(format!("mkfs: {e}")))?;
        let ed = Editor::open(img)?;
        let root = ed
            .inode(ROOT_INO)?
            .ok_or_else(|| corrupt("mkfs wrote no root inode".into()))?;
        let (img, sb, geo) = (ed.img, ed.sb, ed.geo);
        let data = usize::try_from(geo.data_blocks())
            .map_err(|_| invalid("data region too large".into()))?;
        let inodes_n =
            usize::try_from(geo.inode_count).map_err(|_| invalid("too many inodes".into()))?;
        let mut b = Builder {
            img,
            sb,
            geo,
            refs: vec![0; data],
            meta: vec![false; data],
            inode_used: vec![false; inodes_n],
            inodes: BTreeMap::new(),
            extents: BTreeMap::new(),
            dirs: BTreeMap::new(),
            orphans: Vec::new(),
            undo: Vec::new(),
            node_fill: geo.node_capacity(),
            dir_spacing: 0,
            hint: 0,
            now: p.time,
            generation: 0,
        };
        b.inode_used[0] = true;
        b.inodes.insert(ROOT_INO, root);
        b.dirs.insert(ROOT_INO, Dir::default());
        Ok(b)
    }

    /// Formats a zeroed in-memory image of exactly `p.block_count` blocks.
    pub fn in_memory(p: &MkfsParams) -> io::Result<Builder> {
        let size = 1u64
            .checked_shl(p.block_size_log2)
            .and_then(|bs| bs.checked_mul(p.block_count))
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| invalid("image too large for memory".into()))?;
        Builder::format(Image::zeroed(size), p)
    }

    /// The filesystem's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The superblock as mkfs wrote it (free counts are final only after
    /// [`Builder::finish`]).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Entries per extent-tree block of trees built from now on, 2 to the
    /// block capacity (default). Small values make deep trees.
    pub fn set_node_fill(&mut self, n: usize) -> io::Result<()> {
        if n < 2 || n > self.geo.node_capacity() {
            return Err(invalid(format!("node fill {n} out of range")));
        }
        self.node_fill = n;
        Ok(())
    }

    /// Free blocks to leave after each directory block (default 0), so that
    /// every directory block is an extent of its own and large directories
    /// need index nodes.
    pub fn set_dir_spacing(&mut self, n: u64) {
        self.dir_spacing = n;
    }

    /// The timestamps of inodes created from now on.
    pub fn set_time(&mut self, t: Timestamp) {
        self.now = t;
    }

    /// An inode created so far.
    pub fn inode(&self, ino: u64) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    /// The extents of a file or symlink created so far.
    pub fn extents(&self, ino: u64) -> &[Extent] {
        self.extents.get(&ino).map(Vec::as_slice).unwrap_or(&[])
    }

    fn alloc_ino(&mut self) -> io::Result<u64> {
        let i = self
            .inode_used
            .iter()
            .position(|u| !u)
            .ok_or_else(|| invalid("out of inodes".into()))?;
        self.inode_used[i] = true;
        self.undo.push(Undo::Ino(i as u64 + 1));
        Ok(i as u64 + 1)
    }

    /// Runs `f`; if it fails, undoes the allocations it made.
    fn atomically<T>(&mut self, f: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        self.undo.clear();
        let res = f(self);
        let undo = std::mem::take(&mut self.undo);
        if res.is_err() {
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Refs(p, len) => {
                        for b in p..p + len {
                            let i = self.data_index(b);
                            self.refs[i] -= 1;
                        }
                    }
                    Undo::Meta(b) => {
                        let i = self.data_index(b);
                        self.refs[i] = 0;
                        self.meta[i] = false;
                    }
                    Undo::Ino(ino) => {
                        self.inode_used[(ino - 1) as usize] = false;
                        self.inodes.remove(&ino);
                        self.extents.remove(&ino);
                    }
                }
            }
        }
        res
    }

    /// Allocates `len` contiguous free data blocks (next fit).
    fn alloc_run(&mut self, len: u64) -> io::Result<u64> {
        let n = self.refs.len() as u64;
        let fits = |refs: &[u16], start: u64| {
            start + len <= n && (start..start + len).all(|i| refs[i as usize] == 0)
        };
        let mut start = self.hint.min(n);
        for pass in 0..2 {
            let end = if pass == 0 { n } else { self.hint.min(n) };
            while start < end {
                if fits(&self.refs, start) {
                    self.hint = start + len;
                    return Ok(self.geo.data_start + start);
                }
                start += 1;
            }
            start = 0;
        }
        Err(invalid(format!("no run of {len} free blocks")))
    }

    fn data_index(&self, pblk: u64) -> usize {
        (pblk - self.geo.data_start) as usize
    }

    fn add_refs(&mut self, pblk: u64, len: u64) -> io::Result<()> {
        let first = self.data_index(pblk);
        let range = first..first + len as usize;
        if self.refs[range.clone()].contains(&u16::MAX) {
            return Err(invalid(format!("blocks from {pblk}: too many references")));
        }
        for r in &mut self.refs[range] {
            *r += 1;
        }
        self.undo.push(Undo::Refs(pblk, len));
        Ok(())
    }

    /// Allocates one metadata block (tree node, directory or symlink).
    fn alloc_meta(&mut self) -> io::Result<u64> {
        let blk = self.alloc_run(1)?;
        let i = self.data_index(blk);
        self.refs[i] = 1;
        self.meta[i] = true;
        self.undo.push(Undo::Meta(blk));
        Ok(blk)
    }

    fn new_inode(&mut self, mode: u16) -> io::Result<(u64, Inode)> {
        let ino = self.alloc_ino()?;
        let mut inode = Inode::new(mode, self.now);
        self.generation = self.generation.wrapping_add(1);
        inode.generation = self.generation;
        Ok((ino, inode))
    }

    fn add_entry(&mut self, parent: u64, name: &[u8], ino: u64, dtype: u8) -> io::Result<()> {
        if !is_valid_name(name) {
            return Err(invalid(format!("invalid name {:?}", name.escape_ascii())));
        }
        let dir = self
            .dirs
            .get_mut(&parent)
            .ok_or_else(|| invalid(format!("inode {parent} is not a directory")))?;
        if !dir.names.insert(name.to_vec()) {
            return Err(invalid(format!("{:?} exists", name.escape_ascii())));
        }
        dir.entries.push(Entry {
            name: name.to_vec(),
            ino,
            dtype,
        });
        Ok(())
    }

    fn check_parent(&self, parent: u64, name: &[u8]) -> io::Result<()> {
        match self.dirs.get(&parent) {
            None => Err(invalid(format!("inode {parent} is not a directory"))),
            Some(d) if d.names.contains(name) => {
                Err(invalid(format!("{:?} exists", name.escape_ascii())))
            }
            Some(_) if !is_valid_name(name) => {
                Err(invalid(format!("invalid name {:?}", name.escape_ascii())))
            }
            Some(_) => Ok(()),
        }
    }

    /// Creates directory `name` in `parent`.
    pub fn mkdir(&mut self, parent: u64, name: impl AsRef<[u8]>) -> io::Result<u64> {
        let name = name.as_ref();
        self.check_parent(parent, name)?;
        let (ino, mut inode) = self.new_inode(mode::S_IFDIR | 0o755)?;
        inode.nlink = 2;
        inode.parent = parent;
        self.inodes.insert(ino, inode);
        self.dirs.insert(ino, Dir::default());
        if let Some(p) = self.inodes.get_mut(&parent) {
            p.nlink += 1;
        }
        self.add_entry(parent, name, ino, mode::dtype(mode::S_IFDIR))?;
        Ok(ino)
    }

    /// Creates regular file `name` in `parent` with the given extents (in
    /// logical order, not overlapping) and size in bytes.
    pub fn create(
        &mut self,
        parent: u64,
        name: impl AsRef<[u8]>,
        extents: &[FileExtent],
        size: u64,
    ) -> io::Result<u64> {
        let name = name.as_ref();
        self.check_parent(parent, name)?;
        let ino = self.create_unnamed(extents, size)?;
        self.add_entry(parent, name, ino, mode::dtype(mode::S_IFREG))?;
        Ok(ino)
    }

    /// Creates a regular file that no directory names (link count 0) and
    /// puts it on the orphan list, as if it was unlinked while open.
    pub fn create_orphan(&mut self, extents: &[FileExtent], size: u64) -> io::Result<u64> {
        let ino = self.create_unnamed(extents, size)?;
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.nlink = 0;
        }
        self.orphans.push(ino);
        Ok(ino)
    }

    /// Puts inode `ino` on the orphan list (as a file being truncated is).
    pub fn add_orphan(&mut self, ino: u64) -> io::Result<()> {
        if !self.inodes.contains_key(&ino) || self.orphans.contains(&ino) {
            return Err(invalid(format!(
                "cannot put inode {ino} on the orphan list"
            )));
        }
        self.orphans.push(ino);
        Ok(())
    }

    /// A new regular file with the given extents, in no directory.
    fn create_unnamed(&mut self, extents: &[FileExtent], size: u64) -> io::Result<u64> {
        self.atomically(|b| b.create_unnamed_inner(extents, size))
    }

    fn create_unnamed_inner(&mut self, extents: &[FileExtent], size: u64) -> io::Result<u64> {
        self.check_extents(extents)?;
        let (ino, mut inode) = self.new_inode(mode::S_IFREG | 0o644)?;
        let mut mapped = Vec::with_capacity(extents.len());
        let mut buf = vec![0u8; self.geo.block_size()];
        for fe in extents {
            let pblk = match fe.pblk {
                Some(p) => p,
                None => {
                    let p = self.alloc_run(u64::from(fe.len))?;
                    for i in 0..u64::from(fe.len) {
                        if fe.unwritten {
                            buf.fill(UNWRITTEN_FILL);
                        } else {
                            data_pattern(ino, fe.lblk + i, &mut buf);
                        }
                        self.img.write_block(p + i, &buf)?;
                    }
                    p
                }
            };
            self.add_refs(pblk, u64::from(fe.len))?;
            mapped.push(Extent {
                lblk: fe.lblk,
                pblk,
                len: fe.len,
                flags: if fe.unwritten {
                    extent_flags::UNWRITTEN
                } else {
                    0
                },
            });
        }
        let (root, nodes) = self.build_tree(ino, &mapped)?;
        inode.root = root;
        inode.size = size;
        inode.blocks = mapped.iter().map(|e| u64::from(e.len)).sum::<u64>() + nodes;
        self.inodes.insert(ino, inode);
        self.extents.insert(ino, mapped);
        Ok(ino)
    }

    fn check_extents(&self, extents: &[FileExtent]) -> io::Result<()> {
        let mut end = 0u64;
        for (i, fe) in extents.iter().enumerate() {
            let lend = fe.lblk.checked_add(u64::from(fe.len));
            if fe.len == 0
                || (i > 0 && fe.lblk < end)
                || lend.is_none_or(|l| l > max_lblk(&self.geo))
            {
                return Err(invalid(format!(
                    "extent {i} ({fe:?}) is empty or out of order"
                )));
            }
            end = lend.unwrap_or(u64::MAX);
            if let Some(p) = fe.pblk {
                let len = u64::from(fe.len);
                if !self.geo.is_data_range(p, len) {
                    return Err(invalid(format!(
                        "extent {i}: blocks outside the data region"
                    )));
                }
                let first = self.data_index(p);
                let ok =
                    (first..first + fe.len as usize).all(|j| self.refs[j] > 0 && !self.meta[j]);
                if !ok {
                    return Err(invalid(format!(
                        "extent {i}: can only share file data blocks"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Creates regular file `name` holding `data` in one extent.
    pub fn create_with_data(
        &mut self,
        parent: u64,
        name: impl AsRef<[u8]>,
        data: &[u8],
    ) -> io::Result<u64> {
        let bs = self.geo.block_size();
        let blocks =
            u32::try_from(data.len().div_ceil(bs)).map_err(|_| invalid("file too large".into()))?;
        let ext: Vec<FileExtent> = if blocks == 0 {
            Vec::new()
        } else {
            vec![FileExtent::new(0, blocks)]
        };
        let ino = self.create(parent, name, &ext, data.len() as u64)?;
        if let Some(e) = self.extents(ino).first().copied() {
            for (i, chunk) in data.chunks(bs).enumerate() {
                let mut buf = vec![0u8; bs];
                buf[..chunk.len()].copy_from_slice(chunk);
                self.img.write_block(e.pblk + i as u64, &buf)?;
            }
        }
        Ok(ino)
    }

    /// Creates `name` in `parent` as a reflinked copy of file `src`: the
    /// same size and extents, every block shared.
    pub fn reflink(&mut self, src: u64, parent: u64, name: impl AsRef<[u8]>) -> io::Result<u64> {
        let inode = self
            .inodes
            .get(&src)
            .filter(|i| i.is_reg())
            .ok_or_else(|| invalid(format!("inode {src} is not a regular file")))?;
        let size = inode.size;
        let ext: Vec<FileExtent> = self
            .extents(src)
            .iter()
            .map(|e| FileExtent {
                lblk: e.lblk,
                len: e.len,
                unwritten: e.is_unwritten(),
                pblk: Some(e.pblk),
            })
            .collect();
        self.create(parent, name, &ext, size)
    }

    /// Creates symlink `name` in `parent` pointing to `target`.
    pub fn symlink(
        &mut self,
        parent: u64,
        name: impl AsRef<[u8]>,
        target: impl AsRef<[u8]>,
    ) -> io::Result<u64> {
        let (name, target) = (name.as_ref(), target.as_ref());
        self.check_parent(parent, name)?;
        if target.is_empty() || target.len() > self.geo.symlink_max() || target.contains(&0) {
            return Err(invalid("invalid symlink target".into()));
        }
        let ino = self.atomically(|b| b.symlink_inode(target))?;
        self.add_entry(parent, name, ino, mode::dtype(mode::S_IFLNK))?;
        Ok(ino)
    }

    fn symlink_inode(&mut self, target: &[u8]) -> io::Result<u64> {
        let (ino, mut inode) = self.new_inode(mode::S_IFLNK | 0o777)?;
        let blk = self.alloc_meta()?;
        let mut buf = vec![0u8; self.geo.block_size()];
        buf[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + target.len()].copy_from_slice(target);
        self.geo.seal_block(&mut buf, magic::SYMLINK, blk);
        self.img.write_block(blk, &buf)?;
        let ext = [Extent {
            lblk: 0,
            pblk: blk,
            len: 1,
            flags: 0,
        }];
        let (root, nodes) = self.build_tree(ino, &ext)?;
        inode.root = root;
        inode.size = target.len() as u64;
        inode.blocks = 1 + nodes;
        self.inodes.insert(ino, inode);
        self.extents.insert(ino, ext.to_vec());
        Ok(ino)
    }

    /// Creates a device node, FIFO or socket (`mode` includes the type).
    pub fn mknod(
        &mut self,
        parent: u64,
        name: impl AsRef<[u8]>,
        mode: u16,
        rdev: u32,
    ) -> io::Result<u64> {
        let name = name.as_ref();
        self.check_parent(parent, name)?;
        let kind = mode & mode::S_IFMT;
        let device = kind == mode::S_IFCHR || kind == mode::S_IFBLK;
        if !(device || kind == mode::S_IFIFO || kind == mode::S_IFSOCK) || (!device && rdev != 0) {
            return Err(invalid(format!("mknod: bad mode {mode:o}")));
        }
        let (ino, mut inode) = self.new_inode(mode)?;
        inode.rdev = rdev;
        self.inodes.insert(ino, inode);
        self.add_entry(parent, name, ino, mode::dtype(mode))?;
        Ok(ino)
    }

    /// Adds a hard link `name` in `parent` to non-directory `ino`.
    pub fn link(&mut self, parent: u64, name: impl AsRef<[u8]>, ino: u64) -> io::Result<()> {
        let name = name.as_ref();
        self.check_parent(parent, name)?;
        let inode = self
            .inodes
            .get_mut(&ino)
            .filter(|i| !i.is_dir())
            .ok_or_else(|| invalid(format!("cannot link to inode {ino}")))?;
        inode.nlink += 1;
        let dtype = mode::dtype(inode.mode);
        self.add_entry(parent, name, ino, dtype)
    }

    /// Builds the extent tree of `owner` over `extents` (sorted): returns
    /// the root and the number of node blocks written.
    fn build_tree(
        &mut self,
        owner: u64,
        extents: &[Extent],
    ) -> io::Result<([u8; INODE_ROOT_SIZE], u64)> {
        let mut level: Vec<(u64, [u8; ENTRY_SIZE])> = extents
            .iter()
            .map(|e| {
                let mut raw = [0u8; ENTRY_SIZE];
                e.encode(&mut raw);
                (e.lblk, raw)
            })
            .collect();
        let mut depth = 0u16;
        let mut nodes = 0u64;
        let bs = self.geo.block_size();
        while level.len() > ROOT_ENTRIES {
            if depth >= MAX_DEPTH {
                return Err(invalid("extent tree would be too deep".into()));
            }
            let mut next = Vec::new();
            for chunk in level.chunks(self.node_fill) {
                let blk = self.alloc_meta()?;
                nodes += 1;
                let mut buf = vec![0u8; bs];
                let h = RootHeader {
                    entries: chunk.len() as u16,
                    max: self.geo.node_capacity() as u16,
                    depth,
                };
                encode_node_header(&mut buf, &h, owner);
                for (i, (_, raw)) in chunk.iter().enumerate() {
                    entry_mut(&mut buf, NODE_ENTRIES_OFFSET, i).copy_from_slice(raw);
                }
                self.geo.seal_block(&mut buf, magic::EXTENT, blk);
                self.img.write_block(blk, &buf)?;
                let key = chunk.first().map(|c| c.0).unwrap_or(0);
                let mut raw = [0u8; ENTRY_SIZE];
                IndexEntry {
                    lblk: key,
                    child: blk,
                }
                .encode(&mut raw);
                next.push((key, raw));
            }
            level = next;
            depth += 1;
        }
        let mut root = [0u8; INODE_ROOT_SIZE];
        RootHeader {
            entries: level.len() as u16,
            max: ROOT_ENTRIES as u16,
            depth,
        }
        .encode(&mut root);
        for (i, (_, raw)) in level.iter().enumerate() {
            entry_mut(&mut root, ROOT_HEADER_SIZE, i).copy_from_slice(raw);
        }
        Ok((root, nodes))
    }

    /// Writes the directory blocks of `dir` and its tree.
    fn write_dir(&mut self, dir: u64, entries: &[Entry]) -> io::Result<()> {
        let bs = self.geo.block_size();
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for e in entries {
            let fits = match blocks.last_mut() {
                Some(b) => dir_add(&self.geo, b, &e.name, e.ino, e.dtype)
                    .map_err(|e| corrupt(e.to_string()))?,
                None => false,
            };
            if !fits {
                let mut b = vec![0u8; bs];
                dir_block_init(&mut b, dir);
                if !dir_add(&self.geo, &mut b, &e.name, e.ino, e.dtype)
                    .map_err(|e| corrupt(e.to_string()))?
                {
                    return Err(invalid("directory entry does not fit a block".into()));
                }
                blocks.push(b);
            }
        }
        let mut extents: Vec<Extent> = Vec::new();
        for (lblk, mut buf) in blocks.into_iter().enumerate() {
            let blk = self.alloc_meta()?;
            self.hint += self.dir_spacing;
            self.geo.seal_block(&mut buf, magic::DIR, blk);
            self.img.write_block(blk, &buf)?;
            match extents.last_mut() {
                Some(e) if e.pblk + u64::from(e.len) == blk => e.len += 1,
                _ => extents.push(Extent {
                    lblk: lblk as u64,
                    pblk: blk,
                    len: 1,
                    flags: 0,
                }),
            }
        }
        let nblocks = extents.iter().map(|e| u64::from(e.len)).sum::<u64>();
        let (root, nodes) = self.build_tree(dir, &extents)?;
        let inode = self
            .inodes
            .get_mut(&dir)
            .ok_or_else(|| invalid(format!("no directory {dir}")))?;
        inode.root = root;
        inode.size = nblocks * bs as u64;
        inode.blocks = nblocks + nodes;
        Ok(())
    }

    /// Writes directories, inodes, bitmaps, reference counts and the
    /// superblock (clean, with exact free counts), syncs, and returns an
    /// [`Editor`] on the finished image.
    pub fn finish(mut self) -> io::Result<Editor> {
        let dirs = std::mem::take(&mut self.dirs);
        for (dir, d) in &dirs {
            self.write_dir(*dir, &d.entries)?;
        }
        self.sb.orphan_head = self.orphans.first().copied().unwrap_or(0);
        for (i, ino) in self.orphans.iter().enumerate() {
            let next = self.orphans.get(i + 1).copied().unwrap_or(0);
            if let Some(inode) = self.inodes.get_mut(ino) {
                inode.orphan_next = next;
            }
        }
        for (ino, inode) in &self.inodes {
            mkfs::write_inode(&mut self.img, &self.geo, *ino, inode)?;
        }
        let used = &self.inode_used;
        mkfs::write_inode_bitmap(&mut self.img, &self.geo, |ino| {
            used.get((ino - 1) as usize).copied().unwrap_or(true)
        })?;
        let refs = &self.refs;
        mkfs::write_block_bitmap(&mut self.img, &self.geo, |i| {
            refs.get(i as usize).is_some_and(|&r| r > 0)
        })?;
        mkfs::write_refcounts(&mut self.img, &self.geo, |i| {
            refs.get(i as usize).copied().unwrap_or(0)
        })?;
        self.sb.free_blocks = self.refs.iter().filter(|&&r| r == 0).count() as u64;
        self.sb.free_inodes = self.inode_used.iter().filter(|&&u| !u).count() as u64;
        self.sb.write_time = self.now.sec;
        mkfs::write_superblock(&mut self.img, &self.geo, &self.sb)?;
        self.img.sync()?;
        Editor::open(self.img)
    }
}

/// Where a directory entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryLoc {
    /// The directory block.
    pub blk: u64,
    /// The record's offset in the block.
    pub offset: usize,
    /// The inode named.
    pub ino: u64,
    /// `DT_*` type.
    pub file_type: u8,
    /// The name.
    pub name: Vec<u8>,
}

/// Reads and modifies the structures of a (valid) image one by one. The
/// `modify_*` helpers that say so keep checksums valid, so that a test can
/// plant one precise inconsistency; the raw ones do not.
pub struct Editor {
    img: Image,
    sb: Superblock,
    geo: Geometry,
}

impl Editor {
    /// Opens an image whose superblock is valid.
    pub fn open(img: Image) -> io::Result<Editor> {
        let mut buf = [0u8; swapfs_common::format::SUPERBLOCK_SIZE];
        img.read_at(0, &mut buf)?;
        let sb = Superblock::decode(&buf, crc32c::update).map_err(|e| corrupt(e.to_string()))?;
        let geo = sb
            .geometry(img.blocks(sb.block_size()), crc32c::update)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Editor { img, sb, geo })
    }

    /// The image.
    pub fn image(&self) -> &Image {
        &self.img
    }

    /// The image, for good.
    pub fn into_image(self) -> Image {
        self.img
    }

    /// The bytes of an in-memory image.
    pub fn into_vec(self) -> Option<Vec<u8>> {
        self.img.into_vec()
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The superblock as opened (or last modified).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Reads block `blk`.
    pub fn read_block(&self, blk: u64) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.geo.block_size()];
        self.img.read_block(blk, &mut buf)?;
        Ok(buf)
    }

    /// Writes block `blk`.
    pub fn write_block(&mut self, blk: u64, buf: &[u8]) -> io::Result<()> {
        self.img.write_block(blk, buf)
    }

    /// Changes block `blk` in place, without touching its checksum.
    pub fn modify_block(&mut self, blk: u64, f: impl FnOnce(&mut [u8])) -> io::Result<()> {
        let mut buf = self.read_block(blk)?;
        f(&mut buf);
        self.write_block(blk, &buf)
    }

    /// Changes metadata block `blk` and re-seals it with the magic found in
    /// it (after `f`) and its own block number.
    pub fn modify_sealed(&mut self, blk: u64, f: impl FnOnce(&mut [u8])) -> io::Result<()> {
        let geo = self.geo;
        self.modify_block(blk, |b| {
            f(b);
            geo.seal_block(b, get_u32(b, 0), blk);
        })
    }

    /// Re-seals block `blk` as metadata of kind `magic` claiming to be
    /// block `claimed` (for misdirected-write tests).
    pub fn seal_as(&mut self, blk: u64, magic: u32, claimed: u64) -> io::Result<()> {
        let geo = self.geo;
        self.modify_block(blk, |b| geo.seal_block(b, magic, claimed))
    }

    /// Inode `ino` (`None` if free).
    pub fn inode(&self, ino: u64) -> io::Result<Option<Inode>> {
        let raw = self.inode_raw(ino)?;
        Inode::decode(&self.geo, ino, &raw).map_err(|e| corrupt(format!("inode {ino}: {e}")))
    }

    /// The 256 raw bytes of inode `ino`.
    pub fn inode_raw(&self, ino: u64) -> io::Result<Vec<u8>> {
        let (blk, off) = self
            .geo
            .inode_location(ino)
            .ok_or_else(|| invalid(format!("no inode {ino}")))?;
        let buf = self.read_block(blk)?;
        Ok(buf[off..off + INODE_SIZE].to_vec())
    }

    /// Changes inode `ino` and re-encodes it with a valid checksum.
    pub fn modify_inode(&mut self, ino: u64, f: impl FnOnce(&mut Inode)) -> io::Result<()> {
        let mut inode = self
            .inode(ino)?
            .ok_or_else(|| invalid(format!("inode {ino} is free")))?;
        f(&mut inode);
        mkfs::write_inode(&mut self.img, &self.geo, ino, &inode)
    }

    /// Changes the raw bytes of inode `ino`, without fixing the checksum.
    pub fn modify_inode_raw(&mut self, ino: u64, f: impl FnOnce(&mut [u8])) -> io::Result<()> {
        mkfs::update_inode_slot(&mut self.img, &self.geo, ino, f)
    }

    /// Changes the raw bytes of inode `ino` and recomputes its checksum.
    pub fn modify_inode_resealed(&mut self, ino: u64, f: impl FnOnce(&mut [u8])) -> io::Result<()> {
        let geo = self.geo;
        mkfs::update_inode_slot(&mut self.img, &geo, ino, |raw| {
            f(raw);
            let sum = geo.inode_checksum(ino, raw);
            raw[96..100].copy_from_slice(&sum.to_le_bytes());
        })
    }

    /// Sets inode `ino`'s bit in the inode bitmap (block re-sealed).
    pub fn set_inode_bit(&mut self, ino: u64, value: bool) -> io::Result<()> {
        let loc = self
            .geo
            .inode_bit(ino)
            .ok_or_else(|| invalid(format!("no inode {ino}")))?;
        self.modify_sealed(loc.block, |b| {
            swapfs_common::format::bitmap_set(b, loc.bit, value)
        })
    }

    /// Sets data block `blk`'s bit in the block bitmap (block re-sealed).
    pub fn set_block_bit(&mut self, blk: u64, value: bool) -> io::Result<()> {
        let loc = self
            .geo
            .block_bit(blk)
            .ok_or_else(|| invalid(format!("{blk} is not a data block")))?;
        self.modify_sealed(loc.block, |b| {
            swapfs_common::format::bitmap_set(b, loc.bit, value)
        })
    }

    /// Data block `blk`'s reference count.
    pub fn refcount(&self, blk: u64) -> io::Result<u16> {
        let (rb, off) = self
            .geo
            .refcount_location(blk)
            .ok_or_else(|| invalid(format!("{blk} is not a data block")))?;
        Ok(swapfs_common::format::get_u16(&self.read_block(rb)?, off))
    }

    /// Sets data block `blk`'s reference count (block re-sealed).
    pub fn set_refcount(&mut self, blk: u64, count: u16) -> io::Result<()> {
        let (rb, off) = self
            .geo
            .refcount_location(blk)
            .ok_or_else(|| invalid(format!("{blk} is not a data block")))?;
        self.modify_sealed(rb, |b| put_u16(b, off, count))
    }

    /// Changes the superblock and re-encodes it with a valid checksum.
    pub fn modify_superblock(&mut self, f: impl FnOnce(&mut Superblock)) -> io::Result<()> {
        f(&mut self.sb);
        let mut buf = self.read_block(0)?;
        self.sb.encode(&mut buf, crc32c::update);
        self.write_block(0, &buf)
    }

    /// The extent tree of inode `ino` (an error if it is corrupt).
    pub fn tree(&self, ino: u64) -> io::Result<Tree> {
        let inode = self
            .inode(ino)?
            .ok_or_else(|| invalid(format!("inode {ino} is free")))?;
        let (tree, res) = read_tree(&self.img, &self.geo, &inode.root, ino);
        res?;
        Ok(tree)
    }

    /// The entries of directory `dir`, with their locations.
    pub fn dir_entries(&self, dir: u64) -> io::Result<Vec<DirEntryLoc>> {
        let mut out = Vec::new();
        for e in self.tree(dir)?.extents {
            for blk in e.pblk..e.pblk + u64::from(e.len) {
                let buf = self.read_block(blk)?;
                self.geo
                    .check_block(&buf, "directory", magic::DIR, blk)
                    .map_err(|e| corrupt(e.to_string()))?;
                for rec in dir_records(&self.geo, &buf) {
                    let rec = rec.map_err(|e| corrupt(e.to_string()))?;
                    if rec.ino != 0 {
                        out.push(DirEntryLoc {
                            blk,
                            offset: rec.offset,
                            ino: rec.ino,
                            file_type: rec.file_type,
                            name: rec.name.to_vec(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Resolves a `/`-separated path from the root directory.
    pub fn lookup(&self, path: &str) -> io::Result<u64> {
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self
                .dir_entries(ino)?
                .into_iter()
                .find(|e| e.name == part.as_bytes())
                .map(|e| e.ino)
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no {part}"))
                })?;
        }
        Ok(ino)
    }

    /// The reference-count block and its entry for data block `blk`, as
    /// raw (block, byte offset).
    pub fn refcount_location(&self, blk: u64) -> Option<(u64, usize)> {
        self.geo.refcount_location(blk)
    }

    /// The number of reference counts in a block (for tail checks).
    pub fn refcounts_per_block(&self) -> u64 {
        refcounts_per_block(self.geo.block_size())
    }

    /// The `blocknr` stored in a metadata block's header.
    pub fn header_blocknr(&self, blk: u64) -> io::Result<u64> {
        Ok(get_u64(&self.read_block(blk)?, 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> MkfsParams {
        let mut p = MkfsParams::new(10, 4096);
        p.uuid = [5; 16];
        p.time = Timestamp { sec: 1000, nsec: 0 };
        p
    }

    #[test]
    fn builds_a_tree_of_files() {
        let mut b = Builder::in_memory(&params()).unwrap();
        let d = b.mkdir(ROOT_INO, "dir").unwrap();
        let f = b
            .create(
                d,
                "f",
                &[FileExtent::new(0, 3), FileExtent::unwritten(10, 2)],
                12 * 1024,
            )
            .unwrap();
        let g = b.reflink(f, ROOT_INO, "g").unwrap();
        b.symlink(d, "s", "../g").unwrap();
        b.link(ROOT_INO, "f2", f).unwrap();
        let ed = b.finish().unwrap();
        assert_eq!(ed.lookup("/dir/f").unwrap(), f);
        assert_eq!(ed.lookup("g").unwrap(), g);
        let tf = ed.tree(f).unwrap();
        let tg = ed.tree(g).unwrap();
        assert_eq!(tf.extents, tg.extents);
        assert_eq!(ed.refcount(tf.extents[0].pblk).unwrap(), 2);
        assert_eq!(ed.inode(f).unwrap().unwrap().nlink, 2);
        assert_eq!(ed.inode(ROOT_INO).unwrap().unwrap().nlink, 3);
        assert_eq!(ed.inode(d).unwrap().unwrap().parent, ROOT_INO);
        let sb = ed.superblock();
        assert_eq!(sb.free_inodes, sb.inode_count - 5);
    }

    #[test]
    fn deep_trees() {
        let mut b = Builder::in_memory(&params()).unwrap();
        let ext: Vec<_> = (0..500).map(|i| FileExtent::new(2 * i, 1)).collect();
        let f = b.create(ROOT_INO, "big", &ext, 1000 * 1024).unwrap();
        b.set_node_fill(4).unwrap();
        let g = b.create(ROOT_INO, "deep", &ext, 1000 * 1024).unwrap();
        let ed = b.finish().unwrap();
        let t = ed.tree(f).unwrap();
        assert_eq!(t.extents.len(), 500);
        assert_eq!(t.depth, 2);
        let t = ed.tree(g).unwrap();
        assert_eq!(t.extents.len(), 500);
        assert_eq!(t.depth, 4);
        let inode = ed.inode(g).unwrap().unwrap();
        assert_eq!(inode.blocks, 500 + t.nodes.len() as u64);
    }

    #[test]
    fn rejects_misuse() {
        let mut b = Builder::in_memory(&params()).unwrap();
        assert!(b.mkdir(ROOT_INO, "a/b").is_err());
        assert!(b.mkdir(ROOT_INO, "..").is_err());
        b.mkdir(ROOT_INO, "a").unwrap();
        assert!(b.mkdir(ROOT_INO, "a").is_err());
        assert!(b.mkdir(99, "x").is_err());
        let bad = [FileExtent::new(5, 2), FileExtent::new(6, 1)];
        assert!(b.create(ROOT_INO, "f", &bad, 0).is_err());
        let data_start = b.geometry().data_start;
        assert!(b
            .create(ROOT_INO, "f", &[FileExtent::shared(0, data_start, 1)], 0)
            .is_err());
        assert!(b.set_node_fill(1).is_err());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The checks, in passes:
//!
//! 1. the superblock, against itself and the device;
//! 2. the journal superblock, and the log: when it holds transactions, it
//!    is recovered in memory as the kernel will recover it at the next
//!    mount, and every later pass (the superblock again, if the log
//!    replays it) reads the filesystem through the replayed blocks;
//! 3. the inode bitmap headers and bits;
//! 4. every inode slot, and for each inode its extent tree (counting every
//!    reference to every data block), its size and `blocks`, and the
//!    contents of directory and symlink blocks;
//! 5. metadata blocks (tree nodes, directory and symlink blocks) that are
//!    referenced more than once, with who references them;
//! 6. directory entries, link counts, parents and reachability;
//! 7. the block bitmap and the reference counts against the references
//!    counted in pass 4;
//! 8. the superblock free counts, if the filesystem is marked clean.
//!
//! Nothing on disk is trusted: every structure is verified before use, and
//! a corrupt structure is reported and skipped, so that the check goes on.
//! A log the kernel would refuse to recover is a problem; the filesystem is
//! then checked as it is on disk.

use std::collections::{BTreeMap, HashMap, HashSet};

use swapfs_common::crc32c;
use swapfs_common::format::{
    bitmap_bits_per_block, bitmap_get, dir_block_owner, dir_records, features, get_u16, get_u32,
    get_u64, inodes_per_block, magic, mode, refcounts_per_block, state, Extent, Geometry, Inode,
    Superblock, BLOCK_HEADER_SIZE, INODE_ROOT_OFFSET, INODE_SIZE, MAGIC, ROOT_INO, SUPERBLOCK_SIZE,
};
use swapfs_image::jlog::Replayed;
use swapfs_image::store::{read_tree, StoreError, Tree};
use swapfs_image::{Image, ReadBlocks};

use crate::journal;
use crate::report::{Error, Location, Report, Summary};

type Result<T> = std::result::Result<T, Error>;

/// First reserved byte of an inode (after `orphan_next`); the reserved
/// bytes end where the extent-tree root starts.
const INODE_RESERVED: usize = 112;

/// A plain bit set.
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(bits: u64) -> BitSet {
        BitSet(vec![0; bits.div_ceil(64) as usize])
    }

    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: u64) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            *w |= 1 << (i % 64);
        }
    }
}

/// What a metadata data block is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetaKind {
    Node,
    Dir,
    Symlink,
}

impl MetaKind {
    fn name(self) -> &'static str {
        match self {
            MetaKind::Node => "extent-tree node",
            MetaKind::Dir => "directory block",
            MetaKind::Symlink => "symlink block",
        }
    }
}

/// What pass 6 needs of an inode in use.
struct Info {
    mode: u16,
    nlink: u32,
    parent: u64,
    orphan_next: u64,
    /// The inode decoded without error.
    good: bool,
}

impl Info {
    fn is_dir(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFDIR
    }
}

/// A directory entry, for pass 6.
struct EntryRec {
    dir: u64,
    ino: u64,
    file_type: u8,
    name: Box<[u8]>,
}

fn name_str(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn kind_name(m: u16) -> &'static str {
    match m & mode::S_IFMT {
        mode::S_IFREG => "regular file",
        mode::S_IFDIR => "directory",
        mode::S_IFLNK => "symlink",
        mode::S_IFCHR => "character device",
        mode::S_IFBLK => "block device",
        mode::S_IFIFO => "FIFO",
        mode::S_IFSOCK => "socket",
        _ => "inode of unknown type",
    }
}

fn dtype_name(t: u8) -> &'static str {
    match t {
        1 => "DT_FIFO",
        2 => "DT_CHR",
        4 => "DT_DIR",
        6 => "DT_BLK",
        8 => "DT_REG",
        10 => "DT_LNK",
        12 => "DT_SOCK",
        _ => "DT_UNKNOWN",
    }
}

/// Consecutive blocks with the same problem, reported as one range.
struct Ranges {
    run: Option<(u64, u64, String)>,
}

impl Ranges {
    fn new() -> Ranges {
        Ranges { run: None }
    }

    fn add(&mut self, report: &mut Report, blk: u64, msg: String) {
        if let Some((_, last, m)) = &mut self.run {
            if *last + 1 == blk && *m == msg {
                *last = blk;
                return;
            }
        }
        self.flush(report);
        self.run = Some((blk, blk, msg));
    }

    fn flush(&mut self, report: &mut Report) {
        if let Some((first, last, msg)) = self.run.take() {
            report.problem(Location::Blocks { first, last }, msg);
        }
    }
}

/// Checks the filesystem on `img` (which is only read), as the kernel will
/// see it after it recovered the journal.
pub fn check(img: &Image) -> Result<Report> {
    let mut report = Report::default();
    // The superblock on disk: mount reads it first, to find the journal.
    let Some(mut sb) = check_superblock(img, None, &mut report)? else {
        return Ok(report);
    };
    let mut geo = match sb.geometry(img.blocks(sb.block_size()), crc32c::update) {
        Ok(g) => g,
        Err(e) => {
            report.problem(Location::Superblock, e.to_string());
            return Ok(report);
        }
    };
    let mut j = journal::examine(img, &sb, &geo)?;
    if let Some(b0) = j.recovery.as_ref().and_then(|r| r.blocks.get(&0)) {
        // Mount reads the superblock again, as the replay left it.
        let mut again = Report::default();
        let after = check_superblock(img, Some(b0), &mut again)?;
        let after = after.map(|a| (after_replay(img, &sb, &a), a));
        report = again;
        match after {
            Some((Ok(g), a)) => (sb, geo) = (a, g),
            refused => {
                if let Some((Err(msg), _)) = refused {
                    report.problem(Location::Superblock, msg);
                }
                report.problems.append(&mut j.problems);
                for i in &mut j.info {
                    *i = i.replace(
                        "checked as replayed",
                        "the kernel refuses the superblock it replays (nothing else checked)",
                    );
                }
                report.info.append(&mut j.info);
                return Ok(report);
            }
        }
        report.info.append(&mut j.info);
    } else {
        report.info.append(&mut j.info);
    }
    let data_blocks = usize::try_from(geo.data_blocks())
        .map_err(|_| Error::Io(std::io::Error::other("data region too large to check here")))?;
    let empty = BTreeMap::new();
    let view = Replayed {
        base: img,
        blocks: j.recovery.as_ref().map_or(&empty, |r| &r.blocks),
    };
    let mut c = Checker {
        img: &view,
        sb,
        geo,
        report,
        ibits: BitSet::new(geo.inode_count),
        ibits_known: Vec::new(),
        inodes: BTreeMap::new(),
        refs: vec![0; data_blocks + 1],
        meta: HashMap::new(),
        entries: Vec::new(),
        stats: Stats::default(),
    };
    c.report.notes.push(format!(
        "superblock: {} blocks of {} bytes, {} inodes, label \"{}\", state {:#x}, {} mounts",
        sb.block_count,
        sb.block_size(),
        sb.inode_count,
        sb.label_str(),
        sb.state,
        sb.mount_count
    ));
    c.report.problems.append(&mut j.problems);
    c.report.notes.append(&mut j.notes);
    c.read_inode_bitmap()?;
    c.scan_inodes()?;
    c.finish_counts();
    c.check_shared_metadata()?;
    c.check_namespace();
    c.check_block_map()?;
    c.check_free_counts();
    Ok(c.into_report())
}

/// Reads and checks the superblock: on disk, or the copy of block 0 a
/// journal replay leaves (`replayed`). `None` when nothing else can be
/// checked.
pub(crate) fn check_superblock(
    img: &Image,
    replayed: Option<&[u8]>,
    report: &mut Report,
) -> Result<Option<Superblock>> {
    let mut buf = [0u8; SUPERBLOCK_SIZE];
    match replayed.map(|b| b.get(..SUPERBLOCK_SIZE)) {
        Some(Some(b)) => buf.copy_from_slice(b),
        Some(None) => {
            report.problem(
                Location::Superblock,
                "the journal replays a block 0 shorter than the superblock",
            );
            return Ok(None);
        }
        None => {
            if img.size() < SUPERBLOCK_SIZE as u64 {
                return Err(Error::NotSwapfs(format!(
                    "the device has only {} bytes",
                    img.size()
                )));
            }
            img.read_at(0, &mut buf)?;
        }
    }
    let found = get_u32(&buf, 0);
    if found != MAGIC {
        let msg =
            format!("bad magic number {found:#010x} in the superblock (swapfs: {MAGIC:#010x})");
        if replayed.is_some() {
            report.problem(Location::Superblock, format!("after journal replay: {msg}"));
            return Ok(None);
        }
        return Err(Error::NotSwapfs(msg));
    }
    let sb = match Superblock::decode(&buf, crc32c::update) {
        Ok(sb) => sb,
        Err(e) => {
            report.problem(Location::Superblock, e.to_string());
            return Ok(None);
        }
    };
    let at = Location::Superblock;
    let reserved = (228..232).chain(240..SUPERBLOCK_SIZE);
    if let Some(off) = reserved.into_iter().find(|&o| buf[o] != 0) {
        report.problem(at.clone(), format!("reserved byte {off} is not zero"));
    }
    let block0 = match replayed {
        Some(b) => Some(b.to_vec()),
        None => {
            let mut b = vec![0u8; sb.block_size()];
            img.read_block(0, &mut b).is_ok().then_some(b)
        }
    };
    if let Some(block0) = block0 {
        if let Some(off) = (SUPERBLOCK_SIZE..block0.len()).find(|&o| block0[o] != 0) {
            report.problem(
                at.clone(),
                format!("byte {off} of block 0, after the superblock, is not zero"),
            );
        }
    }
    if sb.state & !state::KNOWN != 0 {
        report.problem(
            at.clone(),
            format!("unknown state bits {:#x}", sb.state & !state::KNOWN),
        );
    }
    if sb.state & state::ERROR != 0 {
        report.problem(
            at.clone(),
            "the ERROR state bit is set: errors were detected while the filesystem was mounted",
        );
    }
    if sb.feature_ro_compat & !features::RO_COMPAT != 0 {
        report.problem(
            at.clone(),
            format!(
                "unknown read-only compatible features {:#x}: their structures are not checked",
                sb.feature_ro_compat & !features::RO_COMPAT
            ),
        );
    }
    if sb.feature_compat & !features::COMPAT != 0 {
        report.notes.push(format!(
            "unknown compatible features {:#x} ignored",
            sb.feature_compat & !features::COMPAT
        ));
    }
    let len = sb.label.iter().position(|&c| c == 0).unwrap_or(32);
    if std::str::from_utf8(&sb.label[..len]).is_err() || sb.label[len..].iter().any(|&c| c != 0) {
        report.problem(at, "label is not NUL-padded UTF-8");
    }
    Ok(Some(sb))
}

/// The superblock mount reads again after the journal replay (`after`;
/// `before` is the one on disk that located the journal): its geometry,
/// or why the kernel refuses it.
pub(crate) fn after_replay(
    img: &Image,
    before: &Superblock,
    after: &Superblock,
) -> std::result::Result<Geometry, String> {
    let geo = after
        .geometry(img.blocks(before.block_size()), crc32c::update)
        .map_err(|e| format!("after journal replay: {e}"))?;
    if after.block_size_log2 != before.block_size_log2
        || (after.journal_start, after.journal_blocks)
            != (before.journal_start, before.journal_blocks)
    {
        return Err(
            "after journal replay, the block size or the journal's location changed: the kernel refuses to mount"
                .into(),
        );
    }
    Ok(geo)
}

#[derive(Default)]
struct Stats {
    files: u64,
    dirs: u64,
    symlinks: u64,
    special: u64,
    deepest: u16,
    unwritten_extents: u64,
    /// Inodes whose extent trees could not be read in full (corrupt trees
    /// and undecodable inodes).
    damaged_trees: u64,
}

struct Checker<'a> {
    /// The filesystem as the journal replay leaves it.
    img: &'a dyn ReadBlocks,
    sb: Superblock,
    geo: Geometry,
    report: Report,
    /// The on-disk inode bitmap (bit `ino - 1`).
    ibits: BitSet,
    /// Whether each inode bitmap block was valid (its bits are usable).
    ibits_known: Vec<bool>,
    inodes: BTreeMap<u64, Info>,
    /// References to each data block: a difference array during pass 4,
    /// then (after `finish_counts`) the counts themselves.
    refs: Vec<u32>,
    /// Data blocks used as metadata, with their owner.
    meta: HashMap<u64, (u64, MetaKind)>,
    entries: Vec<EntryRec>,
    stats: Stats,
}

impl Checker<'_> {
    fn bs(&self) -> usize {
        self.geo.block_size()
    }

    fn read(&self, blk: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.bs()];
        self.img.read_block(blk, &mut buf)?;
        Ok(buf)
    }

    fn problem(&mut self, at: Location, msg: impl Into<String>) {
        self.report.problem(at, msg);
    }

    fn into_report(mut self) -> Report {
        let used_data = self.refs.iter().filter(|&&r| r > 0).count() as u64;
        self.report.summary = Some(Summary {
            block_size: self.bs(),
            inodes_used: self.inodes.len() as u64,
            inode_count: self.geo.inode_count,
            blocks_used: self.geo.data_start + used_data,
            block_count: self.geo.block_count,
        });
        let s = &self.stats;
        self.report.notes.push(format!(
            "{} regular files, {} directories, {} symlinks, {} other; {} unwritten extents; deepest extent tree: {}",
            s.files, s.dirs, s.symlinks, s.special, s.unwritten_extents, s.deepest
        ));
        self.report
    }

    // Pass 3: the inode bitmap.

    fn read_inode_bitmap(&mut self) -> Result<()> {
        let per = bitmap_bits_per_block(self.bs());
        let count = self.geo.inode_count;
        for b in 0..self.geo.bbitmap_start - self.geo.ibitmap_start {
            let blk = self.geo.ibitmap_start + b;
            let buf = self.read(blk)?;
            if let Err(e) = self
                .geo
                .check_block(&buf, "inode bitmap", magic::INODE_BITMAP, blk)
            {
                self.problem(
                    Location::InodeBitmap(blk),
                    format!("{e}; its bits are not compared"),
                );
                self.ibits_known.push(false);
                continue;
            }
            self.ibits_known.push(true);
            let mut tail_clear = 0u64;
            for bit in 0..per {
                let i = b * per + bit;
                let set = bitmap_get(&buf, bit);
                if i < count {
                    if set {
                        self.ibits.set(i);
                    }
                } else if !set {
                    tail_clear += 1;
                }
            }
            if tail_clear > 0 {
                self.problem(
                    Location::InodeBitmap(blk),
                    format!("{tail_clear} bits past the last inode are clear (they must be set)"),
                );
            }
        }
        Ok(())
    }

    /// Inode `ino`'s bitmap bit, if its block is valid.
    fn inode_bit(&self, ino: u64) -> Option<bool> {
        let per = bitmap_bits_per_block(self.bs());
        let known = self
            .ibits_known
            .get(((ino - 1) / per) as usize)
            .copied()
            .unwrap_or(false);
        known.then(|| self.ibits.get(ino - 1))
    }

    // Pass 4: the inode table.

    fn scan_inodes(&mut self) -> Result<()> {
        // The table is read 1 MiB at a time: one read per block made
        // fsck of an 8 GiB filesystem (32,768 table blocks) take 3 s in a
        // TCG guest, after every fstests test.
        const CHUNK: u64 = 1 << 20;
        let bs = self.bs();
        let itable_blocks = self.geo.data_start - self.geo.itable_start;
        let step = (CHUNK / bs as u64).max(1);
        let mut buf = Vec::new();
        let mut first = 0;
        while first < itable_blocks {
            let n = step.min(itable_blocks - first);
            buf.resize(n as usize * bs, 0);
            self.img
                .read_blocks(self.geo.itable_start + first, bs, &mut buf)?;
            for (i, block) in buf.chunks_exact(bs).enumerate() {
                self.scan_inode_block(first + i as u64, block)?;
            }
            first += n;
        }
        Ok(())
    }

    /// Checks the slots of inode table block number `b` (from the table's
    /// start), whose contents are `buf`.
    fn scan_inode_block(&mut self, b: u64, buf: &[u8]) -> Result<()> {
        let per = inodes_per_block(self.bs());
        let blk = self.geo.itable_start + b;
        if buf.iter().fold(0, |acc, &x| acc | x) == 0 {
            // Free slots only (the common case, checked without decoding
            // each one): only their bitmap bits can be wrong.
            let last = ((b + 1) * per).min(self.geo.inode_count);
            for ino in b * per + 1..=last {
                if self.inode_bit(ino) == Some(true) {
                    self.problem(
                        Location::Inode(ino),
                        "free (mode 0) but marked in use in the inode bitmap",
                    );
                }
            }
            return Ok(());
        }
        let mut stray = 0;
        for (slot, raw) in buf.chunks_exact(INODE_SIZE).enumerate() {
            let ino = b * per + slot as u64 + 1;
            if ino > self.geo.inode_count {
                if raw.iter().any(|&x| x != 0) {
                    stray += 1;
                }
                continue;
            }
            self.check_slot(ino, raw)?;
        }
        if stray > 0 {
            self.problem(
                Location::InodeTable(blk),
                format!("{stray} slots past the last inode are not zero"),
            );
        }
        Ok(())
    }

    fn check_slot(&mut self, ino: u64, raw: &[u8]) -> Result<()> {
        let at = Location::Inode(ino);
        let m = get_u16(raw, 0);
        let bit = self.inode_bit(ino);
        if m == 0 {
            if raw.iter().any(|&x| x != 0) {
                self.problem(at.clone(), "free (mode 0) but not zeroed");
            }
            if bit == Some(true) {
                self.problem(at, "free (mode 0) but marked in use in the inode bitmap");
            }
            return Ok(());
        }
        if bit == Some(false) {
            self.problem(
                at.clone(),
                format!("in use (mode {m:#o}) but marked free in the inode bitmap"),
            );
        }
        match Inode::decode(&self.geo, ino, raw) {
            Ok(Some(inode)) => self.check_inode(ino, &inode, raw),
            Ok(None) => Ok(()),
            Err(e) => {
                self.problem(at, e.to_string());
                self.stats.damaged_trees += 1;
                self.inodes.insert(
                    ino,
                    Info {
                        mode: m,
                        nlink: get_u32(raw, 4),
                        parent: 0,
                        orphan_next: 0,
                        good: false,
                    },
                );
                Ok(())
            }
        }
    }

    /// Counts one reference to each of `len` data blocks from `pblk`
    /// (already checked to be in the data region).
    fn add_refs(&mut self, pblk: u64, len: u64) {
        let first = (pblk - self.geo.data_start) as usize;
        let end = first + len as usize;
        if let Some(r) = self.refs.get_mut(first) {
            *r = r.wrapping_add(1);
        }
        if let Some(r) = self.refs.get_mut(end) {
            *r = r.wrapping_sub(1);
        }
    }

    /// Records `blk` as metadata of `ino`; false if something already
    /// claimed it as metadata.
    fn claim(&mut self, blk: u64, ino: u64, kind: MetaKind) -> bool {
        match self.meta.entry(blk) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((ino, kind));
                true
            }
        }
    }

    fn check_inode(&mut self, ino: u64, inode: &Inode, raw: &[u8]) -> Result<()> {
        let at = Location::Inode(ino);
        let reserved = get_u16(raw, 2);
        if reserved != 0 {
            self.problem(
                at.clone(),
                format!("reserved field (offset 2) is {reserved:#x}, expected 0"),
            );
        }
        if let Some(off) = (INODE_RESERVED..INODE_ROOT_OFFSET).find(|&o| raw.get(o) != Some(&0)) {
            self.problem(at.clone(), format!("reserved byte {off} is not zero"));
        }
        if inode.flags != 0 {
            self.problem(at.clone(), format!("unknown flags {:#x}", inode.flags));
        }
        let kind = inode.mode & mode::S_IFMT;
        let device = kind == mode::S_IFCHR || kind == mode::S_IFBLK;
        if !device && inode.rdev != 0 {
            self.problem(
                at.clone(),
                format!("rdev {:#x} on a {}", inode.rdev, kind_name(inode.mode)),
            );
        }
        self.inodes.insert(
            ino,
            Info {
                mode: inode.mode,
                nlink: inode.nlink,
                parent: inode.parent,
                orphan_next: inode.orphan_next,
                good: true,
            },
        );

        let (tree, res) = read_tree(self.img, &self.geo, &inode.root, ino);
        let tree_ok = match res {
            Ok(()) => true,
            Err(StoreError::Io(e)) => return Err(Error::Io(e)),
            Err(StoreError::Format(e)) => {
                self.problem(at.clone(), format!("extent tree: {e}"));
                self.stats.damaged_trees += 1;
                false
            }
        };
        self.stats.deepest = self.stats.deepest.max(tree.depth);
        for &blk in &tree.nodes {
            self.add_refs(blk, 1);
            self.claim(blk, ino, MetaKind::Node);
        }
        let mut mapped = 0u64;
        for e in &tree.extents {
            self.add_refs(e.pblk, u64::from(e.len));
            mapped = mapped.saturating_add(u64::from(e.len));
            if e.is_unwritten() {
                self.stats.unwritten_extents += 1;
            }
        }
        if tree_ok {
            let expected = mapped.saturating_add(tree.nodes.len() as u64);
            if inode.blocks != expected {
                self.problem(
                    at.clone(),
                    format!(
                        "blocks is {}, expected {expected} ({mapped} mapped, {} tree nodes)",
                        inode.blocks,
                        tree.nodes.len()
                    ),
                );
            }
        }
        match kind {
            mode::S_IFDIR => {
                self.stats.dirs += 1;
                self.check_dir(ino, inode, &tree, tree_ok)?;
            }
            mode::S_IFLNK => {
                self.stats.symlinks += 1;
                self.check_symlink(ino, inode, &tree, tree_ok)?;
            }
            mode::S_IFREG => self.stats.files += 1,
            _ => {
                self.stats.special += 1;
                if !tree.extents.is_empty() || !tree.nodes.is_empty() {
                    self.problem(
                        at,
                        format!(
                            "a {} has an extent tree ({} extents)",
                            kind_name(inode.mode),
                            tree.extents.len()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn check_dir(&mut self, ino: u64, inode: &Inode, tree: &Tree, tree_ok: bool) -> Result<()> {
        let at = Location::Inode(ino);
        let bs = self.bs() as u64;
        let mut next = 0u64;
        for e in &tree.extents {
            if e.lblk != next {
                self.problem(
                    at.clone(),
                    format!(
                        "directory has a hole at logical blocks {next}-{}",
                        e.lblk.saturating_sub(1)
                    ),
                );
            }
            if e.is_unwritten() {
                self.problem(
                    at.clone(),
                    format!("directory blocks {}-{} are unwritten", e.lblk, e.lend() - 1),
                );
            }
            next = e.lend();
        }
        if tree_ok && Some(inode.size) != next.checked_mul(bs) {
            self.problem(
                at.clone(),
                format!(
                    "size is {}, expected {} ({next} blocks of {bs} bytes)",
                    inode.size,
                    next.saturating_mul(bs)
                ),
            );
        }
        let mut names = HashSet::new();
        for e in &tree.extents {
            for i in 0..u64::from(e.len) {
                let blk = e.pblk + i;
                if self.claim(blk, ino, MetaKind::Dir) && !e.is_unwritten() {
                    self.check_dir_block(ino, e.lblk + i, blk, &mut names)?;
                }
            }
        }
        Ok(())
    }

    fn check_dir_block(
        &mut self,
        dir: u64,
        lblk: u64,
        blk: u64,
        names: &mut HashSet<Box<[u8]>>,
    ) -> Result<()> {
        let at = Location::Inode(dir);
        let buf = self.read(blk)?;
        let here = format!("directory block {lblk} (block {blk})");
        if let Err(e) = self
            .geo
            .check_block(&buf, "directory block", magic::DIR, blk)
        {
            self.problem(at, format!("{here}: {e}"));
            return Ok(());
        }
        let owner = dir_block_owner(&buf);
        if owner != dir {
            self.problem(
                at.clone(),
                format!("{here}: owner is {owner}, expected {dir}"),
            );
        }
        let reserved = get_u64(&buf, BLOCK_HEADER_SIZE + 8);
        if reserved != 0 {
            self.problem(
                at.clone(),
                format!("{here}: reserved header field is {reserved:#x}, expected 0"),
            );
        }
        for rec in dir_records(&self.geo, &buf) {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    self.problem(
                        at.clone(),
                        format!("{here}: {e}; the rest of the block is skipped"),
                    );
                    break;
                }
            };
            if rec.ino == 0 {
                continue;
            }
            if !names.insert(rec.name.into()) {
                self.problem(
                    Location::Entry {
                        dir,
                        name: name_str(rec.name),
                    },
                    format!("duplicate name (again in {here}, offset {})", rec.offset),
                );
                continue;
            }
            self.entries.push(EntryRec {
                dir,
                ino: rec.ino,
                file_type: rec.file_type,
                name: rec.name.into(),
            });
        }
        Ok(())
    }

    fn check_symlink(&mut self, ino: u64, inode: &Inode, tree: &Tree, tree_ok: bool) -> Result<()> {
        let at = Location::Inode(ino);
        let max = self.geo.symlink_max() as u64;
        if inode.size == 0 || inode.size > max {
            self.problem(
                at.clone(),
                format!("symlink size is {}, expected 1 to {max}", inode.size),
            );
        }
        let only = match tree.extents.as_slice() {
            [e] if e.lblk == 0 && e.len == 1 && !e.is_unwritten() => Some(*e),
            _ => None,
        };
        let Some(Extent { pblk, .. }) = only else {
            if tree_ok {
                self.problem(
                    at,
                    format!(
                        "symlink must map exactly logical block 0, written; it has {} extents",
                        tree.extents.len()
                    ),
                );
            }
            return Ok(());
        };
        if !self.claim(pblk, ino, MetaKind::Symlink) {
            return Ok(());
        }
        let buf = self.read(pblk)?;
        if let Err(e) = self
            .geo
            .check_block(&buf, "symlink block", magic::SYMLINK, pblk)
        {
            self.problem(at, e.to_string());
            return Ok(());
        }
        let len = inode.size.min(max) as usize;
        let target = buf
            .get(BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + len)
            .unwrap_or(&[]);
        if let Some(i) = target.iter().position(|&c| c == 0) {
            self.problem(at, format!("symlink target has a NUL byte at {i}"));
        }
        Ok(())
    }

    // Pass 5: shared metadata.

    /// Turns the difference array into counts.
    fn finish_counts(&mut self) {
        let mut run = 0u32;
        for r in self.refs.iter_mut() {
            run = run.wrapping_add(*r);
            *r = run;
        }
        self.refs.pop();
    }

    fn count(&self, blk: u64) -> u32 {
        self.refs
            .get((blk - self.geo.data_start) as usize)
            .copied()
            .unwrap_or(0)
    }

    fn check_shared_metadata(&mut self) -> Result<()> {
        let mut shared: BTreeMap<u64, Vec<String>> = self
            .meta
            .keys()
            .filter(|&&b| self.count(b) > 1)
            .map(|&b| (b, Vec::new()))
            .collect();
        if shared.is_empty() {
            return Ok(());
        }
        // Find every reference to those blocks (pass 1b of e2fsck).
        let inos: Vec<(u64, u16)> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.good)
            .map(|(&n, i)| (n, i.mode))
            .collect();
        for (ino, m) in inos {
            let Some((blk, off)) = self.geo.inode_location(ino) else {
                continue;
            };
            let buf = self.read(blk)?;
            let raw = buf.get(off..off + INODE_SIZE).unwrap_or(&[]);
            let Ok(Some(inode)) = Inode::decode(&self.geo, ino, raw) else {
                continue;
            };
            let (tree, _) = read_tree(self.img, &self.geo, &inode.root, ino);
            for n in &tree.nodes {
                if let Some(v) = shared.get_mut(n) {
                    v.push(format!("extent-tree node of inode {ino}"));
                }
            }
            let what = match m & mode::S_IFMT {
                mode::S_IFDIR => "directory block",
                mode::S_IFLNK => "symlink block",
                _ => "data",
            };
            for e in &tree.extents {
                for (b, v) in shared.range_mut(e.pblk..e.lend_pblk()) {
                    v.push(format!(
                        "{what} of inode {ino} (logical block {})",
                        e.lblk + (b - e.pblk)
                    ));
                }
            }
        }
        for (blk, users) in shared {
            let (owner, kind) = self.meta.get(&blk).copied().unwrap_or((0, MetaKind::Node));
            self.problem(
                Location::Blocks {
                    first: blk,
                    last: blk,
                },
                format!(
                    "{} of inode {owner} must not be shared, but has {} references: {}",
                    kind.name(),
                    self.count(blk),
                    users.join(", ")
                ),
            );
        }
        Ok(())
    }

    // Pass 6: names.

    /// Walks the orphan list; returns its members.
    fn check_orphans(&mut self) -> HashSet<u64> {
        let mut on_list = HashSet::new();
        let mut next = self.sb.orphan_head;
        let mut prev: Option<u64> = None;
        while next != 0 {
            let at = match prev {
                None => Location::Superblock,
                Some(p) => Location::Inode(p),
            };
            let field = if prev.is_none() {
                "orphan_head"
            } else {
                "orphan_next"
            };
            if !self.inodes.contains_key(&next) {
                self.problem(at, format!("{field} is {next}, a free inode"));
                break;
            }
            if !on_list.insert(next) {
                self.problem(at, format!("{field} is {next}: the orphan list loops"));
                break;
            }
            prev = Some(next);
            next = self.inodes.get(&next).map(|i| i.orphan_next).unwrap_or(0);
        }
        let stray: Vec<(u64, u64)> = self
            .inodes
            .iter()
            .filter(|(n, i)| i.orphan_next != 0 && !on_list.contains(n))
            .map(|(&n, i)| (n, i.orphan_next))
            .collect();
        for (ino, next) in stray {
            self.problem(
                Location::Inode(ino),
                format!("orphan_next is {next}, but the inode is not on the orphan list"),
            );
        }
        if !on_list.is_empty() {
            self.report.notes.push(format!(
                "{} inodes on the orphan list (the next mount finishes them)",
                on_list.len()
            ));
        }
        on_list
    }

    fn check_namespace(&mut self) {
        let orphans = self.check_orphans();
        let mut names: HashMap<u64, u32> = HashMap::new();
        let mut subdirs: HashMap<u64, u32> = HashMap::new();
        let mut named_in: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let at = Location::Entry {
                dir: e.dir,
                name: name_str(&e.name),
            };
            if e.ino == ROOT_INO {
                self.problem(at, "names the root directory");
                continue;
            }
            let Some((good, imode, is_dir)) = self
                .inodes
                .get(&e.ino)
                .map(|i| (i.good, i.mode, i.is_dir()))
            else {
                self.problem(at, format!("refers to inode {}, which is free", e.ino));
                continue;
            };
            let n = names.entry(e.ino).or_default();
            *n = n.saturating_add(1);
            named_in.entry(e.ino).or_default().push(e.dir);
            children.entry(e.dir).or_default().push(e.ino);
            if good && mode::dtype(imode) != e.file_type {
                let msg = format!(
                    "type is {} ({}), but inode {} is a {} ({})",
                    dtype_name(e.file_type),
                    e.file_type,
                    e.ino,
                    kind_name(imode),
                    dtype_name(mode::dtype(imode))
                );
                self.problem(at, msg);
            }
            if is_dir {
                let n = subdirs.entry(e.dir).or_default();
                *n = n.saturating_add(1);
            }
        }

        let root_ok = match self.inodes.get(&ROOT_INO) {
            None => {
                self.problem(Location::Inode(ROOT_INO), "the root directory is free");
                false
            }
            Some(i) if i.good && !i.is_dir() => {
                self.problem(
                    Location::Inode(ROOT_INO),
                    format!("the root inode is a {}, not a directory", kind_name(i.mode)),
                );
                false
            }
            Some(i) => i.good,
        };

        let reachable = self.reachable(&children, &orphans, root_ok);
        let mut problems = Vec::new();
        for (&ino, info) in &self.inodes {
            if !info.good {
                continue;
            }
            let at = Location::Inode(ino);
            let dirs = named_in.get(&ino).map(Vec::as_slice).unwrap_or(&[]);
            if orphans.contains(&ino) && dirs.is_empty() && info.nlink == 0 {
                // Unlinked while open (or an emptied, removed directory).
                continue;
            }
            let expected = if info.is_dir() {
                if ino == ROOT_INO {
                    if info.parent != ROOT_INO {
                        problems.push((
                            at.clone(),
                            format!(
                                "the root directory's parent is {}, expected {ROOT_INO}",
                                info.parent
                            ),
                        ));
                    }
                } else if dirs.len() > 1 {
                    problems.push((
                        at.clone(),
                        format!(
                            "directory is named by {} entries (in directories {dirs:?})",
                            dirs.len()
                        ),
                    ));
                } else if let [p] = dirs {
                    if info.parent != *p {
                        problems.push((
                            at.clone(),
                            format!(
                                "parent is {}, but the directory is in directory {p}",
                                info.parent
                            ),
                        ));
                    }
                }
                subdirs.get(&ino).copied().unwrap_or(0).saturating_add(2)
            } else {
                names.get(&ino).copied().unwrap_or(0)
            };
            if reachable.as_ref().is_none_or(|r| r.contains(&ino)) && info.nlink != expected {
                problems.push((
                    at,
                    format!("link count is {}, expected {expected}", info.nlink),
                ));
            }
        }
        for (at, msg) in problems {
            self.problem(at, msg);
        }
        if let Some(r) = reachable {
            self.report_unreachable(&r, &children, &named_in);
        } else {
            self.report
                .notes
                .push("the root directory is unusable: reachability not checked".into());
        }
    }

    /// The inodes reachable from the root or the orphan list (`None` if the
    /// root is unusable).
    fn reachable(
        &self,
        children: &HashMap<u64, Vec<u64>>,
        orphans: &HashSet<u64>,
        root_ok: bool,
    ) -> Option<HashSet<u64>> {
        if !root_ok {
            return None;
        }
        let mut seen = HashSet::from([ROOT_INO]);
        seen.extend(orphans);
        let mut stack: Vec<u64> = seen.iter().copied().collect();
        while let Some(d) = stack.pop() {
            for &c in children.get(&d).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(c) {
                    stack.push(c);
                }
            }
        }
        Some(seen)
    }

    /// Reports inodes in use that the root does not reach: each detached
    /// subtree once, at its top.
    fn report_unreachable(
        &mut self,
        reachable: &HashSet<u64>,
        children: &HashMap<u64, Vec<u64>>,
        named_in: &HashMap<u64, Vec<u64>>,
    ) {
        let lost: Vec<u64> = self
            .inodes
            .keys()
            .copied()
            .filter(|i| !reachable.contains(i))
            .collect();
        let lost_set: HashSet<u64> = lost.iter().copied().collect();
        let mut covered = HashSet::new();
        let mut tops = Vec::new();
        let mut in_cycles = Vec::new();
        // Tops: not named by any lost directory.
        for &i in &lost {
            let named_by_lost = named_in
                .get(&i)
                .is_some_and(|ds| ds.iter().any(|d| lost_set.contains(d)));
            if !named_by_lost {
                tops.push(i);
            }
        }
        let mut below_counts = Vec::new();
        for &t in &tops {
            let mut below = 0u64;
            let mut stack = vec![t];
            covered.insert(t);
            while let Some(d) = stack.pop() {
                for &c in children.get(&d).map(Vec::as_slice).unwrap_or(&[]) {
                    if lost_set.contains(&c) && covered.insert(c) {
                        below += 1;
                        stack.push(c);
                    }
                }
            }
            below_counts.push(below);
        }
        for &i in &lost {
            if !covered.contains(&i) {
                in_cycles.push(i);
            }
        }
        for (t, below) in tops.into_iter().zip(below_counts) {
            let (m, nlink) = self
                .inodes
                .get(&t)
                .map(|i| (i.mode, i.nlink))
                .unwrap_or((0, 0));
            let mut msg = format!(
                "{} (link count {nlink}) is not reachable from the root directory",
                kind_name(m)
            );
            if below > 0 {
                msg += &format!(", nor are the {below} inodes below it");
            }
            self.problem(Location::Inode(t), msg);
        }
        for i in in_cycles {
            self.problem(
                Location::Inode(i),
                "is not reachable from the root directory (directory cycle)",
            );
        }
    }

    // Pass 7: block bitmap and reference counts.

    /// Reads the block bitmap; `None` entries are blocks with a bad header.
    fn read_block_bitmap(&mut self) -> Result<(BitSet, Vec<bool>)> {
        let per = bitmap_bits_per_block(self.bs());
        let data = self.geo.data_blocks();
        let mut bits = BitSet::new(data);
        let mut known = Vec::new();
        for b in 0..self.geo.refcount_start - self.geo.bbitmap_start {
            let blk = self.geo.bbitmap_start + b;
            let buf = self.read(blk)?;
            if let Err(e) = self
                .geo
                .check_block(&buf, "block bitmap", magic::BLOCK_BITMAP, blk)
            {
                self.problem(
                    Location::BlockBitmap(blk),
                    format!("{e}; its bits are not compared"),
                );
                known.push(false);
                continue;
            }
            known.push(true);
            let mut tail_clear = 0u64;
            for bit in 0..per {
                let i = b * per + bit;
                let set = bitmap_get(&buf, bit);
                if i >= data {
                    tail_clear += u64::from(!set);
                } else if set {
                    bits.set(i);
                }
            }
            if tail_clear > 0 {
                self.problem(
                    Location::BlockBitmap(blk),
                    format!(
                        "{tail_clear} bits past the last data block are clear (they must be set)"
                    ),
                );
            }
        }
        Ok((bits, known))
    }

    /// Compares the block bitmap and the reference counts with the
    /// references counted in pass 4, one line per range of blocks with the
    /// same problem.
    fn check_block_map(&mut self) -> Result<()> {
        let (bits, bits_known) = self.read_block_bitmap()?;
        let bpb = bitmap_bits_per_block(self.bs());
        let per = refcounts_per_block(self.bs());
        let data = self.geo.data_blocks();
        let mut ranges = Ranges::new();
        for b in 0..self.geo.itable_start - self.geo.refcount_start {
            let blk = self.geo.refcount_start + b;
            let buf = self.read(blk)?;
            let counts_known =
                match self
                    .geo
                    .check_block(&buf, "reference-count block", magic::REFCOUNT, blk)
                {
                    Ok(()) => true,
                    Err(e) => {
                        ranges.flush(&mut self.report);
                        self.problem(
                            Location::Refcounts(blk),
                            format!("{e}; its counts are not compared"),
                        );
                        false
                    }
                };
            let mut tail = 0u64;
            for j in 0..per {
                let i = b * per + j;
                let found = get_u16(&buf, BLOCK_HEADER_SIZE + 2 * j as usize);
                if i >= data {
                    tail += u64::from(counts_known && found != 0);
                    continue;
                }
                let refs = self.refs.get(i as usize).copied().unwrap_or(0);
                let count = counts_known.then_some(found);
                let bit = bits_known
                    .get((i / bpb) as usize)
                    .copied()
                    .unwrap_or(false)
                    .then(|| bits.get(i));
                if let Some(msg) = self.block_map_problem(refs, count, bit) {
                    ranges.add(&mut self.report, self.geo.data_start + i, msg);
                }
            }
            if tail > 0 {
                ranges.flush(&mut self.report);
                self.problem(
                    Location::Refcounts(blk),
                    format!("{tail} counts past the last data block are not zero"),
                );
            }
        }
        ranges.flush(&mut self.report);
        Ok(())
    }

    /// What is wrong with a data block that has `refs` references, the
    /// reference count `count` and the bitmap bit `bit` (`None`: unknown).
    fn block_map_problem(
        &self,
        refs: u32,
        count: Option<u16>,
        bit: Option<bool>,
    ) -> Option<String> {
        let count_bad = count.filter(|&c| u32::from(c) != refs);
        let bit_bad = bit.filter(|&b| b != (refs > 0));
        let mut msg = match (count_bad, bit_bad) {
            (None, None) => return None,
            (Some(c), None) if refs > u32::from(u16::MAX) => {
                format!("{refs} references overflow the reference count ({c})")
            }
            (Some(c), None) => format!("reference count is {c}, expected {refs}"),
            (Some(c), Some(b)) => format!(
                "reference count is {c}, expected {refs}, and the block bitmap marks it {}",
                if b { "in use" } else { "free" }
            ),
            (None, Some(_)) if refs > 0 => {
                let s = if refs == 1 { "" } else { "s" };
                format!("in use ({refs} reference{s}), but marked free in the block bitmap")
            }
            (None, Some(_)) => {
                "marked in use in the block bitmap, but nothing references it".to_string()
            }
        };
        if refs == 0 && self.stats.damaged_trees > 0 {
            msg += " (unless an unreadable extent tree does)";
        }
        Some(msg)
    }

    // Pass 8: free counts.

    fn check_free_counts(&mut self) {
        if self.sb.state & state::CLEAN == 0 {
            self.report.notes.push(
                "the filesystem is not marked clean (mounted, or not unmounted cleanly): free counts not checked"
                    .into(),
            );
            return;
        }
        let used = self.refs.iter().filter(|&&r| r > 0).count() as u64;
        let free_blocks = self.geo.data_blocks() - used;
        if self.sb.free_blocks != free_blocks {
            self.problem(
                Location::Superblock,
                format!(
                    "free block count is {}, expected {free_blocks}",
                    self.sb.free_blocks
                ),
            );
        }
        let free_inodes = self.geo.inode_count - self.inodes.len() as u64;
        if self.sb.free_inodes != free_inodes {
            self.problem(
                Location::Superblock,
                format!(
                    "free inode count is {}, expected {free_inodes}",
                    self.sb.free_inodes
                ),
            );
        }
    }
}

/// One past the last physical block of an extent.
trait PblkEnd {
    fn lend_pblk(&self) -> u64;
}

impl PblkEnd for Extent {
    fn lend_pblk(&self) -> u64 {
        self.pblk.saturating_add(u64::from(self.len))
    }
}

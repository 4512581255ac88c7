// SPDX-License-Identifier: GPL-2.0

//! Creating a filesystem: the core of `mkfs.swapfs`, shared with the test
//! image builder.

use std::fmt;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use swapfs_common::crc32c;
use swapfs_common::format::{
    bitmap_bits_per_block, bitmap_set, magic, mode, put_u16, refcounts_per_block, state,
    FormatError, Geometry, Inode, LayoutParams, Superblock, Timestamp, INODE_SIZE,
    MIN_BLOCK_SIZE_LOG2, MIN_JOURNAL_BLOCKS, ROOT_INO,
};

use crate::device::Image;
use crate::jbd2::JournalSuperblock;

/// Bytes of filesystem per inode by default.
pub const BYTES_PER_INODE: u64 = 16 * 1024;
/// Fewest inodes mkfs creates by default.
pub const MIN_DEFAULT_INODES: u64 = 64;
/// Largest default journal, in blocks.
pub const MAX_DEFAULT_JOURNAL_BLOCKS: u64 = 32768;

/// What the new filesystem looks like.
#[derive(Clone, Copy, Debug)]
pub struct MkfsParams {
    /// log2 of the block size (10 to 12).
    pub block_size_log2: u32,
    /// Size of the filesystem in blocks.
    pub block_count: u64,
    /// Number of inodes.
    pub inode_count: u64,
    /// Journal length in blocks.
    pub journal_blocks: u64,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume label, NUL-padded.
    pub label: [u8; 32],
    /// Creation time (mkfs time and the root directory's times).
    pub time: Timestamp,
}

impl MkfsParams {
    /// The defaults for `block_count` blocks of `1 << block_size_log2`
    /// bytes: [`default_inodes`], [`default_journal_blocks`], a zero UUID,
    /// no label, the current time.
    pub fn new(block_size_log2: u32, block_count: u64) -> MkfsParams {
        MkfsParams {
            block_size_log2,
            block_count,
            inode_count: default_inodes(block_size_log2, block_count),
            journal_blocks: default_journal_blocks(block_count),
            uuid: [0; 16],
            label: [0; 32],
            time: now(),
        }
    }
}

/// One inode per [`BYTES_PER_INODE`], at least [`MIN_DEFAULT_INODES`], at
/// most `u32::MAX`.
pub fn default_inodes(block_size_log2: u32, block_count: u64) -> u64 {
    let shift = block_size_log2.clamp(MIN_BLOCK_SIZE_LOG2, 16);
    let bytes = block_count.saturating_mul(1 << shift);
    (bytes / BYTES_PER_INODE).clamp(MIN_DEFAULT_INODES, u64::from(u32::MAX))
}

/// A 64th of the filesystem, between 1024 and 32768 blocks.
pub fn default_journal_blocks(block_count: u64) -> u64 {
    (block_count / 64).clamp(MIN_JOURNAL_BLOCKS, MAX_DEFAULT_JOURNAL_BLOCKS)
}

/// The current time (the epoch if the clock is before it).
pub fn now() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(_) => Timestamp::default(),
    }
}

/// A label for the superblock: at most 32 bytes of UTF-8, without NUL.
pub fn label_from_str(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() > 32 || b.contains(&0) {
        return None;
    }
    let mut label = [0u8; 32];
    label[..b.len()].copy_from_slice(b);
    Some(label)
}

/// Why mkfs failed.
#[derive(Debug)]
pub enum MkfsError {
    /// The parameters do not give a valid layout.
    Layout(FormatError),
    /// The device is smaller than the requested filesystem.
    DeviceTooSmall {
        /// Blocks requested.
        needed: u64,
        /// Blocks the device holds.
        available: u64,
    },
    /// Reading or writing the device failed.
    Io(io::Error),
}

impl fmt::Display for MkfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MkfsError::Layout(e) => write!(f, "{e}"),
            MkfsError::DeviceTooSmall { needed, available } => write!(
                f,
                "the filesystem needs {needed} blocks but the device has only {available}"
            ),
            MkfsError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MkfsError {}

impl From<io::Error> for MkfsError {
    fn from(e: io::Error) -> MkfsError {
        MkfsError::Io(e)
    }
}

impl From<FormatError> for MkfsError {
    fn from(e: FormatError) -> MkfsError {
        MkfsError::Layout(e)
    }
}

/// The superblock (not yet written) and geometry of a new filesystem.
pub fn plan(p: &MkfsParams, device_blocks: u64) -> Result<(Superblock, Geometry), MkfsError> {
    if p.block_count > device_blocks {
        return Err(MkfsError::DeviceTooSmall {
            needed: p.block_count,
            available: device_blocks,
        });
    }
    let mut sb = Superblock::layout(LayoutParams {
        block_size_log2: p.block_size_log2,
        block_count: p.block_count,
        inode_count: p.inode_count,
        journal_blocks: p.journal_blocks,
    })?;
    sb.uuid = p.uuid;
    sb.label = p.label;
    sb.mkfs_time = p.time.sec;
    sb.write_time = p.time.sec;
    sb.state = state::CLEAN;
    sb.free_inodes = sb.inode_count - 1;
    let geo = sb.geometry(device_blocks, crc32c::update)?;
    Ok((sb, geo))
}

/// Writes a new, empty filesystem to `img` and returns its superblock.
///
/// Block 0 is zeroed first and the superblock written last, after a sync,
/// so an interrupted run leaves no valid-looking filesystem behind. The data
/// region is not touched, and the image never changes size.
pub fn format(img: &mut Image, p: &MkfsParams) -> Result<Superblock, MkfsError> {
    let bs = 1usize << p.block_size_log2.min(16);
    let (sb, geo) = plan(p, img.blocks(bs))?;
    let bs = geo.block_size();
    img.write_block(0, &vec![0u8; bs])?;

    // The journal: a clean jbd2 superblock, the rest zeroed.
    let mut buf = vec![0u8; bs];
    // journal_blocks <= u32::MAX was checked by geometry().
    let jsb = JournalSuperblock::new(bs as u32, sb.journal_blocks as u32, sb.uuid);
    jsb.encode(&mut buf);
    img.write_block(sb.journal_start, &buf)?;
    img.zero_blocks(sb.journal_start + 1, sb.journal_blocks - 1, bs)?;

    write_inode_bitmap(img, &geo, |ino| ino == ROOT_INO)?;
    write_block_bitmap(img, &geo, |_| false)?;
    write_refcounts(img, &geo, |_| 0)?;

    img.zero_blocks(sb.itable_start, sb.itable_blocks, bs)?;
    let mut root = Inode::new(mode::S_IFDIR | 0o755, p.time);
    root.nlink = 2;
    root.parent = ROOT_INO;
    write_inode(img, &geo, ROOT_INO, &root)?;
    img.sync()?;

    write_superblock(img, &geo, &sb)?;
    img.sync()?;
    Ok(sb)
}

/// Writes the superblock into block 0 (the rest of the block zeroed).
pub fn write_superblock(img: &mut Image, geo: &Geometry, sb: &Superblock) -> io::Result<()> {
    let mut buf = vec![0u8; geo.block_size()];
    sb.encode(&mut buf, crc32c::update);
    img.write_block(0, &buf)
}

/// Encodes inode `ino` into its slot of the inode table.
pub fn write_inode(img: &mut Image, geo: &Geometry, ino: u64, inode: &Inode) -> io::Result<()> {
    update_inode_slot(img, geo, ino, |raw| inode.encode(geo, ino, raw))
}

/// Calls `f` on the 256 raw bytes of inode `ino`'s slot and writes them
/// back (no checksum is computed).
pub fn update_inode_slot(
    img: &mut Image,
    geo: &Geometry,
    ino: u64,
    f: impl FnOnce(&mut [u8]),
) -> io::Result<()> {
    let (blk, off) = geo.inode_location(ino).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no inode {ino} in this filesystem"),
        )
    })?;
    let mut buf = vec![0u8; geo.block_size()];
    img.read_block(blk, &mut buf)?;
    if let Some(raw) = buf.get_mut(off..off + INODE_SIZE) {
        f(raw);
    }
    img.write_block(blk, &buf)
}

/// Writes a bitmap region of `blocks` blocks from `start`: bit `i` is set
/// when `i >= valid` or `used(i)`.
fn write_bitmap(
    img: &mut Image,
    geo: &Geometry,
    start: u64,
    blocks: u64,
    magic: u32,
    valid: u64,
    used: impl Fn(u64) -> bool,
) -> io::Result<()> {
    let bs = geo.block_size();
    let per = bitmap_bits_per_block(bs);
    let mut buf = vec![0u8; bs];
    for b in 0..blocks {
        buf.fill(0);
        for bit in 0..per {
            let i = b * per + bit;
            if i >= valid || used(i) {
                bitmap_set(&mut buf, bit, true);
            }
        }
        geo.seal_block(&mut buf, magic, start + b);
        img.write_block(start + b, &buf)?;
    }
    Ok(())
}

/// Writes the whole inode bitmap: inode `ino` is in use when `used(ino)`;
/// the bits past the last inode are set.
pub fn write_inode_bitmap(
    img: &mut Image,
    geo: &Geometry,
    used: impl Fn(u64) -> bool,
) -> io::Result<()> {
    write_bitmap(
        img,
        geo,
        geo.ibitmap_start,
        geo.bbitmap_start - geo.ibitmap_start,
        magic::INODE_BITMAP,
        geo.inode_count,
        |i| used(i + 1),
    )
}

/// Writes the whole block bitmap: data block `data_start + i` is in use
/// when `used(i)`; the bits past the last data block are set.
pub fn write_block_bitmap(
    img: &mut Image,
    geo: &Geometry,
    used: impl Fn(u64) -> bool,
) -> io::Result<()> {
    write_bitmap(
        img,
        geo,
        geo.bbitmap_start,
        geo.refcount_start - geo.bbitmap_start,
        magic::BLOCK_BITMAP,
        geo.data_blocks(),
        used,
    )
}

/// Writes the whole reference-count table: data block `data_start + i` has
/// `count(i)` references; the entries past the last data block are 0.
pub fn write_refcounts(
    img: &mut Image,
    geo: &Geometry,
    count: impl Fn(u64) -> u16,
) -> io::Result<()> {
    let bs = geo.block_size();
    let per = refcounts_per_block(bs);
    let data = geo.data_blocks();
    let mut buf = vec![0u8; bs];
    for b in 0..geo.itable_start - geo.refcount_start {
        buf.fill(0);
        for j in 0..per {
            let i = b * per + j;
            if i < data {
                put_u16(&mut buf, 16 + 2 * j as usize, count(i));
            }
        }
        let blk = geo.refcount_start + b;
        geo.seal_block(&mut buf, magic::REFCOUNT, blk);
        img.write_block(blk, &buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(default_inodes(12, 100), 64);
        assert_eq!(default_inodes(12, 1000), 250);
        assert_eq!(default_inodes(12, 1 << 20), 1 << 18);
        assert_eq!(default_inodes(12, u64::MAX), u64::from(u32::MAX));
        assert_eq!(default_journal_blocks(10), 1024);
        assert_eq!(default_journal_blocks(64 * 2000), 2000);
        assert_eq!(default_journal_blocks(u64::MAX), 32768);
    }

    #[test]
    fn labels() {
        assert!(label_from_str(&"x".repeat(32)).is_some());
        assert!(label_from_str(&"x".repeat(33)).is_none());
        assert!(label_from_str("a\0b").is_none());
        assert_eq!(&label_from_str("swap").unwrap()[..5], b"swap\0");
    }

    #[test]
    fn format_writes_a_decodable_superblock_and_root() {
        let mut img = Image::zeroed(2048 * 1024);
        let mut p = MkfsParams::new(10, 2048);
        p.uuid = [3; 16];
        let sb = format(&mut img, &p).unwrap();
        let bytes = img.as_bytes().unwrap();
        let back = Superblock::decode(bytes, crc32c::update).unwrap();
        assert_eq!(back, sb);
        let geo = back.geometry(2048, crc32c::update).unwrap();
        let (blk, off) = geo.inode_location(ROOT_INO).unwrap();
        let raw = &bytes[blk as usize * 1024 + off..][..INODE_SIZE];
        let root = Inode::decode(&geo, ROOT_INO, raw).unwrap().unwrap();
        assert!(root.is_dir());
        assert_eq!((root.nlink, root.parent, root.size), (2, 1, 0));
        let j = JournalSuperblock::decode(&bytes[1024..2048]);
        assert_eq!(j, JournalSuperblock::new(1024, 1024, [3; 16]));
        assert_eq!((j.sequence, j.start, j.first, j.nr_users), (1, 0, 1, 1));
        assert!(bytes[2048..sb.ibitmap_start as usize * 1024]
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn format_refuses_a_small_device() {
        let mut img = Image::zeroed(1024 * 1024);
        let p = MkfsParams::new(10, 2048);
        assert!(matches!(
            format(&mut img, &p),
            Err(MkfsError::DeviceTooSmall { .. })
        ));
        let p = MkfsParams::new(10, 1024);
        assert!(matches!(format(&mut img, &p), Err(MkfsError::Layout(_))));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The swapfs on-disk format, version 1 (`Documentation/format.md`).
//!
//! Decoding never panics and never trusts the disk: every decoder checks
//! lengths, magic numbers, checksums and ranges and returns a
//! [`FormatError`] that says precisely what is wrong.

use core::fmt;

/// `S W F S`.
pub const MAGIC: u32 = 0x5346_5753;
/// The only format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of block 0 that hold the superblock (and that its checksum covers).
pub const SUPERBLOCK_SIZE: usize = 512;
/// Smallest supported block size, log2 (1024 bytes).
pub const MIN_BLOCK_SIZE_LOG2: u32 = 10;
/// Largest supported block size, log2 (4096 bytes).
pub const MAX_BLOCK_SIZE_LOG2: u32 = 12;
/// Smallest journal jbd2 accepts.
pub const MIN_JOURNAL_BLOCKS: u64 = 1024;
/// Size of an on-disk inode.
pub const INODE_SIZE: usize = 256;
/// The root directory's inode number.
pub const ROOT_INO: u64 = 1;
/// Size of the header that starts every metadata block.
pub const BLOCK_HEADER_SIZE: usize = 16;
/// Longest extent, in blocks.
pub const MAX_EXTENT_LEN: u32 = (1 << 31) - 1;
/// Deepest extent tree (depth of the root; leaves have depth 0).
pub const MAX_DEPTH: u16 = 5;
/// Size of an extent-tree entry (leaf or index).
pub const ENTRY_SIZE: usize = 24;
/// Offset of the extent-tree root inside an inode.
pub const INODE_ROOT_OFFSET: usize = 128;
/// Size of the extent-tree root inside an inode.
pub const INODE_ROOT_SIZE: usize = INODE_SIZE - INODE_ROOT_OFFSET;
/// Size of the root's node header.
pub const ROOT_HEADER_SIZE: usize = 8;
/// Entries of the root node.
pub const ROOT_ENTRIES: usize = (INODE_ROOT_SIZE - ROOT_HEADER_SIZE) / ENTRY_SIZE;
/// Size of the node header of an extent-tree block (after the block header).
pub const NODE_HEADER_SIZE: usize = 16;
/// Size of a directory block's header (block header + owner + reserved).
pub const DIR_HEADER_SIZE: usize = BLOCK_HEADER_SIZE + 16;
/// Fixed part of a directory record.
pub const DIR_RECORD_HEADER: usize = 12;
/// Longest file name.
pub const NAME_MAX: usize = 255;
/// Largest file size in bytes (logical blocks are 64-bit, but byte offsets
/// must fit `loff_t`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Superblock `state` bits.
pub mod state {
    /// The filesystem was unmounted cleanly; the free counts are exact.
    pub const CLEAN: u32 = 1 << 0;
    /// Errors were detected; fsck should look at it.
    pub const ERROR: u32 = 1 << 1;
    /// Every bit this version knows.
    pub const KNOWN: u32 = CLEAN | ERROR;
}

/// Feature bits this version understands (none are defined in version 1).
pub mod features {
    /// Known `feature_compat` bits.
    pub const COMPAT: u32 = 0;
    /// Known `feature_ro_compat` bits.
    pub const RO_COMPAT: u32 = 0;
    /// Known `feature_incompat` bits.
    pub const INCOMPAT: u32 = 0;
}

/// Magic numbers of metadata blocks.
pub mod magic {
    /// Inode bitmap block (`S W I B`).
    pub const INODE_BITMAP: u32 = 0x4249_5753;
    /// Block bitmap block (`S W B B`).
    pub const BLOCK_BITMAP: u32 = 0x4242_5753;
    /// Reference-count block (`S W R C`).
    pub const REFCOUNT: u32 = 0x4352_5753;
    /// Extent-tree node (`S W E X`).
    pub const EXTENT: u32 = 0x5845_5753;
    /// Directory block (`S W D R`).
    pub const DIR: u32 = 0x5244_5753;
    /// Symlink block (`S W S L`).
    pub const SYMLINK: u32 = 0x4c53_5753;
}

/// Leaf extent flags.
pub mod extent_flags {
    /// Allocated but never written: reads return zeroes.
    pub const UNWRITTEN: u32 = 1 << 0;
    /// Every flag this version knows.
    pub const KNOWN: u32 = UNWRITTEN;
}

/// A checksum function with the conventions of [`crc32c::update`]. The
/// kernel passes its accelerated `crc32c()`, the host tools the portable one.
pub type CrcFn = fn(u32, &[u8]) -> u32;

/// What is wrong with a piece of on-disk data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// A buffer is shorter than the structure it should hold.
    Truncated {
        /// The structure.
        what: &'static str,
    },
    /// A magic number does not match.
    BadMagic {
        /// The structure.
        what: &'static str,
        /// The magic found.
        found: u32,
    },
    /// The superblock's format version is not 1.
    BadVersion {
        /// The version found.
        found: u32,
    },
    /// A checksum does not match the contents.
    BadChecksum {
        /// The structure.
        what: &'static str,
        /// The checksum stored on disk.
        stored: u32,
        /// The checksum of the contents.
        computed: u32,
    },
    /// The block size is not 1024, 2048 or 4096.
    BadBlockSize {
        /// The `block_size_log2` found.
        log2: u32,
    },
    /// The image uses incompatible features this code does not know.
    UnknownIncompat {
        /// The unknown bits.
        bits: u32,
    },
    /// The regions of the superblock do not describe a valid layout.
    BadGeometry {
        /// What is inconsistent.
        what: &'static str,
    },
    /// The device is smaller than the filesystem.
    DeviceTooSmall {
        /// Blocks the filesystem needs.
        needed: u64,
        /// Blocks the device has.
        available: u64,
    },
    /// A metadata block names another block as itself (misdirected write).
    BadBlockNr {
        /// The structure.
        what: &'static str,
        /// The block number stored in its header.
        stored: u64,
        /// The block it was read from.
        expected: u64,
    },
    /// A field holds a value that is out of range.
    BadField {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::Truncated { what } => write!(f, "{what}: truncated"),
            FormatError::BadMagic { what, found } => {
                write!(f, "{what}: bad magic {found:#010x}")
            }
            FormatError::BadVersion { found } => {
                write!(
                    f,
                    "unsupported format version {found} (this is version {VERSION})"
                )
            }
            FormatError::BadChecksum {
                what,
                stored,
                computed,
            } => write!(
                f,
                "{what}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            FormatError::BadBlockSize { log2 } => {
                write!(f, "unsupported block size 2^{log2}")
            }
            FormatError::UnknownIncompat { bits } => {
                write!(f, "unknown incompatible features {bits:#x}")
            }
            FormatError::BadGeometry { what } => write!(f, "bad geometry: {what}"),
            FormatError::DeviceTooSmall { needed, available } => write!(
                f,
                "device has {available} blocks, the filesystem needs {needed}"
            ),
            FormatError::BadBlockNr {
                what,
                stored,
                expected,
            } => write!(
                f,
                "{what} in block {expected} claims to be block {stored} (misdirected write?)"
            ),
            FormatError::BadField { what, value } => write!(f, "{what}: bad value {value}"),
        }
    }
}

/// Result of decoding.
pub type Result<T> = core::result::Result<T, FormatError>;

// Little-endian accessors. Out-of-range reads give 0 and out-of-range writes
// are dropped; callers check buffer lengths first, so this never happens,
// but a mistake can never turn into a panic.

/// Reads a little-endian u16 at `off`.
pub fn get_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

/// Reads a little-endian u32 at `off`.
pub fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64 at `off`.
pub fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Writes a little-endian u16 at `off`.
pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian u32 at `off`.
pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian u64 at `off`.
pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// CRC of `buf` (seeded with `seed`) as if the u32 at `csum_off` were zero.
fn crc_skipping(crc: CrcFn, seed: u32, buf: &[u8], csum_off: usize) -> u32 {
    let (head, rest) = buf.split_at(csum_off.min(buf.len()));
    let tail = rest.get(4..).unwrap_or(&[]);
    crc(crc(crc(seed, head), &[0u8; 4]), tail)
}

/// A point in time as stored on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, below 10^9.
    pub nsec: u32,
}

/// The superblock, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// log2 of the block size (10 to 12).
    pub block_size_log2: u32,
    /// Size of the filesystem in blocks.
    pub block_count: u64,
    /// Number of inodes.
    pub inode_count: u64,
    /// Free data blocks (exact when [`state::CLEAN`]).
    pub free_blocks: u64,
    /// Free inodes (exact when [`state::CLEAN`]).
    pub free_inodes: u64,
    /// Compatible features.
    pub feature_compat: u32,
    /// Read-only compatible features.
    pub feature_ro_compat: u32,
    /// Incompatible features.
    pub feature_incompat: u32,
    /// [`state`] bits.
    pub state: u32,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume label, NUL-padded.
    pub label: [u8; 32],
    /// First journal block.
    pub journal_start: u64,
    /// Journal length in blocks.
    pub journal_blocks: u64,
    /// First inode-bitmap block.
    pub ibitmap_start: u64,
    /// Inode-bitmap length in blocks.
    pub ibitmap_blocks: u64,
    /// First block-bitmap block.
    pub bbitmap_start: u64,
    /// Block-bitmap length in blocks.
    pub bbitmap_blocks: u64,
    /// First reference-count block.
    pub refcount_start: u64,
    /// Reference-count table length in blocks.
    pub refcount_blocks: u64,
    /// First inode-table block.
    pub itable_start: u64,
    /// Inode-table length in blocks.
    pub itable_blocks: u64,
    /// First data block.
    pub data_start: u64,
    /// When mkfs ran (seconds).
    pub mkfs_time: i64,
    /// Last mount (seconds).
    pub mount_time: i64,
    /// Last superblock write (seconds).
    pub write_time: i64,
    /// Mounts since mkfs.
    pub mount_count: u32,
    /// First inode of the orphan list (unlinked while open, or being
    /// truncated); 0 if empty.
    pub orphan_head: u64,
}

/// Parameters of a new filesystem, for [`Superblock::layout`].
#[derive(Clone, Copy, Debug)]
pub struct LayoutParams {
    /// log2 of the block size.
    pub block_size_log2: u32,
    /// Size of the filesystem in blocks.
    pub block_count: u64,
    /// Number of inodes.
    pub inode_count: u64,
    /// Journal length in blocks.
    pub journal_blocks: u64,
}

/// Ceiling division.
const fn div_ceil(a: u64, b: u64) -> u64 {
    a / b + if a % b != 0 { 1 } else { 0 }
}

/// Bits a bitmap block holds.
pub const fn bitmap_bits_per_block(block_size: usize) -> u64 {
    ((block_size - BLOCK_HEADER_SIZE) * 8) as u64
}

/// Reference counts a reference-count block holds.
pub const fn refcounts_per_block(block_size: usize) -> u64 {
    ((block_size - BLOCK_HEADER_SIZE) / 2) as u64
}

/// How many of the reference counts at the start of `entries` (2-byte
/// little-endian counts) are all shared (above 1) if `shared`, or all
/// private (at most 1) if not. Private runs, the common case, are scanned
/// four counts at a time.
pub fn refcount_run(entries: &[u8], shared: bool) -> usize {
    let mut n = 0;
    if !shared {
        for w in entries.chunks_exact(8) {
            let x = <[u8; 8]>::try_from(w).map_or(u64::MAX, u64::from_le_bytes);
            // Each count at most 1: only its lowest bit may be set.
            if x & 0xfffe_fffe_fffe_fffe != 0 {
                break;
            }
            n += 4;
        }
    }
    for c in entries.get(2 * n..).unwrap_or(&[]).chunks_exact(2) {
        let count = <[u8; 2]>::try_from(c).map_or(0, u16::from_le_bytes);
        if (count > 1) != shared {
            break;
        }
        n += 1;
    }
    n
}

/// Inodes an inode-table block holds.
pub const fn inodes_per_block(block_size: usize) -> u64 {
    (block_size / INODE_SIZE) as u64
}

/// Entries an extent-tree block holds.
pub const fn node_capacity(block_size: usize) -> usize {
    (block_size - BLOCK_HEADER_SIZE - NODE_HEADER_SIZE) / ENTRY_SIZE
}

impl Superblock {
    /// Computes the region layout of a new filesystem. The data region is
    /// what remains after the metadata regions, and must not be empty.
    pub fn layout(p: LayoutParams) -> Result<Superblock> {
        if !(MIN_BLOCK_SIZE_LOG2..=MAX_BLOCK_SIZE_LOG2).contains(&p.block_size_log2) {
            return Err(FormatError::BadBlockSize {
                log2: p.block_size_log2,
            });
        }
        let bs = 1usize << p.block_size_log2;
        if p.journal_blocks < MIN_JOURNAL_BLOCKS {
            return Err(FormatError::BadGeometry {
                what: "journal smaller than 1024 blocks",
            });
        }
        if p.inode_count == 0 || p.inode_count > u64::from(u32::MAX) {
            return Err(FormatError::BadGeometry {
                what: "inode count out of range",
            });
        }
        let journal_start = 1u64;
        let ibitmap_start = journal_start
            .checked_add(p.journal_blocks)
            .ok_or(FormatError::BadGeometry { what: "overflow" })?;
        let ibitmap_blocks = div_ceil(p.inode_count, bitmap_bits_per_block(bs));
        let bbitmap_start = ibitmap_start + ibitmap_blocks;
        let itable_blocks = div_ceil(p.inode_count, inodes_per_block(bs));
        // The data region and its bitmap and reference counts depend on each
        // other: size them for the data region left after their own maximum.
        let fixed = bbitmap_start.saturating_add(itable_blocks);
        if fixed >= p.block_count {
            return Err(FormatError::BadGeometry {
                what: "device too small for the metadata",
            });
        }
        let upper_data = p.block_count - fixed;
        let bbitmap_blocks = div_ceil(upper_data, bitmap_bits_per_block(bs));
        let refcount_blocks = div_ceil(upper_data, refcounts_per_block(bs));
        let refcount_start = bbitmap_start + bbitmap_blocks;
        let itable_start = refcount_start + refcount_blocks;
        let data_start = itable_start + itable_blocks;
        if data_start >= p.block_count {
            return Err(FormatError::BadGeometry {
                what: "device too small for the metadata",
            });
        }
        Ok(Superblock {
            block_size_log2: p.block_size_log2,
            block_count: p.block_count,
            inode_count: p.inode_count,
            free_blocks: p.block_count - data_start,
            free_inodes: p.inode_count,
            feature_compat: 0,
            feature_ro_compat: 0,
            feature_incompat: 0,
            state: state::CLEAN,
            uuid: [0; 16],
            label: [0; 32],
            journal_start,
            journal_blocks: p.journal_blocks,
            ibitmap_start,
            ibitmap_blocks,
            bbitmap_start,
            bbitmap_blocks,
            refcount_start,
            refcount_blocks,
            itable_start,
            itable_blocks,
            data_start,
            mkfs_time: 0,
            mount_time: 0,
            write_time: 0,
            mount_count: 0,
            orphan_head: 0,
        })
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        1usize << self.block_size_log2
    }

    /// The checksum seed of this filesystem.
    pub fn csum_seed(&self, crc: CrcFn) -> u32 {
        crc(!0, &self.uuid)
    }

    /// Decodes and verifies the superblock at the start of `buf` (block 0).
    /// Checks magic, version, checksum, block size and incompatible features;
    /// the layout is checked by [`Superblock::geometry`].
    pub fn decode(buf: &[u8], crc: CrcFn) -> Result<Superblock> {
        let b = buf
            .get(..SUPERBLOCK_SIZE)
            .ok_or(FormatError::Truncated { what: "superblock" })?;
        let found = get_u32(b, 0);
        if found != MAGIC {
            return Err(FormatError::BadMagic {
                what: "superblock",
                found,
            });
        }
        let version = get_u32(b, 4);
        if version != VERSION {
            return Err(FormatError::BadVersion { found: version });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(b.get(64..80).unwrap_or(&[0; 16]));
        let seed = crc(!0, &uuid);
        let stored = get_u32(b, 8);
        let computed = crc_skipping(crc, seed, b, 8);
        if stored != computed {
            return Err(FormatError::BadChecksum {
                what: "superblock",
                stored,
                computed,
            });
        }
        let log2 = get_u32(b, 12);
        if !(MIN_BLOCK_SIZE_LOG2..=MAX_BLOCK_SIZE_LOG2).contains(&log2) {
            return Err(FormatError::BadBlockSize { log2 });
        }
        let incompat = get_u32(b, 56);
        if incompat & !features::INCOMPAT != 0 {
            return Err(FormatError::UnknownIncompat {
                bits: incompat & !features::INCOMPAT,
            });
        }
        let mut label = [0u8; 32];
        label.copy_from_slice(b.get(80..112).unwrap_or(&[0; 32]));
        Ok(Superblock {
            block_size_log2: log2,
            block_count: get_u64(b, 16),
            inode_count: get_u64(b, 24),
            free_blocks: get_u64(b, 32),
            free_inodes: get_u64(b, 40),
            feature_compat: get_u32(b, 48),
            feature_ro_compat: get_u32(b, 52),
            feature_incompat: incompat,
            state: get_u32(b, 60),
            uuid,
            label,
            journal_start: get_u64(b, 112),
            journal_blocks: get_u64(b, 120),
            ibitmap_start: get_u64(b, 128),
            ibitmap_blocks: get_u64(b, 136),
            bbitmap_start: get_u64(b, 144),
            bbitmap_blocks: get_u64(b, 152),
            refcount_start: get_u64(b, 160),
            refcount_blocks: get_u64(b, 168),
            itable_start: get_u64(b, 176),
            itable_blocks: get_u64(b, 184),
            data_start: get_u64(b, 192),
            mkfs_time: get_u64(b, 200) as i64,
            mount_time: get_u64(b, 208) as i64,
            write_time: get_u64(b, 216) as i64,
            mount_count: get_u32(b, 224),
            orphan_head: get_u64(b, 232),
        })
    }

    /// Encodes the superblock into the first [`SUPERBLOCK_SIZE`] bytes of
    /// `buf` (which must be at least that long), checksum included. The rest
    /// of the 512 bytes is zeroed.
    pub fn encode(&self, buf: &mut [u8], crc: CrcFn) {
        let Some(b) = buf.get_mut(..SUPERBLOCK_SIZE) else {
            return;
        };
        b.fill(0);
        put_u32(b, 0, MAGIC);
        put_u32(b, 4, VERSION);
        put_u32(b, 12, self.block_size_log2);
        put_u64(b, 16, self.block_count);
        put_u64(b, 24, self.inode_count);
        put_u64(b, 32, self.free_blocks);
        put_u64(b, 40, self.free_inodes);
        put_u32(b, 48, self.feature_compat);
        put_u32(b, 52, self.feature_ro_compat);
        put_u32(b, 56, self.feature_incompat);
        put_u32(b, 60, self.state);
        if let Some(s) = b.get_mut(64..80) {
            s.copy_from_slice(&self.uuid);
        }
        if let Some(s) = b.get_mut(80..112) {
            s.copy_from_slice(&self.label);
        }
        put_u64(b, 112, self.journal_start);
        put_u64(b, 120, self.journal_blocks);
        put_u64(b, 128, self.ibitmap_start);
        put_u64(b, 136, self.ibitmap_blocks);
        put_u64(b, 144, self.bbitmap_start);
        put_u64(b, 152, self.bbitmap_blocks);
        put_u64(b, 160, self.refcount_start);
        put_u64(b, 168, self.refcount_blocks);
        put_u64(b, 176, self.itable_start);
        put_u64(b, 184, self.itable_blocks);
        put_u64(b, 192, self.data_start);
        put_u64(b, 200, self.mkfs_time as u64);
        put_u64(b, 208, self.mount_time as u64);
        put_u64(b, 216, self.write_time as u64);
        put_u32(b, 224, self.mount_count);
        put_u64(b, 232, self.orphan_head);
        let sum = crc_skipping(crc, self.csum_seed(crc), b, 8);
        put_u32(b, 8, sum);
    }

    /// Checks the layout against itself and against a device of
    /// `device_blocks` blocks, and returns the derived [`Geometry`].
    pub fn geometry(&self, device_blocks: u64, crc: CrcFn) -> Result<Geometry> {
        let bs = self.block_size();
        let bad = |what| Err(FormatError::BadGeometry { what });
        if self.block_count > device_blocks {
            return Err(FormatError::DeviceTooSmall {
                needed: self.block_count,
                available: device_blocks,
            });
        }
        if self.inode_count == 0 || self.inode_count > u64::from(u32::MAX) {
            return bad("inode count out of range");
        }
        if self.journal_start != 1 || self.journal_blocks < MIN_JOURNAL_BLOCKS {
            return bad("journal region");
        }
        // Contiguous regions, in order, without overflow.
        let regions = [
            (self.journal_start, self.journal_blocks, self.ibitmap_start),
            (self.ibitmap_start, self.ibitmap_blocks, self.bbitmap_start),
            (self.bbitmap_start, self.bbitmap_blocks, self.refcount_start),
            (self.refcount_start, self.refcount_blocks, self.itable_start),
            (self.itable_start, self.itable_blocks, self.data_start),
        ];
        for (start, len, next) in regions {
            if start.checked_add(len) != Some(next) {
                return bad("regions are not contiguous");
            }
        }
        if self.data_start >= self.block_count {
            return bad("no data region");
        }
        if self.journal_blocks > u64::from(u32::MAX) {
            return bad("journal larger than jbd2 allows");
        }
        let data_blocks = self.block_count - self.data_start;
        if self.ibitmap_blocks < div_ceil(self.inode_count, bitmap_bits_per_block(bs))
            || self.itable_blocks < div_ceil(self.inode_count, inodes_per_block(bs))
            || self.bbitmap_blocks < div_ceil(data_blocks, bitmap_bits_per_block(bs))
            || self.refcount_blocks < div_ceil(data_blocks, refcounts_per_block(bs))
        {
            return bad("a metadata region is too small for its counts");
        }
        if self.free_blocks > data_blocks || self.free_inodes > self.inode_count {
            return bad("free counts exceed totals");
        }
        if self.orphan_head != 0 && self.orphan_head > self.inode_count {
            return bad("orphan list head is not an inode");
        }
        Ok(Geometry {
            block_size_log2: self.block_size_log2,
            block_count: self.block_count,
            inode_count: self.inode_count,
            journal_start: self.journal_start,
            journal_blocks: self.journal_blocks,
            ibitmap_start: self.ibitmap_start,
            bbitmap_start: self.bbitmap_start,
            refcount_start: self.refcount_start,
            itable_start: self.itable_start,
            data_start: self.data_start,
            csum_seed: self.csum_seed(crc),
            crc,
        })
    }

    /// The label as a string, up to its first NUL (invalid UTF-8 gives "").
    pub fn label_str(&self) -> &str {
        let len = self.label.iter().position(|&c| c == 0).unwrap_or(32);
        core::str::from_utf8(self.label.get(..len).unwrap_or(&[])).unwrap_or("")
    }
}

/// The fixed parameters of a mounted (or checked) filesystem, derived from a
/// verified superblock: where everything is, and how to checksum it.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// log2 of the block size.
    pub block_size_log2: u32,
    /// Size of the filesystem in blocks.
    pub block_count: u64,
    /// Number of inodes.
    pub inode_count: u64,
    /// First journal block.
    pub journal_start: u64,
    /// Journal length in blocks.
    pub journal_blocks: u64,
    /// First inode-bitmap block.
    pub ibitmap_start: u64,
    /// First block-bitmap block.
    pub bbitmap_start: u64,
    /// First reference-count block.
    pub refcount_start: u64,
    /// First inode-table block.
    pub itable_start: u64,
    /// First data block.
    pub data_start: u64,
    /// `crc32c(!0, uuid)`.
    pub csum_seed: u32,
    /// The CRC-32C implementation.
    pub crc: CrcFn,
}

/// Where a bit lives: a block and a bit index within its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitLocation {
    /// The bitmap block.
    pub block: u64,
    /// Bit index within the block's payload.
    pub bit: u64,
}

impl Geometry {
    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        1usize << self.block_size_log2
    }

    /// Number of data blocks.
    pub fn data_blocks(&self) -> u64 {
        self.block_count - self.data_start
    }

    /// Whether `blk` is in the data region.
    pub fn is_data_block(&self, blk: u64) -> bool {
        blk >= self.data_start && blk < self.block_count
    }

    /// Whether `[blk, blk + len)` lies entirely in the data region.
    pub fn is_data_range(&self, blk: u64, len: u64) -> bool {
        len > 0
            && self.is_data_block(blk)
            && blk
                .checked_add(len)
                .is_some_and(|end| end <= self.block_count)
    }

    /// Whether `ino` names an inode of this filesystem.
    pub fn is_valid_ino(&self, ino: u64) -> bool {
        ino >= 1 && ino <= self.inode_count
    }

    /// The inode table block and byte offset of inode `ino`.
    pub fn inode_location(&self, ino: u64) -> Option<(u64, usize)> {
        if !self.is_valid_ino(ino) {
            return None;
        }
        let per = inodes_per_block(self.block_size());
        let idx = ino - 1;
        Some((
            self.itable_start + idx / per,
            (idx % per) as usize * INODE_SIZE,
        ))
    }

    /// Where inode `ino`'s bit is in the inode bitmap.
    pub fn inode_bit(&self, ino: u64) -> Option<BitLocation> {
        if !self.is_valid_ino(ino) {
            return None;
        }
        let per = bitmap_bits_per_block(self.block_size());
        Some(BitLocation {
            block: self.ibitmap_start + (ino - 1) / per,
            bit: (ino - 1) % per,
        })
    }

    /// Where data block `blk`'s bit is in the block bitmap.
    pub fn block_bit(&self, blk: u64) -> Option<BitLocation> {
        if !self.is_data_block(blk) {
            return None;
        }
        let per = bitmap_bits_per_block(self.block_size());
        let idx = blk - self.data_start;
        Some(BitLocation {
            block: self.bbitmap_start + idx / per,
            bit: idx % per,
        })
    }

    /// The reference-count block and byte offset of data block `blk`'s count.
    pub fn refcount_location(&self, blk: u64) -> Option<(u64, usize)> {
        if !self.is_data_block(blk) {
            return None;
        }
        let per = refcounts_per_block(self.block_size());
        let idx = blk - self.data_start;
        Some((
            self.refcount_start + idx / per,
            BLOCK_HEADER_SIZE + (idx % per) as usize * 2,
        ))
    }

    /// Entries of an extent-tree block.
    pub fn node_capacity(&self) -> usize {
        node_capacity(self.block_size())
    }

    /// Longest symlink target.
    pub fn symlink_max(&self) -> usize {
        self.block_size() - BLOCK_HEADER_SIZE
    }

    /// Fills in the header of a metadata block (magic, self block number)
    /// and its checksum. Call after every change to the block.
    pub fn seal_block(&self, buf: &mut [u8], magic: u32, blocknr: u64) {
        put_u32(buf, 0, magic);
        put_u64(buf, 8, blocknr);
        let sum = crc_skipping(self.crc, self.csum_seed, buf, 4);
        put_u32(buf, 4, sum);
    }

    /// Verifies a metadata block read from `blocknr`: length, magic,
    /// checksum and self block number.
    pub fn check_block(
        &self,
        buf: &[u8],
        what: &'static str,
        magic: u32,
        blocknr: u64,
    ) -> Result<()> {
        self.check_block_crc(buf, what, magic, blocknr, true)
    }

    /// [`check_block`](Self::check_block), with the checksum only if `crc`:
    /// the kernel skips it for a block whose checksum already passed since
    /// it was read from disk (a flag on the cached buffer). Magic and block
    /// number are always checked, so a cached block of another kind or
    /// place is never taken for this one.
    pub fn check_block_crc(
        &self,
        buf: &[u8],
        what: &'static str,
        magic: u32,
        blocknr: u64,
        crc: bool,
    ) -> Result<()> {
        if buf.len() != self.block_size() {
            return Err(FormatError::Truncated { what });
        }
        let found = get_u32(buf, 0);
        if found != magic {
            return Err(FormatError::BadMagic { what, found });
        }
        if crc {
            let stored = get_u32(buf, 4);
            let computed = crc_skipping(self.crc, self.csum_seed, buf, 4);
            if stored != computed {
                return Err(FormatError::BadChecksum {
                    what,
                    stored,
                    computed,
                });
            }
        }
        let stored = get_u64(buf, 8);
        if stored != blocknr {
            return Err(FormatError::BadBlockNr {
                what,
                stored,
                expected: blocknr,
            });
        }
        Ok(())
    }

    /// The checksum of inode `ino`'s 256 bytes (with the checksum field
    /// taken as zero).
    pub fn inode_checksum(&self, ino: u64, raw: &[u8]) -> u32 {
        let seed = (self.crc)(self.csum_seed, &ino.to_le_bytes());
        crc_skipping(self.crc, seed, raw, INODE_CSUM_OFFSET)
    }
}

/// Offset of the checksum inside an inode.
const INODE_CSUM_OFFSET: usize = 96;

/// An inode, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Type and permissions (`st_mode`).
    pub mode: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Data blocks held.
    pub blocks: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification.
    pub mtime: Timestamp,
    /// Last status change.
    pub ctime: Timestamp,
    /// Creation.
    pub btime: Timestamp,
    /// Inode flags (none in version 1).
    pub flags: u32,
    /// Generation number (for file handles).
    pub generation: u32,
    /// A directory's parent; 0 for other inodes.
    pub parent: u64,
    /// Device number of device nodes.
    pub rdev: u32,
    /// Next inode of the orphan list; 0 at its end or if not an orphan.
    pub orphan_next: u64,
    /// The extent-tree root, raw (see [`RootHeader`]).
    pub root: [u8; INODE_ROOT_SIZE],
}

/// File type bits of `mode`.
pub mod mode {
    /// Mask of the type bits.
    pub const S_IFMT: u16 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u16 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u16 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u16 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u16 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u16 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u16 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u16 = 0o010000;

    /// Whether `mode` has one of the types above.
    pub fn is_valid_type(mode: u16) -> bool {
        matches!(
            mode & S_IFMT,
            S_IFSOCK | S_IFLNK | S_IFREG | S_IFBLK | S_IFDIR | S_IFCHR | S_IFIFO
        )
    }

    /// The `DT_*` directory-entry type of a mode.
    pub fn dtype(mode: u16) -> u8 {
        ((mode & S_IFMT) >> 12) as u8
    }
}

impl Inode {
    /// A fresh inode with an empty extent tree.
    pub fn new(mode: u16, now: Timestamp) -> Inode {
        let mut root = [0u8; INODE_ROOT_SIZE];
        RootHeader::empty().encode(&mut root);
        Inode {
            mode,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            btime: now,
            flags: 0,
            generation: 0,
            parent: 0,
            rdev: 0,
            orphan_next: 0,
            root,
        }
    }

    /// Whether the inode is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFDIR
    }

    /// Whether the inode is a regular file.
    pub fn is_reg(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFREG
    }

    /// Whether the inode is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFLNK
    }

    /// Decodes inode `ino` from its 256 bytes. `Ok(None)` is a free slot
    /// (mode 0); anything else must carry a valid checksum and sane fields.
    pub fn decode(geo: &Geometry, ino: u64, raw: &[u8]) -> Result<Option<Inode>> {
        let raw = raw
            .get(..INODE_SIZE)
            .ok_or(FormatError::Truncated { what: "inode" })?;
        let mode = get_u16(raw, 0);
        if mode == 0 {
            return Ok(None);
        }
        let stored = get_u32(raw, INODE_CSUM_OFFSET);
        let computed = geo.inode_checksum(ino, raw);
        if stored != computed {
            return Err(FormatError::BadChecksum {
                what: "inode",
                stored,
                computed,
            });
        }
        if !mode::is_valid_type(mode) {
            return Err(FormatError::BadField {
                what: "inode mode",
                value: u64::from(mode),
            });
        }
        let ts = |sec: usize, nsec: usize| -> Result<Timestamp> {
            let nsec = get_u32(raw, nsec);
            if nsec >= 1_000_000_000 {
                return Err(FormatError::BadField {
                    what: "inode timestamp nanoseconds",
                    value: u64::from(nsec),
                });
            }
            Ok(Timestamp {
                sec: get_u64(raw, sec) as i64,
                nsec,
            })
        };
        let size = get_u64(raw, 16);
        if size > MAX_FILE_SIZE {
            return Err(FormatError::BadField {
                what: "inode size",
                value: size,
            });
        }
        let mut root = [0u8; INODE_ROOT_SIZE];
        root.copy_from_slice(
            raw.get(INODE_ROOT_OFFSET..)
                .unwrap_or(&[0; INODE_ROOT_SIZE]),
        );
        RootHeader::decode(&root)?;
        let orphan_next = get_u64(raw, 104);
        if orphan_next > geo.inode_count {
            return Err(FormatError::BadField {
                what: "inode orphan link",
                value: orphan_next,
            });
        }
        let parent = get_u64(raw, 88);
        let is_dir = mode & mode::S_IFMT == mode::S_IFDIR;
        if is_dir && !geo.is_valid_ino(parent) || !is_dir && parent != 0 {
            return Err(FormatError::BadField {
                what: "inode parent",
                value: parent,
            });
        }
        Ok(Some(Inode {
            mode,
            nlink: get_u32(raw, 4),
            uid: get_u32(raw, 8),
            gid: get_u32(raw, 12),
            size,
            blocks: get_u64(raw, 24),
            atime: ts(32, 64)?,
            mtime: ts(40, 68)?,
            ctime: ts(48, 72)?,
            btime: ts(56, 76)?,
            flags: get_u32(raw, 80),
            generation: get_u32(raw, 84),
            parent,
            rdev: get_u32(raw, 100),
            orphan_next,
            root,
        }))
    }

    /// Encodes inode `ino` into its 256 bytes, checksum included.
    pub fn encode(&self, geo: &Geometry, ino: u64, raw: &mut [u8]) {
        let Some(raw) = raw.get_mut(..INODE_SIZE) else {
            return;
        };
        raw.fill(0);
        put_u16(raw, 0, self.mode);
        put_u32(raw, 4, self.nlink);
        put_u32(raw, 8, self.uid);
        put_u32(raw, 12, self.gid);
        put_u64(raw, 16, self.size);
        put_u64(raw, 24, self.blocks);
        put_u64(raw, 32, self.atime.sec as u64);
        put_u64(raw, 40, self.mtime.sec as u64);
        put_u64(raw, 48, self.ctime.sec as u64);
        put_u64(raw, 56, self.btime.sec as u64);
        put_u32(raw, 64, self.atime.nsec);
        put_u32(raw, 68, self.mtime.nsec);
        put_u32(raw, 72, self.ctime.nsec);
        put_u32(raw, 76, self.btime.nsec);
        put_u32(raw, 80, self.flags);
        put_u32(raw, 84, self.generation);
        put_u64(raw, 88, self.parent);
        put_u32(raw, 100, self.rdev);
        put_u64(raw, 104, self.orphan_next);
        if let Some(s) = raw.get_mut(INODE_ROOT_OFFSET..) {
            s.copy_from_slice(&self.root);
        }
        let sum = geo.inode_checksum(ino, raw);
        put_u32(raw, INODE_CSUM_OFFSET, sum);
    }
}

/// The header of an extent-tree node (the root's 8 bytes, or the 16 bytes
/// after a node block's block header, of which the last 8 are the owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootHeader {
    /// Entries in use.
    pub entries: u16,
    /// Capacity.
    pub max: u16,
    /// 0 for a leaf.
    pub depth: u16,
}

impl RootHeader {
    /// An empty leaf root.
    pub fn empty() -> RootHeader {
        RootHeader {
            entries: 0,
            max: ROOT_ENTRIES as u16,
            depth: 0,
        }
    }

    /// Decodes and checks the root header in an inode's root area.
    pub fn decode(root: &[u8]) -> Result<RootHeader> {
        let h = RootHeader {
            entries: get_u16(root, 0),
            max: get_u16(root, 2),
            depth: get_u16(root, 4),
        };
        if usize::from(h.max) != ROOT_ENTRIES {
            return Err(FormatError::BadField {
                what: "extent root capacity",
                value: u64::from(h.max),
            });
        }
        h.check("extent root")?;
        Ok(h)
    }

    fn check(&self, what: &'static str) -> Result<()> {
        if self.entries > self.max {
            return Err(FormatError::BadField {
                what,
                value: u64::from(self.entries),
            });
        }
        if self.depth > MAX_DEPTH {
            return Err(FormatError::BadField {
                what: "extent tree depth",
                value: u64::from(self.depth),
            });
        }
        Ok(())
    }

    /// Encodes the header at the start of `buf`.
    pub fn encode(&self, buf: &mut [u8]) {
        put_u16(buf, 0, self.entries);
        put_u16(buf, 2, self.max);
        put_u16(buf, 4, self.depth);
        put_u16(buf, 6, 0);
    }
}

/// Offset of the node header in an extent-tree block.
pub const NODE_HEADER_OFFSET: usize = BLOCK_HEADER_SIZE;
/// Offset of the first entry in an extent-tree block.
pub const NODE_ENTRIES_OFFSET: usize = BLOCK_HEADER_SIZE + NODE_HEADER_SIZE;

/// Decodes and checks the node header of an extent-tree block (the block
/// header must already be verified): capacity, depth, owner.
pub fn decode_node_header(geo: &Geometry, buf: &[u8], owner: u64) -> Result<RootHeader> {
    let h = RootHeader {
        entries: get_u16(buf, NODE_HEADER_OFFSET),
        max: get_u16(buf, NODE_HEADER_OFFSET + 2),
        depth: get_u16(buf, NODE_HEADER_OFFSET + 4),
    };
    if usize::from(h.max) != geo.node_capacity() {
        return Err(FormatError::BadField {
            what: "extent node capacity",
            value: u64::from(h.max),
        });
    }
    h.check("extent node entries")?;
    let found = get_u64(buf, NODE_HEADER_OFFSET + 8);
    if found != owner {
        return Err(FormatError::BadField {
            what: "extent node owner",
            value: found,
        });
    }
    Ok(h)
}

/// Writes the node header of an extent-tree block.
pub fn encode_node_header(buf: &mut [u8], h: &RootHeader, owner: u64) {
    if let Some(b) = buf.get_mut(NODE_HEADER_OFFSET..) {
        h.encode(b);
        put_u64(b, 8, owner);
    }
}

/// An extent: logical blocks `lblk..lblk + len` map to physical blocks
/// `pblk..pblk + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First logical block.
    pub lblk: u64,
    /// First physical block.
    pub pblk: u64,
    /// Length in blocks.
    pub len: u32,
    /// [`extent_flags`].
    pub flags: u32,
}

impl Extent {
    /// Whether the extent is unwritten (preallocated).
    pub fn is_unwritten(&self) -> bool {
        self.flags & extent_flags::UNWRITTEN != 0
    }

    /// One past the last logical block.
    pub fn lend(&self) -> u64 {
        self.lblk.saturating_add(u64::from(self.len))
    }

    /// Decodes a leaf entry from 24 bytes and checks it against the
    /// geometry (length, flags, physical range in the data region, logical
    /// range within the largest file).
    pub fn decode(geo: &Geometry, e: &[u8]) -> Result<Extent> {
        let x = Extent {
            lblk: get_u64(e, 0),
            pblk: get_u64(e, 8),
            len: get_u32(e, 16),
            flags: get_u32(e, 20),
        };
        if x.len == 0 || x.len > MAX_EXTENT_LEN {
            return Err(FormatError::BadField {
                what: "extent length",
                value: u64::from(x.len),
            });
        }
        if x.flags & !extent_flags::KNOWN != 0 {
            return Err(FormatError::BadField {
                what: "extent flags",
                value: u64::from(x.flags),
            });
        }
        if !geo.is_data_range(x.pblk, u64::from(x.len)) {
            return Err(FormatError::BadField {
                what: "extent physical block",
                value: x.pblk,
            });
        }
        if x.lblk.saturating_add(u64::from(x.len)) > max_lblk(geo) {
            return Err(FormatError::BadField {
                what: "extent logical block",
                value: x.lblk,
            });
        }
        Ok(x)
    }

    /// Encodes the extent into 24 bytes.
    pub fn encode(&self, e: &mut [u8]) {
        put_u64(e, 0, self.lblk);
        put_u64(e, 8, self.pblk);
        put_u32(e, 16, self.len);
        put_u32(e, 20, self.flags);
    }
}

/// One past the largest logical block a file can have.
pub fn max_lblk(geo: &Geometry) -> u64 {
    MAX_FILE_SIZE >> geo.block_size_log2
}

/// An index entry: the child node at `child` holds keys from `lblk` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Lower bound of the subtree's keys.
    pub lblk: u64,
    /// The child node's block.
    pub child: u64,
}

impl IndexEntry {
    /// Decodes an index entry and checks that the child is a data block.
    pub fn decode(geo: &Geometry, e: &[u8]) -> Result<IndexEntry> {
        let x = IndexEntry {
            lblk: get_u64(e, 0),
            child: get_u64(e, 8),
        };
        if !geo.is_data_block(x.child) {
            return Err(FormatError::BadField {
                what: "extent index child",
                value: x.child,
            });
        }
        Ok(x)
    }

    /// Encodes the entry into 24 bytes.
    pub fn encode(&self, e: &mut [u8]) {
        put_u64(e, 0, self.lblk);
        put_u64(e, 8, self.child);
        put_u64(e, 16, 0);
    }
}

/// The 24 bytes of entry `i` of a node whose entries start at `base`.
pub fn entry(buf: &[u8], base: usize, i: usize) -> &[u8] {
    let off = base + i * ENTRY_SIZE;
    buf.get(off..off + ENTRY_SIZE).unwrap_or(&[])
}

/// The 24 bytes of entry `i`, mutable.
pub fn entry_mut(buf: &mut [u8], base: usize, i: usize) -> &mut [u8] {
    let off = base + i * ENTRY_SIZE;
    buf.get_mut(off..off + ENTRY_SIZE).unwrap_or(&mut [])
}

/// Reads bit `bit` of a bitmap block's payload.
pub fn bitmap_get(buf: &[u8], bit: u64) -> bool {
    let byte = BLOCK_HEADER_SIZE + (bit / 8) as usize;
    buf.get(byte).is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Sets or clears bit `bit` of a bitmap block's payload.
pub fn bitmap_set(buf: &mut [u8], bit: u64, value: bool) {
    let byte = BLOCK_HEADER_SIZE + (bit / 8) as usize;
    if let Some(b) = buf.get_mut(byte) {
        if value {
            *b |= 1 << (bit % 8);
        } else {
            *b &= !(1 << (bit % 8));
        }
    }
}

/// The first clear bit in `[from, to)` of a bitmap block's payload.
pub fn bitmap_find_clear(buf: &[u8], from: u64, to: u64) -> Option<u64> {
    let mut bit = from;
    while bit < to {
        let byte = buf.get(BLOCK_HEADER_SIZE + (bit / 8) as usize)?;
        if bit % 8 == 0 && *byte == 0xff {
            bit += 8;
            continue;
        }
        if byte & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

/// Whether bit `bit` of a block bitmap may be allocated: clear in the
/// bitmap and, when the journal keeps the block's last committed contents
/// (`committed`: jbd2's undo copy, see `Documentation/design.md`), clear
/// there too. A block freed by a transaction that has not committed yet is
/// still set in the committed copy: reusing it before the free is on disk
/// would let a crash give it back to its old owner with the new owner's
/// data in it.
pub fn bitmap_allocatable(cur: &[u8], committed: Option<&[u8]>, bit: u64) -> bool {
    !bitmap_get(cur, bit) && committed.is_none_or(|c| !bitmap_get(c, bit))
}

/// The first run of allocatable bits (see [`bitmap_allocatable`]) in
/// `[from, to)` of a block bitmap's payload: its first bit and its length,
/// at most `max` (at least 1). `None` if there is none.
pub fn bitmap_find_allocatable(
    cur: &[u8],
    committed: Option<&[u8]>,
    from: u64,
    to: u64,
    max: u64,
) -> Option<(u64, u64)> {
    let mut bit = from;
    loop {
        bit = bitmap_find_clear(cur, bit, to)?;
        if bitmap_allocatable(cur, committed, bit) {
            break;
        }
        bit += 1;
    }
    let mut len = 1;
    while len < max && bit + len < to && bitmap_allocatable(cur, committed, bit + len) {
        len += 1;
    }
    Some((bit, len))
}

/// Aligns a free run `[start, start + len)` for file data that starts at
/// a logical block congruent to `residue` modulo `period` (the blocks of a
/// page, when blocks are smaller than pages): the part of the run from its
/// first block congruent to `residue`, so that every page of the file lands
/// on one device page, as swap needs. `None` if the run has no such block.
/// A `period` of 0 or 1 asks for no alignment.
pub fn align_run(start: u64, len: u64, period: u64, residue: u64) -> Option<(u64, u64)> {
    if period <= 1 {
        return Some((start, len));
    }
    let skip = (residue % period + period - start % period) % period;
    (skip < len).then(|| (start + skip, len - skip))
}

/// The size of a directory record holding a name of `name_len` bytes.
pub const fn dir_rec_len(name_len: usize) -> usize {
    (DIR_RECORD_HEADER + name_len + 3) & !3
}

/// A directory record, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirRecord<'a> {
    /// Offset of the record in its block.
    pub offset: usize,
    /// Inode number; 0 for unused space.
    pub ino: u64,
    /// Record length (including any slack after the name).
    pub rec_len: usize,
    /// `DT_*` type of the entry.
    pub file_type: u8,
    /// The name (empty for unused space).
    pub name: &'a [u8],
}

/// Iterates over the records of a verified directory block, checking each.
pub struct DirRecords<'a> {
    buf: &'a [u8],
    offset: usize,
    geo_inodes: u64,
    failed: bool,
}

/// Iterates over the records of a directory block whose block header has
/// been verified. Yields an error (once, then stops) at the first malformed
/// record.
pub fn dir_records<'a>(geo: &Geometry, buf: &'a [u8]) -> DirRecords<'a> {
    DirRecords {
        buf,
        offset: DIR_HEADER_SIZE,
        geo_inodes: geo.inode_count,
        failed: false,
    }
}

/// Whether `name` may be stored in a directory.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != b"."
        && name != b".."
        && !name.iter().any(|&c| c == b'/' || c == 0)
}

impl<'a> Iterator for DirRecords<'a> {
    type Item = Result<DirRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.buf.len() {
            return None;
        }
        let off = self.offset;
        let bad = |what, value| {
            Some(Err(FormatError::BadField {
                what,
                value: value as u64,
            }))
        };
        self.failed = true;
        if off + DIR_RECORD_HEADER > self.buf.len() {
            return bad("directory record offset", off);
        }
        let ino = get_u64(self.buf, off);
        let rec_len = usize::from(get_u16(self.buf, off + 8));
        let name_len = usize::from(self.buf.get(off + 10).copied().unwrap_or(0));
        let file_type = self.buf.get(off + 11).copied().unwrap_or(0);
        if rec_len < DIR_RECORD_HEADER || rec_len % 4 != 0 || off + rec_len > self.buf.len() {
            return bad("directory record length", rec_len);
        }
        let name = if ino == 0 {
            &[][..]
        } else {
            if ino > self.geo_inodes {
                return bad("directory entry inode", ino as usize);
            }
            if dir_rec_len(name_len) > rec_len {
                return bad("directory entry name length", name_len);
            }
            let name = self
                .buf
                .get(off + DIR_RECORD_HEADER..off + DIR_RECORD_HEADER + name_len)
                .unwrap_or(&[]);
            if !is_valid_name(name) {
                return bad("directory entry name", off);
            }
            if !matches!(file_type, 1 | 2 | 4 | 6 | 8 | 10 | 12) {
                return bad("directory entry type", usize::from(file_type));
            }
            name
        };
        self.failed = false;
        self.offset = off + rec_len;
        Some(Ok(DirRecord {
            offset: off,
            ino,
            rec_len,
            file_type,
            name,
        }))
    }
}

/// Initialises an empty directory block owned by directory `owner`: one
/// unused record spanning the block. Seal it before writing.
pub fn dir_block_init(buf: &mut [u8], owner: u64) {
    buf.fill(0);
    put_u64(buf, BLOCK_HEADER_SIZE, owner);
    let len = buf.len() - DIR_HEADER_SIZE;
    put_u64(buf, DIR_HEADER_SIZE, 0);
    put_u16(buf, DIR_HEADER_SIZE + 8, len as u16);
}

/// The directory that owns a directory block.
pub fn dir_block_owner(buf: &[u8]) -> u64 {
    get_u64(buf, BLOCK_HEADER_SIZE)
}

/// Writes a record at `off` (no checks: callers place it where
/// [`dir_find_slot`] said).
fn dir_put_record(buf: &mut [u8], off: usize, ino: u64, rec_len: usize, ftype: u8, name: &[u8]) {
    put_u64(buf, off, ino);
    put_u16(buf, off + 8, rec_len as u16);
    if let Some(b) = buf.get_mut(off + 10) {
        *b = name.len() as u8;
    }
    if let Some(b) = buf.get_mut(off + 11) {
        *b = ftype;
    }
    if let Some(s) = buf.get_mut(off + DIR_RECORD_HEADER..off + DIR_RECORD_HEADER + name.len()) {
        s.copy_from_slice(name);
    }
}

/// Adds an entry to a verified directory block if it has room. Returns
/// `Ok(false)` if the block is full. The name must be valid
/// ([`is_valid_name`]) and not present already.
pub fn dir_add(geo: &Geometry, buf: &mut [u8], name: &[u8], ino: u64, ftype: u8) -> Result<bool> {
    let need = dir_rec_len(name.len());
    let mut slot = None;
    for rec in dir_records(geo, buf) {
        let rec = rec?;
        let used = if rec.ino == 0 {
            0
        } else {
            dir_rec_len(rec.name.len())
        };
        if rec.rec_len - used >= need {
            slot = Some((rec.offset, rec.ino, used, rec.rec_len));
            break;
        }
    }
    let Some((off, rec_ino, used, rec_len)) = slot else {
        return Ok(false);
    };
    if rec_ino == 0 {
        dir_put_record(buf, off, ino, rec_len, ftype, name);
    } else {
        // Split: the live record keeps its minimal length, the new one
        // takes the rest.
        put_u16(buf, off + 8, used as u16);
        dir_put_record(buf, off + used, ino, rec_len - used, ftype, name);
    }
    Ok(true)
}

/// Removes the entry at `offset` (as yielded by [`dir_records`]) from a
/// verified directory block: it is merged into the previous record, or
/// marked unused if it is the first.
pub fn dir_remove(geo: &Geometry, buf: &mut [u8], offset: usize) -> Result<()> {
    let mut prev: Option<usize> = None;
    let mut target = None;
    for rec in dir_records(geo, buf) {
        let rec = rec?;
        if rec.offset == offset {
            target = Some(rec.rec_len);
            break;
        }
        prev = Some(rec.offset);
    }
    let Some(rec_len) = target else {
        return Err(FormatError::BadField {
            what: "directory record to remove",
            value: offset as u64,
        });
    };
    match prev {
        Some(p) => {
            let plen = usize::from(get_u16(buf, p + 8));
            put_u16(buf, p + 8, (plen + rec_len) as u16);
        }
        None => {
            put_u64(buf, offset, 0);
            if let Some(b) = buf.get_mut(offset + 10) {
                *b = 0;
            }
        }
    }
    Ok(())
}

/// Changes the inode (and type) of the entry at `offset`, for rename over an
/// existing name.
pub fn dir_set_ino(buf: &mut [u8], offset: usize, ino: u64, ftype: u8) {
    put_u64(buf, offset, ino);
    if let Some(b) = buf.get_mut(offset + 11) {
        *b = ftype;
    }
}

/// Whether a verified directory block holds no entries.
pub fn dir_block_is_empty(geo: &Geometry, buf: &[u8]) -> Result<bool> {
    for rec in dir_records(geo, buf) {
        if rec?.ino != 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Examples of [`refcount_run`], written once for the host tests
/// (`tools/common/tests/refcount.rs`) and the module's KUnit suite below:
/// calls `check(entries, shared, want)` for each. The module compiles them
/// only with KUnit (Kbuild sets `MODULE` for module builds, the host never
/// does).
#[cfg(any(CONFIG_KUNIT, not(MODULE)))]
pub fn refcount_run_cases(mut check: impl FnMut(&[u8], bool, usize)) {
    // A shared count (2) at every position after private ones (1): the
    // scan four counts at a time stops exactly there.
    for at in 0..20 {
        let mut b = [0u8; 40];
        for (i, c) in b.chunks_exact_mut(2).enumerate() {
            c.copy_from_slice(&(if i == at { 2u16 } else { 1 }).to_le_bytes());
        }
        check(&b, false, at);
        check(b.get(2 * at..).unwrap_or(&[]), true, 1);
    }
    // Counts whose high byte alone makes them shared: 0, 1, 0, 0x100, 1
    // and 0x100, 0xffff, 2, 1.
    check(&[0, 0, 1, 0, 0, 0, 0, 1, 1, 0], false, 3);
    check(&[0, 1, 0xff, 0xff, 2, 0, 1, 0], true, 3);
    check(&[], false, 0);
    // A trailing odd byte is not a count.
    check(&[1, 0, 0], false, 1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn align_run_keeps_pages_on_device_pages() {
        use super::align_run;
        assert_eq!(align_run(10, 5, 1, 3), Some((10, 5)));
        assert_eq!(align_run(10, 5, 0, 3), Some((10, 5)));
        assert_eq!(align_run(10, 5, 4, 0), Some((12, 3)));
        assert_eq!(align_run(12, 5, 4, 0), Some((12, 5)));
        assert_eq!(align_run(10, 5, 4, 3), Some((11, 4)));
        assert_eq!(align_run(10, 2, 4, 0), None);
        assert_eq!(align_run(13, 3, 4, 0), None);
        assert_eq!(align_run(13, 3, 2, 5), Some((13, 3)));
        for start in 0..20u64 {
            for len in 1..10u64 {
                for residue in 0..8u64 {
                    if let Some((s, l)) = align_run(start, len, 4, residue) {
                        assert_eq!(s % 4, residue % 4);
                        assert!(s >= start && s + l == start + len && l >= 1);
                        assert!(s - start < 4);
                    } else {
                        assert!(len <= 3);
                    }
                }
            }
        }
    }

    use super::super::crc32c;
    use super::*;

    fn geo(log2: u32) -> Result<(Superblock, Geometry)> {
        let mut sb = Superblock::layout(LayoutParams {
            block_size_log2: log2,
            block_count: 65536,
            inode_count: 4096,
            journal_blocks: 1024,
        })?;
        sb.uuid = [7; 16];
        let g = sb.geometry(65536, crc32c::update)?;
        Ok((sb, g))
    }

    #[test]
    fn superblock_roundtrip() -> Result<()> {
        for log2 in 10..=12 {
            let (mut sb, _) = geo(log2)?;
            sb.label[..4].copy_from_slice(b"test");
            let mut buf = [0u8; 1024];
            sb.encode(&mut buf, crc32c::update);
            let back = Superblock::decode(&buf, crc32c::update)?;
            assert_eq!(back, sb);
            assert_eq!(back.label_str(), "test");
        }
        Ok(())
    }

    #[test]
    fn superblock_detects_every_bit_flip() -> Result<()> {
        let (sb, _) = geo(12)?;
        let mut buf = [0u8; SUPERBLOCK_SIZE];
        sb.encode(&mut buf, crc32c::update);
        for i in 0..SUPERBLOCK_SIZE * 8 {
            let mut b = buf;
            b[i / 8] ^= 1 << (i % 8);
            assert!(Superblock::decode(&b, crc32c::update).is_err(), "bit {i}");
        }
        Ok(())
    }

    #[test]
    fn layout_regions_are_contiguous_and_sized() -> Result<()> {
        for log2 in 10..=12 {
            let (sb, g) = geo(log2)?;
            assert_eq!(sb.journal_start, 1);
            assert_eq!(sb.ibitmap_start, 1 + 1024);
            assert!(g.data_blocks() > 0);
            assert_eq!(sb.free_blocks, g.data_blocks());
        }
        Ok(())
    }

    #[test]
    fn geometry_rejects_overlaps() -> Result<()> {
        let (mut sb, _) = geo(12)?;
        sb.itable_start -= 1;
        assert!(sb.geometry(65536, crc32c::update).is_err());
        let (sb, _) = geo(12)?;
        assert_eq!(
            sb.geometry(100, crc32c::update).err(),
            Some(FormatError::DeviceTooSmall {
                needed: 65536,
                available: 100
            })
        );
        Ok(())
    }

    #[test]
    fn inode_roundtrip_and_checksum() -> Result<()> {
        let (_, g) = geo(12)?;
        let mut ino = Inode::new(mode::S_IFDIR | 0o755, Timestamp { sec: 5, nsec: 6 });
        ino.parent = 1;
        ino.size = 4096;
        let mut raw = [0u8; INODE_SIZE];
        ino.encode(&g, 3, &mut raw);
        assert_eq!(Inode::decode(&g, 3, &raw)?, Some(ino));
        // The same bytes as another inode number do not verify.
        assert!(Inode::decode(&g, 4, &raw).is_err());
        assert_eq!(Inode::decode(&g, 3, &[0u8; INODE_SIZE])?, None);
        Ok(())
    }

    #[test]
    fn block_seal_and_check() -> Result<()> {
        let (_, g) = geo(10)?;
        let mut b = [0u8; 1024];
        g.seal_block(&mut b, magic::DIR, 2000);
        g.check_block(&b, "dir", magic::DIR, 2000)?;
        assert!(matches!(
            g.check_block(&b, "dir", magic::DIR, 2001),
            Err(FormatError::BadBlockNr { .. })
        ));
        b[100] ^= 1;
        assert!(matches!(
            g.check_block(&b, "dir", magic::DIR, 2000),
            Err(FormatError::BadChecksum { .. })
        ));
        // Without the checksum (a cached block verified before): the flip
        // passes, but magic and block number are still checked.
        assert!(g
            .check_block_crc(&b, "dir", magic::DIR, 2000, false)
            .is_ok());
        assert!(matches!(
            g.check_block_crc(&b, "dir", magic::DIR, 2001, false),
            Err(FormatError::BadBlockNr { .. })
        ));
        assert!(matches!(
            g.check_block_crc(&b, "refcounts", magic::REFCOUNT, 2000, false),
            Err(FormatError::BadMagic { .. })
        ));
        Ok(())
    }

    #[test]
    fn directory_add_find_remove() -> Result<()> {
        let (_, g) = geo(10)?;
        let mut b = [0u8; 1024];
        dir_block_init(&mut b, 1);
        let mut n = 0u64;
        loop {
            let name = std::format!("file-{n}");
            if !dir_add(&g, &mut b, name.as_bytes(), n + 2, 8)? {
                break;
            }
            n += 1;
        }
        assert!(n > 40, "only {n} entries fit");
        let names: std::vec::Vec<_> = dir_records(&g, &b)
            .collect::<Result<std::vec::Vec<_>>>()?
            .into_iter()
            .filter(|r| r.ino != 0)
            .map(|r| (r.offset, r.ino))
            .collect();
        assert_eq!(names.len() as u64, n);
        for (off, _) in &names {
            dir_remove(&g, &mut b, *off)?;
        }
        assert!(dir_block_is_empty(&g, &b)?);
        // After removing everything, a maximal name fits again.
        assert!(dir_add(&g, &mut b, &[b'x'; NAME_MAX], 9, 8)?);
        Ok(())
    }

    #[test]
    fn bitmap_ops() {
        let mut b = [0u8; 1024];
        assert_eq!(bitmap_find_clear(&b, 0, 100), Some(0));
        for i in 0..77 {
            bitmap_set(&mut b, i, true);
        }
        assert_eq!(bitmap_find_clear(&b, 0, 100), Some(77));
        assert_eq!(bitmap_find_clear(&b, 0, 77), None);
        bitmap_set(&mut b, 3, false);
        assert!(!bitmap_get(&b, 3));
        assert_eq!(bitmap_find_clear(&b, 0, 100), Some(3));
    }
}

/// KUnit: the sharing scan swap activation runs over every block of a
/// swapfile, compiled for the kernel.
#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_format)]
mod kunit {
    use super::{refcount_run, refcount_run_cases};

    #[test]
    fn refcount_run_scans_words_and_counts() {
        refcount_run_cases(|entries, shared, want| {
            assert_eq!(refcount_run(entries, shared), want);
        });
    }
}

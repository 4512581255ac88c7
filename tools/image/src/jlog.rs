// SPDX-License-Identifier: GPL-2.0

//! The jbd2 log, recovered as the kernel recovers it at mount
//! (`fs/jbd2/recovery.c`: `jbd2_journal_recover()` and its three passes,
//! `PASS_SCAN`, `PASS_REVOKE` and `PASS_REPLAY`).
//!
//! The swapfs journal lives inside the filesystem device: journal block `j`
//! is filesystem block `start + j`, and the block numbers in descriptor
//! tags and revoke records are filesystem block numbers.
//!
//! - [`Journal::load`] takes the journal superblock through the checks jbd2
//!   makes when it loads a journal (`journal_check_superblock()`,
//!   `journal_load_superblock()`, and the size check of `journal_reset()`,
//!   which fails the mount after recovery);
//! - [`Journal::recover`] runs the three passes over a [`ReadBlocks`]
//!   without writing anything, and returns a [`Recovery`]: the last
//!   replayed contents of every block (an overlay: [`Replayed`] reads
//!   through it), the transactions replayed, and why the kernel would fail
//!   the recovery, if it would;
//! - [`write`](mod@write) builds logs, for the tests.
//!
//! Every on-disk detail the kernel uses is followed: the three tag formats
//! (`journal_tag_bytes()`: 8 or 12 bytes without checksums, 10 or 14 with
//! checksum v2, the 16-byte `journal_block_tag3_t` with v3), the 16-byte
//! UUID after a tag without `SAME_UUID`, `LAST_TAG`, escaped blocks, the
//! `jbd2_journal_block_tail` of descriptor and revoke blocks, 4- or 8-byte
//! revoke records, checksum v1 (CRC-32 of the transaction in the commit
//! block), v2 and v3 (CRC-32C seeded with `crc32c(~0, uuid)`; a data block's
//! with the big-endian transaction ID first), asynchronous commits, the
//! wrap of the log from `s_maxlen` (less the fast-commit area) back to
//! `s_first`, and transaction IDs compared modulo 2^32.
//!
//! Where the log is damaged, the kernel's choices are followed:
//!
//! - the log ends at the first block that is not a jbd2 block of the
//!   expected transaction (a stale block from an older pass of the log, a
//!   transaction without its commit block), or of an unknown type;
//! - a commit block whose checksum fails, older than the transaction
//!   before it, is stale: the log ends there, successfully; one that is
//!   not ends the log there too, and the kernel then fails the mount
//!   ("journal transaction N is corrupt", [`Failure::CorruptCommit`]),
//!   unless the journal has asynchronous commits;
//! - a descriptor or revoke block whose checksum fails in the scan pass
//!   ends the log, successfully, if the next commit block is older than
//!   the transaction before, and fails the mount if it is not;
//! - revoked blocks (a revoke record of a transaction at least as recent)
//!   are not replayed;
//! - a data block whose tag checksum fails is not replayed, the replay
//!   goes on, and the kernel then fails the mount
//!   ([`Failure::DataChecksum`]; the other blocks were written).
//!
//! Nothing here panics, whatever the input: every access is checked, and
//! every loop is bounded by the journal's length (a log the kernel would
//! walk forever ends with [`Failure::Endless`]).
//!
//! Two liberties: a log that replays into the journal superblock changes,
//! in the kernel, the features the rest of the replay uses (the superblock
//! in memory is that block's buffer); here the features stay those the
//! journal was loaded with. Such a log is never written by jbd2, and
//! `fsck.swapfs` reports it. The replay pass does read the journal through
//! the blocks it replayed, as the kernel's buffer cache does.

pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;

use swapfs_common::crc32c;

use crate::device::ReadBlocks;
use crate::jbd2::{self, features, JournalSuperblock};

/// `h_blocktype` values of log blocks.
pub mod blocktype {
    /// `JBD2_DESCRIPTOR_BLOCK`.
    pub const DESCRIPTOR: u32 = 1;
    /// `JBD2_COMMIT_BLOCK`.
    pub const COMMIT: u32 = 2;
    /// `JBD2_REVOKE_BLOCK`.
    pub const REVOKE: u32 = 5;
}

/// Tag flags (`t_flags`).
pub mod flag {
    /// `JBD2_FLAG_ESCAPE`: the block began with the jbd2 magic number,
    /// which the log copy has zeroed.
    pub const ESCAPE: u16 = 1;
    /// `JBD2_FLAG_SAME_UUID`: no UUID follows the tag.
    pub const SAME_UUID: u16 = 2;
    /// `JBD2_FLAG_DELETED`.
    pub const DELETED: u16 = 4;
    /// `JBD2_FLAG_LAST_TAG`: the last tag of the descriptor.
    pub const LAST_TAG: u16 = 8;
}

/// `journal_header_t`: magic, block type, sequence.
pub const HEADER_SIZE: usize = 12;
/// `jbd2_journal_revoke_header_t`: the header and `r_count`.
pub const REVOKE_HEADER_SIZE: usize = 16;
/// `struct jbd2_journal_block_tail`.
pub const TAIL_SIZE: usize = 4;
/// `struct commit_header`.
pub const COMMIT_HEADER_SIZE: usize = 60;
/// Offset of `h_chksum_type` in a commit block.
pub const COMMIT_CHKSUM_TYPE: usize = 12;
/// Offset of `h_chksum_size` in a commit block.
pub const COMMIT_CHKSUM_SIZE: usize = 13;
/// Offset of `h_chksum[0]` in a commit block.
pub const COMMIT_CHKSUM: usize = 16;
/// Offset of `h_commit_sec` (big-endian u64) in a commit block.
pub const COMMIT_SEC: usize = 48;
/// Offset of `h_commit_nsec` in a commit block.
pub const COMMIT_NSEC: usize = 56;
/// `JBD2_CRC32_CHKSUM`: the checksum type of a v1 commit block.
pub const CRC32_CHKSUM: u8 = 1;
/// `JBD2_CRC32_CHKSUM_SIZE`.
pub const CRC32_CHKSUM_SIZE: u8 = 4;
/// `JBD2_DEFAULT_FAST_COMMIT_BLOCKS`.
pub const DEFAULT_FAST_COMMIT_BLOCKS: u32 = 256;

pub(crate) fn get_be16(b: &[u8], o: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(o..o.saturating_add(2)) {
        a.copy_from_slice(s);
    }
    u16::from_be_bytes(a)
}

pub(crate) fn get_be32(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(o..o.saturating_add(4)) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

pub(crate) fn get_be64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(o..o.saturating_add(8)) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

pub(crate) fn put_be32(b: &mut [u8], o: usize, v: u32) {
    if let Some(s) = b.get_mut(o..o.saturating_add(4)) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// `tid_gt()`: whether transaction ID `x` is after `y`, modulo 2^32.
pub fn tid_gt(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) > 0
}

/// `tid_geq()`.
pub fn tid_geq(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) >= 0
}

/// The kernel's `crc32_be()`: CRC-32 (polynomial 0x04c11db7), most
/// significant bit first, no inversion. Checksum v1 of commit blocks.
pub fn crc32_be(crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04c1_1db7
                } else {
                    c << 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    data.iter().fold(crc, |c, &b| {
        (c << 8) ^ TABLE[((c >> 24) as u8 ^ b) as usize]
    })
}

/// Why the kernel fails a recovery (and the mount with it). The variants
/// name the kernel's error; the blocks are journal block numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The log runs past the journal (`jread()`: "corrupted journal
    /// superblock", `EFSCORRUPTED`).
    OutOfJournal {
        /// The journal block asked for.
        block: u64,
    },
    /// A descriptor block of a committed transaction fails its checksum in
    /// the revoke or replay pass (`EFSBADCRC`).
    DescriptorChecksum {
        /// The transaction.
        tid: u32,
        /// Its journal block.
        block: u64,
    },
    /// A descriptor or revoke block failed its checksum, and the next
    /// commit block is not older than the transaction before it: not stale
    /// data, corruption ("Invalid checksum found in transaction",
    /// `EFSBADCRC`).
    BadChecksumInTransaction {
        /// The transaction.
        tid: u32,
    },
    /// A revoke block's byte count is larger than the block (`EINVAL`).
    RevokeCount {
        /// The transaction.
        tid: u32,
        /// Its journal block.
        block: u64,
        /// `r_count`.
        count: u32,
    },
    /// A data block fails its tag checksum: not replayed, and the recovery
    /// fails after the replay pass ("Invalid checksum recovering data
    /// block", `EFSBADCRC`).
    DataChecksum {
        /// The transaction.
        tid: u32,
        /// The filesystem block it would have replayed.
        target: u64,
        /// The data block's journal block.
        block: u64,
    },
    /// A pass ended at another transaction than the scan pass (`EIO`).
    PassesDisagree {
        /// The pass: "revoke" or "replay".
        pass: &'static str,
        /// Where it ended.
        ended: u32,
        /// Where the scan ended.
        expected: u32,
    },
    /// The commit block of this transaction fails its checksum, and the
    /// journal has synchronous commits ("journal transaction N is
    /// corrupt", `EFSCORRUPTED`). The transactions before it were replayed.
    CorruptCommit {
        /// The transaction.
        tid: u32,
    },
    /// The log goes round the journal more than twice: the kernel would
    /// walk it forever (or very long).
    Endless,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::OutOfJournal { block } => {
                write!(f, "the log runs past the end of the journal (journal block {block})")
            }
            Failure::DescriptorChecksum { tid, block } => write!(
                f,
                "transaction {tid}: the descriptor block (journal block {block}) fails its checksum"
            ),
            Failure::BadChecksumInTransaction { tid } => write!(
                f,
                "transaction {tid}: a descriptor or revoke block fails its checksum, and the transaction is committed"
            ),
            Failure::RevokeCount { tid, block, count } => write!(
                f,
                "transaction {tid}: revoke block (journal block {block}) claims {count} bytes, more than the block holds"
            ),
            Failure::DataChecksum { tid, target, block } => write!(
                f,
                "transaction {tid}: the copy of block {target} (journal block {block}) fails its checksum"
            ),
            Failure::PassesDisagree {
                pass,
                ended,
                expected,
            } => write!(
                f,
                "the {pass} pass ended at transaction {ended}, the scan at {expected}"
            ),
            Failure::CorruptCommit { tid } => write!(
                f,
                "transaction {tid}: the commit block fails its checksum"
            ),
            Failure::Endless => write!(f, "the log never ends: it goes round the journal"),
        }
    }
}

/// A data block that was not replayed because its tag checksum failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadData {
    /// The transaction.
    pub tid: u32,
    /// The filesystem block it would have replayed.
    pub target: u64,
    /// The data block's journal block.
    pub block: u64,
}

/// What a recovery did, or would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The first transaction of the log (`s_sequence`).
    pub start_tid: u32,
    /// The transaction at which the log ends (`end_transaction`): the
    /// transactions `start_tid..end_tid` are replayed. 0 when the scan
    /// failed before finding it (as in the kernel).
    pub end_tid: u32,
    /// Journal block after the last complete transaction.
    pub head_block: u64,
    /// Filesystem block to its contents after the replay pass (the last
    /// copy replayed, unescaped): what the kernel writes.
    pub blocks: BTreeMap<u64, Vec<u8>>,
    /// Block copies replayed (the kernel's `nr_replays`).
    pub replays: u64,
    /// Revoke records read in the scan pass.
    pub revoke_records: u64,
    /// Block copies skipped because they were revoked.
    pub revoke_hits: u64,
    /// Data blocks skipped because their checksums failed.
    pub bad_data: Vec<BadData>,
    /// Why the kernel would fail the recovery (`None`: it succeeds).
    pub failure: Option<Failure>,
    /// What the kernel would log on the way that is not a failure (a torn
    /// commit block accepted, stale blocks ending the log).
    pub notes: Vec<String>,
}

impl Recovery {
    /// The number of transactions replayed.
    pub fn transactions(&self) -> u32 {
        self.end_tid.wrapping_sub(self.start_tid)
    }

    /// The first transaction ID jbd2 uses after this recovery
    /// (`++info.end_transaction`): one past the end of the log, so that no
    /// commit block left in the log can match.
    pub fn next_tid(&self) -> u32 {
        self.end_tid.wrapping_add(1)
    }

    /// Whether the kernel would recover this log and mount.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// An image seen as a recovery leaves it: the replayed blocks over `base`.
pub struct Replayed<'a> {
    /// The device.
    pub base: &'a dyn ReadBlocks,
    /// Replayed contents by block (of the journal's block size).
    pub blocks: &'a BTreeMap<u64, Vec<u8>>,
}

impl ReadBlocks for Replayed<'_> {
    fn read_block(&self, blk: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.blocks.get(&blk) {
            Some(b) if b.len() == buf.len() => {
                buf.copy_from_slice(b);
                Ok(())
            }
            _ => self.base.read_block(blk, buf),
        }
    }

    /// The base's blocks in one read, then the replayed ones over them.
    fn read_blocks(&self, start: u64, block_size: usize, buf: &mut [u8]) -> io::Result<()> {
        self.base.read_blocks(start, block_size, buf)?;
        let end = start + (buf.len() / block_size) as u64;
        for (&blk, b) in self.blocks.range(start..end) {
            if b.len() == block_size {
                let at = (blk - start) as usize * block_size;
                buf[at..at + block_size].copy_from_slice(b);
            }
        }
        Ok(())
    }
}

/// A journal as jbd2 loads it.
#[derive(Clone, Debug)]
pub struct Journal {
    /// The superblock's fields.
    pub sb: JournalSuperblock,
    block_size: usize,
    /// Filesystem block of journal block 0.
    start: u64,
    /// `j_total_len`: journal blocks that may be read.
    total_len: u64,
    /// `j_first`.
    first: u64,
    /// `j_last`: the log wraps here (before the fast-commit area).
    last: u64,
    csum_v1: bool,
    csum_v2: bool,
    csum_v3: bool,
    bit64: bool,
    async_commit: bool,
    /// `j_csum_seed`.
    seed: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Scan,
    Revoke,
    Replay,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Scan => "scan",
            Pass::Revoke => "revoke",
            Pass::Replay => "replay",
        }
    }
}

impl Journal {
    /// Loads the journal whose superblock is `block` (journal block 0,
    /// `block_size` bytes), `len` blocks from filesystem block `start`, as
    /// jbd2 does. `Err` says why jbd2 refuses it (the mount fails).
    pub fn load(block: &[u8], block_size: usize, start: u64, len: u64) -> Result<Journal, String> {
        let sb = JournalSuperblock::decode(block);
        if sb.magic != jbd2::MAGIC || sb.blocksize as usize != block_size {
            return Err(format!(
                "no valid journal superblock (magic {:#010x}, block size {})",
                sb.magic, sb.blocksize
            ));
        }
        if sb.blocktype != jbd2::SUPERBLOCK_V1 && sb.blocktype != jbd2::SUPERBLOCK_V2 {
            return Err(format!(
                "unrecognised journal superblock format {}",
                sb.blocktype
            ));
        }
        let maxlen = u64::from(sb.maxlen);
        if maxlen > len {
            return Err(format!(
                "journal too short: s_maxlen {maxlen}, the journal has {len} blocks"
            ));
        }
        let first = u64::from(sb.first);
        if first == 0 || first >= len {
            return Err(format!("invalid start block of the journal: {first}"));
        }
        // Features only exist in a version 2 superblock.
        let v2 = sb.blocktype != jbd2::SUPERBLOCK_V1;
        let has = |bits: u32, mask: u32| v2 && bits & mask != 0;
        let incompat = sb.feature_incompat;
        let csum_v1 = has(sb.feature_compat, features::COMPAT_CHECKSUM);
        let csum_v2 = has(incompat, features::INCOMPAT_CSUM_V2);
        let csum_v3 = has(incompat, features::INCOMPAT_CSUM_V3);
        let fast_commit = has(incompat, features::INCOMPAT_FAST_COMMIT);
        let num_fc = match sb.num_fc_blks {
            0 => DEFAULT_FAST_COMMIT_BLOCKS,
            n => n,
        };
        if v2 {
            if sb.feature_ro_compat & !features::KNOWN_RO_COMPAT != 0
                || incompat & !features::KNOWN_INCOMPAT != 0
            {
                return Err("unrecognised features on the journal".into());
            }
            let fc = if fast_commit { u64::from(num_fc) } else { 0 };
            if maxlen < u64::from(jbd2::MIN_JOURNAL_BLOCKS)
                || maxlen - u64::from(jbd2::MIN_JOURNAL_BLOCKS) < fc
            {
                return Err(format!(
                    "journal too short: {maxlen} blocks, {fc} fast-commit blocks"
                ));
            }
            if csum_v2 && csum_v3 {
                return Err("checksum v2 and v3 both enabled".into());
            }
            if (csum_v2 || csum_v3) && csum_v1 {
                return Err("checksum v1 and v2/v3 both enabled".into());
            }
            if (csum_v2 || csum_v3) && sb.checksum_type != jbd2::CRC32C_CHKSUM {
                return Err(format!("unknown checksum type {}", sb.checksum_type));
            }
            if (csum_v2 || csum_v3) && sb.checksum != jbd2::checksum(block) {
                return Err("journal superblock checksum error".into());
            }
        }
        let total_len = len.min(maxlen);
        let last = if fast_commit {
            maxlen.wrapping_sub(u64::from(num_fc))
        } else {
            maxlen
        };
        // journal_reset(), after recovery: the mount fails all the same.
        if first + u64::from(jbd2::MIN_JOURNAL_BLOCKS) > maxlen + 1 {
            return Err(format!("journal too short (blocks {first}-{maxlen})"));
        }
        let seed = if csum_v2 || csum_v3 {
            crc32c::update(!0, &sb.uuid)
        } else {
            0
        };
        Ok(Journal {
            sb,
            block_size,
            start,
            total_len,
            first,
            last,
            csum_v1,
            csum_v2,
            csum_v3,
            bit64: has(incompat, features::INCOMPAT_64BIT),
            async_commit: has(incompat, features::INCOMPAT_ASYNC_COMMIT),
            seed,
        })
    }

    /// Whether the log holds transactions to replay (`s_start` != 0).
    pub fn needs_recovery(&self) -> bool {
        self.sb.start != 0
    }

    /// `journal_tag_bytes()`.
    pub fn tag_bytes(&self) -> usize {
        if self.csum_v3 {
            return 16;
        }
        let sz = 12 + if self.csum_v2 { 2 } else { 0 };
        if self.bit64 {
            sz
        } else {
            sz - 4
        }
    }

    fn has_csum(&self) -> bool {
        self.csum_v2 || self.csum_v3
    }

    /// The `wrap()` macro of recovery.c, in the kernel's unsigned
    /// arithmetic.
    fn wrap(&self, b: u64) -> u64 {
        if b >= self.last {
            b.wrapping_sub(self.last.wrapping_sub(self.first))
        } else {
            b
        }
    }

    /// `jbd2_descriptor_block_csum_verify()` (also for revoke blocks).
    fn tail_ok(&self, b: &[u8]) -> bool {
        if !self.has_csum() {
            return true;
        }
        let Some(at) = b.len().checked_sub(TAIL_SIZE) else {
            return false;
        };
        let crc = crc32c::update(self.seed, &b[..at]);
        crc32c::update(crc, &[0; TAIL_SIZE]) == get_be32(b, at)
    }

    /// `jbd2_commit_block_csum_verify()` and, if `partial`, the `_partial`
    /// variant (the header alone, the rest of the block taken as zeroes).
    fn commit_ok(&self, b: &[u8], partial: bool) -> bool {
        if !self.has_csum() {
            return true;
        }
        let head = &b[..COMMIT_CHKSUM.min(b.len())];
        let crc = crc32c::update(crc32c::update(self.seed, head), &[0; 4]);
        let rest = if partial {
            let mut z = vec![0u8; b.len().saturating_sub(COMMIT_CHKSUM + 4)];
            let hdr = b
                .get(COMMIT_CHKSUM + 4..COMMIT_HEADER_SIZE.min(b.len()))
                .unwrap_or(&[]);
            if let Some(d) = z.get_mut(..hdr.len()) {
                d.copy_from_slice(hdr);
            }
            z
        } else {
            b.get(COMMIT_CHKSUM + 4..).unwrap_or(&[]).to_vec()
        };
        crc32c::update(crc, &rest) == get_be32(b, COMMIT_CHKSUM)
    }

    /// `jbd2_block_tag_csum_verify()`.
    fn tag_ok(&self, tag: &[u8], data: &[u8], tid: u32) -> bool {
        if !self.has_csum() {
            return true;
        }
        let crc = crc32c::update(crc32c::update(self.seed, &tid.to_be_bytes()), data);
        if self.csum_v3 {
            get_be32(tag, 12) == crc
        } else {
            get_be16(tag, 4) == crc as u16
        }
    }

    /// The tags of a descriptor block, as `count_tags()` and
    /// `jbd2_do_replay()` walk them: (offset of the tag, flags).
    fn tags(&self, b: &[u8]) -> Vec<(usize, u16)> {
        let size = b
            .len()
            .saturating_sub(if self.has_csum() { TAIL_SIZE } else { 0 });
        let tb = self.tag_bytes();
        let mut v = Vec::new();
        let mut off = HEADER_SIZE;
        while off + tb <= size {
            // The kernel copies a 12-byte journal_block_tag_t whatever the
            // tag size; the flags are bytes 6-7 in every format.
            let flags = get_be16(b, off + 6);
            v.push((off, flags));
            off += tb;
            if flags & flag::SAME_UUID == 0 {
                off += 16;
            }
            if flags & flag::LAST_TAG != 0 {
                break;
            }
        }
        v
    }

    /// `read_tag_block()`.
    fn tag_block(&self, tag: &[u8]) -> u64 {
        let lo = u64::from(get_be32(tag, 0));
        if self.bit64 {
            lo | u64::from(get_be32(tag, 8)) << 32
        } else {
            lo
        }
    }

    /// Runs the kernel's three recovery passes over `dev`, which is only
    /// read. A journal that needs no recovery gives an empty [`Recovery`].
    /// `Err` only for an I/O error on `dev`.
    pub fn recover(&self, dev: &dyn ReadBlocks) -> io::Result<Recovery> {
        let mut run = Run {
            j: self,
            dev,
            rec: Recovery {
                start_tid: self.sb.sequence,
                end_tid: self.sb.sequence,
                ..Recovery::default()
            },
            revoked: HashMap::new(),
            failed_commit: None,
        };
        if !self.needs_recovery() {
            return Ok(run.rec);
        }
        run.rec.end_tid = 0;
        for pass in [Pass::Scan, Pass::Revoke, Pass::Replay] {
            if let Err(f) = run.pass(pass)? {
                run.rec.failure = Some(f);
                return Ok(run.rec);
            }
        }
        if let Some(tid) = run.failed_commit {
            run.rec.failure = Some(Failure::CorruptCommit { tid });
        }
        Ok(run.rec)
    }
}

/// One recovery in progress (`struct recovery_info` and the journal's
/// revoke table).
struct Run<'a> {
    j: &'a Journal,
    dev: &'a dyn ReadBlocks,
    rec: Recovery,
    /// Block to the latest transaction that revoked it.
    revoked: HashMap<u64, u32>,
    /// `j_failed_commit`.
    failed_commit: Option<u32>,
}

/// How a pass ends: `Err` is the error the kernel's pass returns.
type PassResult = io::Result<Result<(), Failure>>;

impl Run<'_> {
    /// `jread()`; the replay pass reads through what it replayed, as the
    /// kernel reads through its buffer cache.
    fn jread(&self, j: u64, buf: &mut [u8], pass: Pass) -> PassResult {
        if j >= self.j.total_len {
            return Ok(Err(Failure::OutOfJournal { block: j }));
        }
        let blk = self.j.start.saturating_add(j);
        if pass == Pass::Replay {
            if let Some(b) = self.rec.blocks.get(&blk).filter(|b| b.len() == buf.len()) {
                buf.copy_from_slice(b);
                return Ok(Ok(()));
            }
        }
        self.dev.read_block(blk, buf)?;
        Ok(Ok(()))
    }

    /// `do_one_pass()`.
    fn pass(&mut self, pass: Pass) -> PassResult {
        let j = self.j;
        let bs = j.block_size;
        let mut next_id = j.sb.sequence;
        let mut next = u64::from(j.sb.start);
        let mut head = next;
        let mut crc_sum: u32 = !0;
        let mut need_check_commit_time = false;
        let mut last_commit_time = 0u64;
        let mut success: Option<Failure> = None;
        let mut buf = vec![0u8; bs];
        let mut data = vec![0u8; bs];
        // Blocks read or skipped: a log that is longer than twice the
        // journal goes round it (the kernel would never stop).
        let mut walked = 0u64;
        let limit = j.total_len.saturating_mul(2).saturating_add(2);
        'log: loop {
            if pass != Pass::Scan && tid_geq(next_id, self.rec.end_tid) {
                break;
            }
            if walked > limit {
                return Ok(Err(Failure::Endless));
            }
            let at = next;
            if let Err(f) = self.jread(at, &mut buf, pass)? {
                return Ok(Err(f));
            }
            walked += 1;
            next = j.wrap(next.wrapping_add(1));
            if get_be32(&buf, 0) != jbd2::MAGIC || get_be32(&buf, 8) != next_id {
                break;
            }
            match get_be32(&buf, 4) {
                blocktype::DESCRIPTOR => {
                    if !j.tail_ok(&buf) {
                        if pass != Pass::Scan {
                            return Ok(Err(Failure::DescriptorChecksum {
                                tid: next_id,
                                block: at,
                            }));
                        }
                        need_check_commit_time = true;
                    }
                    let tags = j.tags(&buf);
                    walked += tags.len() as u64;
                    if pass == Pass::Scan && j.csum_v1 && self.rec.end_tid == 0 {
                        // calc_chksums()
                        crc_sum = crc32_be(crc_sum, &buf);
                        for _ in 0..tags.len() {
                            let io = next;
                            next = j.wrap(next.wrapping_add(1));
                            if self.jread(io, &mut data, pass)?.is_err() {
                                // The kernel logs an I/O error and goes on
                                // with the next block.
                                continue 'log;
                            }
                            crc_sum = crc32_be(crc_sum, &data);
                        }
                        continue;
                    }
                    if pass != Pass::Replay {
                        next = j.wrap(next.wrapping_add(tags.len() as u64));
                        continue;
                    }
                    self.replay(&buf, &tags, &mut next, next_id, &mut data, &mut success)?;
                }
                blocktype::COMMIT => {
                    if pass != Pass::Scan {
                        next_id = next_id.wrapping_add(1);
                        continue;
                    }
                    let commit_time = get_be64(&buf, COMMIT_SEC);
                    if need_check_commit_time {
                        if commit_time >= last_commit_time {
                            return Ok(Err(Failure::BadChecksumInTransaction { tid: next_id }));
                        }
                        self.rec.notes.push(format!(
                            "transaction {next_id}: a block failed its checksum, and the commit block is older than the transaction before: stale blocks, the log ends"
                        ));
                        break;
                    }
                    let good = if j.csum_v1 {
                        if self.rec.end_tid != 0 {
                            self.failed_commit = Some(self.rec.end_tid);
                            continue;
                        }
                        let found = get_be32(&buf, COMMIT_CHKSUM);
                        let ty = buf.get(COMMIT_CHKSUM_TYPE).copied().unwrap_or(0);
                        let size = buf.get(COMMIT_CHKSUM_SIZE).copied().unwrap_or(0);
                        let ok =
                            (crc_sum == found && ty == CRC32_CHKSUM && size == CRC32_CHKSUM_SIZE)
                                || (ty == 0 && size == 0 && found == 0);
                        if ok {
                            crc_sum = !0;
                        }
                        ok
                    } else if j.commit_ok(&buf, false) {
                        true
                    } else if j.commit_ok(&buf, true) {
                        self.rec.notes.push(format!(
                            "transaction {next_id}: incomplete commit block (journal block {at}) accepted"
                        ));
                        true
                    } else {
                        false
                    };
                    if !good {
                        if commit_time < last_commit_time {
                            self.rec.notes.push(format!(
                                "transaction {next_id}: the commit block fails its checksum and is older than the transaction before: stale, the log ends"
                            ));
                            break;
                        }
                        self.rec.end_tid = next_id;
                        self.rec.head_block = head;
                        if !j.async_commit {
                            self.failed_commit = Some(next_id);
                            continue;
                        }
                    }
                    last_commit_time = commit_time;
                    head = next;
                    next_id = next_id.wrapping_add(1);
                }
                blocktype::REVOKE => {
                    if pass == Pass::Replay {
                        continue;
                    }
                    if pass == Pass::Scan && !j.tail_ok(&buf) {
                        need_check_commit_time = true;
                    }
                    if let Err(f) = self.scan_revoke(&buf, pass, next_id, at) {
                        return Ok(Err(f));
                    }
                }
                _ => break,
            }
        }
        if pass == Pass::Scan {
            if self.rec.end_tid == 0 {
                self.rec.end_tid = next_id;
            }
            if self.rec.head_block == 0 {
                self.rec.head_block = head;
            }
        } else if self.rec.end_tid != next_id && success.is_none() {
            success = Some(Failure::PassesDisagree {
                pass: pass.name(),
                ended: next_id,
                expected: self.rec.end_tid,
            });
        }
        Ok(success.map_or(Ok(()), Err))
    }

    /// `jbd2_do_replay()`: the data blocks of one descriptor.
    fn replay(
        &mut self,
        desc: &[u8],
        tags: &[(usize, u16)],
        next: &mut u64,
        tid: u32,
        data: &mut [u8],
        success: &mut Option<Failure>,
    ) -> io::Result<()> {
        let j = self.j;
        for &(off, flags) in tags {
            let io = *next;
            *next = j.wrap(next.wrapping_add(1));
            if let Err(f) = self.jread(io, data, Pass::Replay)? {
                // Recover what can be, fail at the end.
                *success = Some(f);
                continue;
            }
            let tag = desc.get(off..).unwrap_or(&[]);
            let target = j.tag_block(tag);
            if self
                .revoked
                .get(&target)
                .is_some_and(|&seq| !tid_gt(tid, seq))
            {
                self.rec.revoke_hits += 1;
                continue;
            }
            if !j.tag_ok(tag, data, tid) {
                self.rec.bad_data.push(BadData {
                    tid,
                    target,
                    block: io,
                });
                *success = Some(Failure::DataChecksum {
                    tid,
                    target,
                    block: io,
                });
                continue;
            }
            let mut copy = data.to_vec();
            if flags & flag::ESCAPE != 0 {
                put_be32(&mut copy, 0, jbd2::MAGIC);
            }
            self.rec.blocks.insert(target, copy);
            self.rec.replays += 1;
        }
        Ok(())
    }

    /// `scan_revoke_records()`.
    fn scan_revoke(&mut self, b: &[u8], pass: Pass, tid: u32, at: u64) -> Result<(), Failure> {
        let j = self.j;
        let count = get_be32(b, 12);
        let csum = if j.has_csum() { TAIL_SIZE } else { 0 };
        if count as usize > j.block_size.saturating_sub(csum) {
            return Err(Failure::RevokeCount {
                tid,
                block: at,
                count,
            });
        }
        let max = count as usize;
        let rl = if j.bit64 { 8 } else { 4 };
        if pass == Pass::Scan {
            self.rec.revoke_records += (max.saturating_sub(REVOKE_HEADER_SIZE) / rl) as u64;
            return Ok(());
        }
        let mut off = REVOKE_HEADER_SIZE;
        while off + rl <= max {
            let blk = if rl == 4 {
                u64::from(get_be32(b, off))
            } else {
                get_be64(b, off)
            };
            off += rl;
            // jbd2_journal_set_revoke(): keep the latest transaction.
            let e = self.revoked.entry(blk).or_insert(tid);
            if tid_gt(tid, *e) {
                *e = tid;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

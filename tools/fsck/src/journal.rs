// SPDX-License-Identifier: GPL-2.0

//! The journal: its superblock, and its log as the kernel will replay it.
//!
//! `examine` checks the journal superblock and, when the log holds
//! transactions (`s_start` != 0), recovers it in memory as the kernel's
//! jbd2 does at mount ([`swapfs_image::jlog`]): the checker then reads the
//! filesystem through the replayed blocks. A log the kernel would refuse
//! (the mount fails) is a problem, and the filesystem is then checked as it
//! is on disk. [`replay`] writes a recovery to the device, as e2fsck does
//! with `-p` or `-y`.

use swapfs_common::crc32c;
use swapfs_common::format::{Geometry, Superblock};
use swapfs_image::jbd2::{self, JournalSuperblock};
use swapfs_image::jlog::{Journal, Recovery};
use swapfs_image::Image;

use crate::check::{after_replay, check_superblock};
use crate::report::{Error, Location, Problem, Report};

type Result<T> = std::result::Result<T, Error>;

/// What [`examine`] found.
pub(crate) struct Examined {
    /// Problems of the journal superblock, then of the log.
    pub problems: Vec<Problem>,
    /// Lines printed whatever the verbosity: the log's state, warnings.
    pub info: Vec<String>,
    /// Notes for `-v`.
    pub notes: Vec<String>,
    /// Whether the log holds transactions (`s_start` != 0).
    pub needs_recovery: bool,
    /// The recovery the kernel will do, when it will succeed: the check
    /// reads through its blocks.
    pub recovery: Option<Recovery>,
    /// Why the log must not be replayed by `-p`/`-y`, if it needs recovery:
    /// the kernel would refuse it, or it replays blocks jbd2 never
    /// journals for swapfs.
    pub refused: Option<String>,
}

impl Examined {
    fn problem(&mut self, at: Location, msg: impl Into<String>) {
        self.problems.push(Problem {
            at,
            msg: msg.into(),
        });
    }
}

/// `n` things, singular or plural.
pub(crate) fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Checks the journal superblock of the filesystem `sb` (on disk, geometry
/// `geo`) and recovers its log in memory if it needs recovery.
pub(crate) fn examine(img: &Image, sb: &Superblock, geo: &Geometry) -> Result<Examined> {
    let mut ex = Examined {
        problems: Vec::new(),
        info: Vec::new(),
        notes: Vec::new(),
        needs_recovery: false,
        recovery: None,
        refused: None,
    };
    let bs = geo.block_size();
    let blk = geo.journal_start;
    let mut buf = vec![0u8; bs];
    img.read_block(blk, &mut buf)?;
    let j = JournalSuperblock::decode(&buf);
    let at = Location::Journal;
    if j.magic != jbd2::MAGIC {
        ex.problem(
            at,
            format!(
                "block {blk}: bad magic {:#010x} (jbd2: {:#010x})",
                j.magic,
                jbd2::MAGIC
            ),
        );
        return Ok(ex);
    }
    let mut p = Vec::new();
    if j.blocktype != jbd2::SUPERBLOCK_V2 {
        p.push(format!(
            "block type {}, expected {} (version 2 superblock)",
            j.blocktype,
            jbd2::SUPERBLOCK_V2
        ));
    }
    if j.blocksize as usize != bs {
        p.push(format!("block size {}, expected {bs}", j.blocksize));
    }
    if u64::from(j.maxlen) != geo.journal_blocks {
        p.push(format!(
            "s_maxlen {}, expected {} (the journal region)",
            j.maxlen, geo.journal_blocks
        ));
    }
    if j.first != 1 {
        p.push(format!("s_first {}, expected 1", j.first));
    }
    if j.uuid != sb.uuid {
        p.push("UUID differs from the filesystem's".to_string());
    }
    let unknown_in = j.feature_incompat & !jbd2::features::KNOWN_INCOMPAT;
    let unknown_ro = j.feature_ro_compat & !jbd2::features::KNOWN_RO_COMPAT;
    if unknown_in != 0 || unknown_ro != 0 {
        p.push(format!(
            "unknown features (incompatible {unknown_in:#x}, read-only compatible {unknown_ro:#x})"
        ));
    }
    let v2 = j.feature_incompat & jbd2::features::INCOMPAT_CSUM_V2 != 0;
    let v3 = j.feature_incompat & jbd2::features::INCOMPAT_CSUM_V3 != 0;
    if v2 && v3 {
        p.push("both checksum v2 and v3 are enabled".to_string());
    }
    if (v2 || v3) && j.feature_compat & jbd2::features::COMPAT_CHECKSUM != 0 {
        p.push("both checksum v1 and v2/v3 are enabled".to_string());
    }
    if v2 || v3 {
        if j.checksum_type != jbd2::CRC32C_CHKSUM {
            p.push(format!(
                "checksum type {}, expected {} (CRC-32C)",
                j.checksum_type,
                jbd2::CRC32C_CHKSUM
            ));
        } else {
            let computed = jbd2::checksum(&buf);
            if computed != j.checksum {
                p.push(format!(
                    "checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                    j.checksum
                ));
            }
        }
    }
    if j.feature_incompat & jbd2::features::INCOMPAT_FAST_COMMIT != 0 {
        let fc = if j.num_fc_blks == 0 {
            256
        } else {
            j.num_fc_blks
        };
        if j.maxlen.saturating_sub(jbd2::MIN_JOURNAL_BLOCKS) < fc {
            p.push(format!(
                "{fc} fast-commit blocks leave less than {} journal blocks",
                jbd2::MIN_JOURNAL_BLOCKS
            ));
        }
    }
    let superblock_ok = p.is_empty();
    for msg in p {
        ex.problem(at.clone(), msg);
    }
    if j.errno != 0 {
        ex.info.push(format!(
            "warning: the journal was aborted (s_errno {}): the next mount replays it, clears the error and marks the filesystem as having had errors",
            j.errno
        ));
    }
    ex.notes.push(format!(
        "journal: {} blocks, sequence {}, start {}, features compat {:#x} incompat {:#x}",
        j.maxlen, j.sequence, j.start, j.feature_compat, j.feature_incompat
    ));
    ex.needs_recovery = j.start != 0;

    let journal = match Journal::load(&buf, bs, geo.journal_start, geo.journal_blocks) {
        Ok(journal) => journal,
        Err(why) => {
            // The mount fails, whether the log needs recovery or not.
            if superblock_ok {
                ex.problem(at, format!("jbd2 refuses the journal: {why}"));
            }
            if ex.needs_recovery {
                ex.info.push(
                    "journal: needs recovery, but jbd2 refuses the journal (see the problems); checked as on disk"
                        .into(),
                );
                ex.refused = Some(format!("jbd2 refuses the journal: {why}"));
            }
            return Ok(ex);
        }
    };
    if !ex.needs_recovery {
        return Ok(ex);
    }
    let rec = journal.recover(img)?;
    ex.notes
        .extend(rec.notes.iter().map(|n| format!("journal: {n}")));
    if let Some(f) = &rec.failure {
        ex.problem(
            Location::Log,
            format!("{f}; the kernel cannot recover the log and fails the mount"),
        );
        for b in rec.bad_data.iter().skip(1) {
            ex.problem(
                Location::Log,
                format!(
                    "transaction {}: the copy of block {} (journal block {}) fails its checksum",
                    b.tid, b.target, b.block
                ),
            );
        }
        ex.info.push(
            "journal: needs recovery, but the kernel cannot recover the log (see the problems); checked as on disk"
                .into(),
        );
        ex.refused = Some(format!("the kernel cannot recover the log: {f}"));
        return Ok(ex);
    }
    let jend = geo.journal_start.saturating_add(geo.journal_blocks);
    let outside: Vec<u64> = rec
        .blocks
        .keys()
        .copied()
        .filter(|&b| b >= geo.block_count)
        .collect();
    let inside: Vec<u64> = rec
        .blocks
        .keys()
        .copied()
        .filter(|&b| (geo.journal_start..jend).contains(&b))
        .collect();
    for (blocks, where_) in [
        (
            &outside,
            format!("outside the filesystem ({} blocks)", geo.block_count),
        ),
        (
            &inside,
            format!(
                "inside the journal (blocks {}-{})",
                geo.journal_start,
                jend - 1
            ),
        ),
    ] {
        if let Some(first) = blocks.first() {
            let what = count(blocks.len() as u64, "block");
            ex.problem(
                Location::Log,
                format!("the log replays {what} {where_}, first block {first}"),
            );
        }
    }
    if !outside.is_empty() || !inside.is_empty() {
        ex.refused = Some("the log replays blocks that swapfs never journals".into());
    }
    let n = rec.transactions();
    let tids = match n {
        0 => String::new(),
        1 => format!(" (tid {})", rec.start_tid),
        _ => format!(" (tids {}-{})", rec.start_tid, rec.end_tid.wrapping_sub(1)),
    };
    ex.info.push(format!(
        "journal: needs recovery, {}{tids}, {}; checked as replayed",
        count(u64::from(n), "transaction"),
        count(rec.blocks.len() as u64, "block")
    ));
    ex.notes.push(format!(
        "journal: recovery replays {} block copies, {} revoke records skip {}; the next transaction is {}",
        rec.replays,
        rec.revoke_records,
        rec.revoke_hits,
        rec.next_tid()
    ));
    ex.recovery = Some(rec);
    Ok(ex)
}

/// What [`replay`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// The log needs no recovery (or there is no usable superblock: the
    /// check says why).
    NotNeeded,
    /// The log was replayed and the journal marked empty.
    Done {
        /// Transactions replayed.
        transactions: u32,
        /// Blocks written.
        blocks: usize,
    },
    /// The log needs recovery but was left alone (nothing was written):
    /// why.
    Refused(String),
}

/// Replays the journal of the filesystem on `img` to disk, as the kernel
/// does at mount and e2fsck does: the last copy of every replayed block,
/// then (after a flush) the journal superblock marked empty (`s_start` 0,
/// `s_sequence` one past the end of the log, checksum recomputed), then a
/// flush. `s_errno` is kept: the next mount clears it. A log the kernel
/// would not recover, or that replays blocks swapfs never journals, is
/// left alone ([`Replay::Refused`]). `Err` only for I/O errors.
pub fn replay(img: &mut Image) -> Result<Replay> {
    let mut scratch = Report::default();
    let Some(sb) = check_superblock(img, None, &mut scratch)? else {
        return Ok(Replay::NotNeeded);
    };
    let Ok(geo) = sb.geometry(img.blocks(sb.block_size()), crc32c::update) else {
        return Ok(Replay::NotNeeded);
    };
    let ex = examine(img, &sb, &geo)?;
    if !ex.needs_recovery {
        return Ok(Replay::NotNeeded);
    }
    if let Some(why) = ex.refused {
        return Ok(Replay::Refused(why));
    }
    let Some(rec) = ex.recovery else {
        return Ok(Replay::Refused("the log cannot be read".into()));
    };
    if let Some(b0) = rec.blocks.get(&0) {
        let mut scratch = Report::default();
        let Some(after) = check_superblock(img, Some(b0), &mut scratch)? else {
            let why = scratch
                .problems
                .first()
                .map(|p| p.to_string())
                .unwrap_or_default();
            return Ok(Replay::Refused(format!(
                "the replayed superblock is unusable: {why}"
            )));
        };
        if let Err(why) = after_replay(img, &sb, &after) {
            return Ok(Replay::Refused(why));
        }
    }
    for (&blk, data) in &rec.blocks {
        img.write_block(blk, data)?;
    }
    img.sync()?;
    let mut buf = vec![0u8; geo.block_size()];
    img.read_block(geo.journal_start, &mut buf)?;
    jbd2::mark_empty(&mut buf, rec.next_tid());
    img.write_block(geo.journal_start, &buf)?;
    img.sync()?;
    Ok(Replay::Done {
        transactions: rec.transactions(),
        blocks: rec.blocks.len(),
    })
}

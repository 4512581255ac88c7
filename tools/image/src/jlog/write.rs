// SPDX-License-Identifier: GPL-2.0

//! A jbd2 log writer, for the tests: transactions laid out as jbd2's
//! commit code lays them out (descriptor blocks with their tags, the data
//! blocks, escaped when they begin with the jbd2 magic number, revoke
//! blocks, a commit block), with the checksums the journal's features ask
//! for, wrapping from the end of the journal back to `s_first`.
//!
//! Blocks are collected in memory ([`LogWriter::written`]); tests can
//! damage them ([`LogWriter::block_mut`], [`LogWriter::seal`]) before
//! [`LogWriter::apply`] writes them and the journal superblock to an image.

use std::io;

use swapfs_common::crc32c;

use super::{
    blocktype, crc32_be, flag, get_be32, put_be32, COMMIT_CHKSUM, COMMIT_CHKSUM_SIZE,
    COMMIT_CHKSUM_TYPE, COMMIT_SEC, CRC32_CHKSUM, CRC32_CHKSUM_SIZE, HEADER_SIZE,
    REVOKE_HEADER_SIZE, TAIL_SIZE,
};
use crate::device::Image;
use crate::jbd2::{self, features, JournalSuperblock};

/// Builds a log, block by block.
pub struct LogWriter {
    bs: usize,
    first: u64,
    last: u64,
    csum_v1: bool,
    csum_v2: bool,
    csum_v3: bool,
    bit64: bool,
    uuid: [u8; 16],
    seed: u32,
    start: u64,
    start_tid: u32,
    pos: u64,
    tid: u32,
    commit_sec: u64,
    v1_sum: u32,
    blocks: Vec<(u64, Vec<u8>)>,
}

impl LogWriter {
    /// A log for the journal described by `sb` (block size, `s_first`,
    /// `s_maxlen`, features, UUID), beginning at journal block `start` with
    /// transaction `sb.sequence`. For tests: `sb` must be one jbd2 accepts
    /// ([`super::Journal::load`]), or the writer may panic.
    pub fn new(sb: &JournalSuperblock, start: u64) -> LogWriter {
        let v2 = sb.blocktype != jbd2::SUPERBLOCK_V1;
        let incompat = if v2 { sb.feature_incompat } else { 0 };
        let csum_v2 = incompat & features::INCOMPAT_CSUM_V2 != 0;
        let csum_v3 = incompat & features::INCOMPAT_CSUM_V3 != 0;
        LogWriter {
            bs: sb.blocksize as usize,
            first: u64::from(sb.first),
            last: u64::from(sb.maxlen),
            csum_v1: v2 && sb.feature_compat & features::COMPAT_CHECKSUM != 0,
            csum_v2,
            csum_v3,
            bit64: incompat & features::INCOMPAT_64BIT != 0,
            uuid: sb.uuid,
            seed: if csum_v2 || csum_v3 {
                crc32c::update(!0, &sb.uuid)
            } else {
                0
            },
            start,
            start_tid: sb.sequence,
            pos: start,
            tid: sb.sequence,
            commit_sec: 1_700_000_000,
            v1_sum: !0,
            blocks: Vec::new(),
        }
    }

    /// The journal block the next block goes to.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The transaction being written.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The commit time of the next commit blocks (each one a second later
    /// than the one before by default).
    pub fn set_commit_time(&mut self, sec: u64) {
        self.commit_sec = sec;
    }

    /// Every block written, as (journal block, contents), in log order (a
    /// block written twice after a wrap appears twice; the last one wins).
    pub fn written(&self) -> &[(u64, Vec<u8>)] {
        &self.blocks
    }

    /// The last contents written to journal block `j`.
    pub fn block_mut(&mut self, j: u64) -> Option<&mut Vec<u8>> {
        self.blocks
            .iter_mut()
            .rev()
            .find(|(b, _)| *b == j)
            .map(|(_, d)| d)
    }

    fn has_csum(&self) -> bool {
        self.csum_v2 || self.csum_v3
    }

    fn tag_bytes(&self) -> usize {
        let v2 = if self.csum_v2 { 2 } else { 0 };
        let high = if self.bit64 { 4 } else { 0 };
        if self.csum_v3 {
            16
        } else {
            8 + v2 + high
        }
    }

    fn header(&self, kind: u32) -> Vec<u8> {
        let mut b = vec![0u8; self.bs];
        put_be32(&mut b, 0, jbd2::MAGIC);
        put_be32(&mut b, 4, kind);
        put_be32(&mut b, 8, self.tid);
        b
    }

    fn push(&mut self, b: Vec<u8>) -> u64 {
        let at = self.pos;
        self.blocks.push((at, b));
        self.pos += 1;
        if self.pos >= self.last {
            self.pos -= self.last - self.first;
        }
        at
    }

    /// Recomputes the checksum of a descriptor, revoke or commit block
    /// (after a test changed it), if the journal has checksums.
    pub fn seal(&self, b: &mut [u8]) {
        if !self.has_csum() || b.len() < COMMIT_CHKSUM + 4 {
            return;
        }
        if get_be32(b, 4) == blocktype::COMMIT {
            put_be32(b, COMMIT_CHKSUM, 0);
            let sum = crc32c::update(self.seed, b);
            put_be32(b, COMMIT_CHKSUM, sum);
        } else {
            let at = b.len() - TAIL_SIZE;
            put_be32(b, at, 0);
            let sum = crc32c::update(self.seed, b);
            put_be32(b, at, sum);
        }
    }

    /// Appends descriptor blocks and the data blocks they describe: a copy
    /// of each `(filesystem block, contents)` (contents shorter than a
    /// block are padded with zeroes). Returns the journal blocks written,
    /// in order (each descriptor, then its data blocks).
    pub fn blocks(&mut self, copies: &[(u64, &[u8])]) -> Vec<u64> {
        let tb = self.tag_bytes();
        let tail = if self.has_csum() { TAIL_SIZE } else { 0 };
        let space = self.bs - tail;
        let mut used = Vec::new();
        let mut rest = copies;
        while !rest.is_empty() {
            // As many tags as fit, the first one followed by the UUID.
            let mut n = 0;
            let mut off = HEADER_SIZE;
            loop {
                let need = tb + if n == 0 { 16 } else { 0 };
                if n == rest.len() || off + need > space {
                    break;
                }
                off += need;
                n += 1;
            }
            let (now, later) = rest.split_at(n.max(1));
            rest = later;
            let mut desc = self.header(blocktype::DESCRIPTOR);
            let mut datas = Vec::new();
            let mut off = HEADER_SIZE;
            for (i, &(target, contents)) in now.iter().enumerate() {
                let mut data = vec![0u8; self.bs];
                let len = contents.len().min(self.bs);
                data[..len].copy_from_slice(&contents[..len]);
                let mut flags = 0u16;
                if get_be32(&data, 0) == jbd2::MAGIC {
                    data[..4].fill(0);
                    flags |= flag::ESCAPE;
                }
                if i > 0 {
                    flags |= flag::SAME_UUID;
                }
                if i + 1 == now.len() {
                    flags |= flag::LAST_TAG;
                }
                let tag = &mut desc[off..off + tb];
                put_be32(tag, 0, target as u32);
                tag[6..8].copy_from_slice(&flags.to_be_bytes());
                if self.bit64 {
                    put_be32(tag, 8, (target >> 32) as u32);
                }
                if self.has_csum() {
                    let crc = crc32c::update(self.seed, &self.tid.to_be_bytes());
                    let crc = crc32c::update(crc, &data);
                    if self.csum_v3 {
                        put_be32(tag, 12, crc);
                    } else {
                        tag[4..6].copy_from_slice(&(crc as u16).to_be_bytes());
                    }
                }
                off += tb;
                if i == 0 {
                    desc[off..off + 16].copy_from_slice(&self.uuid);
                    off += 16;
                }
                datas.push(data);
            }
            self.seal(&mut desc);
            if self.csum_v1 {
                self.v1_sum = crc32_be(self.v1_sum, &desc);
                for d in &datas {
                    self.v1_sum = crc32_be(self.v1_sum, d);
                }
            }
            used.push(self.push(desc));
            for d in datas {
                used.push(self.push(d));
            }
        }
        used
    }

    /// Appends revoke blocks revoking `targets` in this transaction.
    /// Returns the journal blocks written.
    pub fn revoke(&mut self, targets: &[u64]) -> Vec<u64> {
        let rl = if self.bit64 { 8 } else { 4 };
        let tail = if self.has_csum() { TAIL_SIZE } else { 0 };
        let space = self.bs - REVOKE_HEADER_SIZE - tail;
        let mut used = Vec::new();
        for chunk in targets.chunks(space / rl) {
            let mut b = self.header(blocktype::REVOKE);
            let mut off = REVOKE_HEADER_SIZE;
            for &t in chunk {
                if rl == 8 {
                    b[off..off + 8].copy_from_slice(&t.to_be_bytes());
                } else {
                    put_be32(&mut b, off, t as u32);
                }
                off += rl;
            }
            put_be32(&mut b, 12, off as u32);
            self.seal(&mut b);
            used.push(self.push(b));
        }
        used
    }

    /// Appends the commit block of the transaction and starts the next
    /// one. Returns the commit block's journal block.
    pub fn commit(&mut self) -> u64 {
        let mut b = self.header(blocktype::COMMIT);
        if self.csum_v1 {
            b[COMMIT_CHKSUM_TYPE] = CRC32_CHKSUM;
            b[COMMIT_CHKSUM_SIZE] = CRC32_CHKSUM_SIZE;
            put_be32(&mut b, COMMIT_CHKSUM, self.v1_sum);
            self.v1_sum = !0;
        }
        b[COMMIT_SEC..COMMIT_SEC + 8].copy_from_slice(&self.commit_sec.to_be_bytes());
        self.commit_sec += 1;
        self.seal(&mut b);
        self.tid = self.tid.wrapping_add(1);
        self.push(b)
    }

    /// `sb` with the log's start: `s_start` and `s_sequence` as jbd2
    /// leaves them while these transactions are not checkpointed.
    pub fn superblock(&self, sb: &JournalSuperblock) -> JournalSuperblock {
        JournalSuperblock {
            start: self.start as u32,
            sequence: self.start_tid,
            ..*sb
        }
    }

    /// Writes the log to the journal at filesystem block `journal_start` of
    /// `img`, then the journal superblock [`LogWriter::superblock`] of
    /// `sb`.
    pub fn apply(
        &self,
        img: &mut Image,
        journal_start: u64,
        sb: &JournalSuperblock,
    ) -> io::Result<()> {
        for (j, b) in &self.blocks {
            img.write_block(journal_start + j, b)?;
        }
        let mut b = vec![0u8; self.bs];
        self.superblock(sb).encode(&mut b);
        img.write_block(journal_start, &b)
    }
}

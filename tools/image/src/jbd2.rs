// SPDX-License-Identifier: GPL-2.0

//! The jbd2 journal superblock (`journal_superblock_t` in
//! `include/linux/jbd2.h`), big-endian, in the first block of the journal.

use swapfs_common::crc32c;

/// `h_magic` of every jbd2 metadata block.
pub const MAGIC: u32 = 0xc03b_3998;
/// `h_blocktype` of a version-1 superblock.
pub const SUPERBLOCK_V1: u32 = 3;
/// `h_blocktype` of a version-2 superblock.
pub const SUPERBLOCK_V2: u32 = 4;
/// Size of `journal_superblock_t`.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_checksum_type` for CRC-32C.
pub const CRC32C_CHKSUM: u8 = 4;
/// Smallest journal jbd2 accepts (`JBD2_MIN_JOURNAL_BLOCKS`).
pub const MIN_JOURNAL_BLOCKS: u32 = 1024;

/// Feature bits.
pub mod features {
    /// `JBD2_FEATURE_COMPAT_CHECKSUM` (v1 commit checksums).
    pub const COMPAT_CHECKSUM: u32 = 0x1;
    /// `JBD2_KNOWN_COMPAT_FEATURES`.
    pub const KNOWN_COMPAT: u32 = COMPAT_CHECKSUM;
    /// `JBD2_KNOWN_ROCOMPAT_FEATURES`.
    pub const KNOWN_RO_COMPAT: u32 = 0;
    /// `JBD2_FEATURE_INCOMPAT_REVOKE`: revoke blocks in the log.
    pub const INCOMPAT_REVOKE: u32 = 0x1;
    /// `JBD2_FEATURE_INCOMPAT_64BIT`: 64-bit block numbers in tags and
    /// revoke records.
    pub const INCOMPAT_64BIT: u32 = 0x2;
    /// `JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT`.
    pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
    /// `JBD2_FEATURE_INCOMPAT_CSUM_V2`.
    pub const INCOMPAT_CSUM_V2: u32 = 0x8;
    /// `JBD2_FEATURE_INCOMPAT_CSUM_V3`.
    pub const INCOMPAT_CSUM_V3: u32 = 0x10;
    /// `JBD2_FEATURE_INCOMPAT_FAST_COMMIT`.
    pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
    /// `JBD2_KNOWN_INCOMPAT_FEATURES`: revoke, 64bit, async commit, csum
    /// v2, csum v3, fast commit.
    pub const KNOWN_INCOMPAT: u32 = 0x3f;
}

/// Byte offsets of the fields.
mod off {
    pub const MAGIC: usize = 0x00;
    pub const BLOCKTYPE: usize = 0x04;
    pub const BLOCKSIZE: usize = 0x0c;
    pub const MAXLEN: usize = 0x10;
    pub const FIRST: usize = 0x14;
    pub const SEQUENCE: usize = 0x18;
    pub const START: usize = 0x1c;
    pub const ERRNO: usize = 0x20;
    pub const FEATURE_COMPAT: usize = 0x24;
    pub const FEATURE_INCOMPAT: usize = 0x28;
    pub const FEATURE_RO_COMPAT: usize = 0x2c;
    pub const UUID: usize = 0x30;
    pub const NR_USERS: usize = 0x40;
    pub const CHECKSUM_TYPE: usize = 0x50;
    pub const NUM_FC_BLKS: usize = 0x54;
    pub const CHECKSUM: usize = 0xfc;
}

fn get_be32(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(o..o + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn put_be32(b: &mut [u8], o: usize, v: u32) {
    if let Some(s) = b.get_mut(o..o + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// The fields of a journal superblock that swapfs cares about, as stored
/// (no validation: the checker does that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalSuperblock {
    /// `h_magic`.
    pub magic: u32,
    /// `h_blocktype`.
    pub blocktype: u32,
    /// `s_blocksize`.
    pub blocksize: u32,
    /// `s_maxlen`: blocks in the journal.
    pub maxlen: u32,
    /// `s_first`: first block of log information.
    pub first: u32,
    /// `s_sequence`: first commit ID expected in the log.
    pub sequence: u32,
    /// `s_start`: block of the start of the log; 0 when clean.
    pub start: u32,
    /// `s_errno`, set when the journal was aborted.
    pub errno: i32,
    /// `s_feature_compat`.
    pub feature_compat: u32,
    /// `s_feature_incompat`.
    pub feature_incompat: u32,
    /// `s_feature_ro_compat`.
    pub feature_ro_compat: u32,
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// `s_nr_users`.
    pub nr_users: u32,
    /// `s_checksum_type`.
    pub checksum_type: u8,
    /// `s_num_fc_blks`.
    pub num_fc_blks: u32,
    /// `s_checksum`.
    pub checksum: u32,
}

impl JournalSuperblock {
    /// A clean version-2 superblock as mkfs writes it.
    pub fn new(block_size: u32, blocks: u32, uuid: [u8; 16]) -> JournalSuperblock {
        JournalSuperblock {
            magic: MAGIC,
            blocktype: SUPERBLOCK_V2,
            blocksize: block_size,
            maxlen: blocks,
            first: 1,
            sequence: 1,
            start: 0,
            errno: 0,
            feature_compat: 0,
            feature_incompat: 0,
            feature_ro_compat: 0,
            uuid,
            nr_users: 1,
            checksum_type: 0,
            num_fc_blks: 0,
            checksum: 0,
        }
    }

    /// Decodes the fields from the start of a journal block (short buffers
    /// read as zeroes).
    pub fn decode(b: &[u8]) -> JournalSuperblock {
        let mut uuid = [0u8; 16];
        if let Some(s) = b.get(off::UUID..off::UUID + 16) {
            uuid.copy_from_slice(s);
        }
        JournalSuperblock {
            magic: get_be32(b, off::MAGIC),
            blocktype: get_be32(b, off::BLOCKTYPE),
            blocksize: get_be32(b, off::BLOCKSIZE),
            maxlen: get_be32(b, off::MAXLEN),
            first: get_be32(b, off::FIRST),
            sequence: get_be32(b, off::SEQUENCE),
            start: get_be32(b, off::START),
            errno: get_be32(b, off::ERRNO) as i32,
            feature_compat: get_be32(b, off::FEATURE_COMPAT),
            feature_incompat: get_be32(b, off::FEATURE_INCOMPAT),
            feature_ro_compat: get_be32(b, off::FEATURE_RO_COMPAT),
            uuid,
            nr_users: get_be32(b, off::NR_USERS),
            checksum_type: b.get(off::CHECKSUM_TYPE).copied().unwrap_or(0),
            num_fc_blks: get_be32(b, off::NUM_FC_BLKS),
            checksum: get_be32(b, off::CHECKSUM),
        }
    }

    /// Encodes the superblock into a zeroed block (the first
    /// [`SUPERBLOCK_SIZE`] bytes of `b`; the rest is zeroed too). The
    /// checksum is computed when a checksum feature asks for it.
    pub fn encode(&self, b: &mut [u8]) {
        b.fill(0);
        put_be32(b, off::MAGIC, self.magic);
        put_be32(b, off::BLOCKTYPE, self.blocktype);
        put_be32(b, off::BLOCKSIZE, self.blocksize);
        put_be32(b, off::MAXLEN, self.maxlen);
        put_be32(b, off::FIRST, self.first);
        put_be32(b, off::SEQUENCE, self.sequence);
        put_be32(b, off::START, self.start);
        put_be32(b, off::ERRNO, self.errno as u32);
        put_be32(b, off::FEATURE_COMPAT, self.feature_compat);
        put_be32(b, off::FEATURE_INCOMPAT, self.feature_incompat);
        put_be32(b, off::FEATURE_RO_COMPAT, self.feature_ro_compat);
        if let Some(s) = b.get_mut(off::UUID..off::UUID + 16) {
            s.copy_from_slice(&self.uuid);
        }
        put_be32(b, off::NR_USERS, self.nr_users);
        if let Some(x) = b.get_mut(off::CHECKSUM_TYPE) {
            *x = self.checksum_type;
        }
        put_be32(b, off::NUM_FC_BLKS, self.num_fc_blks);
        let sum = if self.has_csum_v2or3() {
            checksum(b)
        } else {
            self.checksum
        };
        put_be32(b, off::CHECKSUM, sum);
    }

    /// Whether checksum v2 or v3 is enabled (the superblock then carries a
    /// CRC-32C).
    pub fn has_csum_v2or3(&self) -> bool {
        self.feature_incompat & (features::INCOMPAT_CSUM_V2 | features::INCOMPAT_CSUM_V3) != 0
    }
}

/// Marks the journal superblock at the start of `b` empty, as e2fsck does
/// after it replayed the log: `s_start` 0 (nothing to recover) and
/// `s_sequence` `sequence` (the next transaction ID), the checksum
/// recomputed when a checksum feature asks for it, every other byte kept.
pub fn mark_empty(b: &mut [u8], sequence: u32) {
    put_be32(b, off::SEQUENCE, sequence);
    put_be32(b, off::START, 0);
    if JournalSuperblock::decode(b).has_csum_v2or3() {
        let sum = checksum(b);
        put_be32(b, off::CHECKSUM, sum);
    }
}

/// `jbd2_superblock_csum()`: CRC-32C (seed `!0`, no final inversion) of the
/// 1024-byte superblock with `s_checksum` taken as zero.
pub fn checksum(b: &[u8]) -> u32 {
    let sb = b.get(..SUPERBLOCK_SIZE).unwrap_or(b);
    let head = sb.get(..off::CHECKSUM).unwrap_or(sb);
    let tail = sb.get(off::CHECKSUM + 4..).unwrap_or(&[]);
    let crc = crc32c::update(!0, head);
    let crc = crc32c::update(crc, &[0; 4]);
    crc32c::update(crc, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_big_endian() {
        let sb = JournalSuperblock::new(4096, 2048, [9; 16]);
        let mut b = vec![0u8; 4096];
        sb.encode(&mut b);
        assert_eq!(&b[..4], &[0xc0, 0x3b, 0x39, 0x98]);
        assert_eq!(&b[4..8], &[0, 0, 0, 4]);
        assert_eq!(JournalSuperblock::decode(&b), sb);
    }

    #[test]
    fn mark_empty_keeps_the_rest() {
        let mut sb = JournalSuperblock::new(1024, 1024, [1; 16]);
        sb.feature_incompat = features::INCOMPAT_CSUM_V3;
        sb.checksum_type = CRC32C_CHKSUM;
        sb.start = 17;
        sb.sequence = 40;
        sb.errno = -5;
        let mut b = vec![0u8; 1024];
        sb.encode(&mut b);
        b[0x200] = 0x77;
        mark_empty(&mut b, 45);
        let back = JournalSuperblock::decode(&b);
        assert_eq!((back.start, back.sequence, back.errno), (0, 45, -5));
        assert_eq!(back.checksum, checksum(&b));
        assert_eq!(b[0x200], 0x77);
    }

    #[test]
    fn checksum_covers_the_superblock() {
        let mut sb = JournalSuperblock::new(1024, 1024, [1; 16]);
        sb.feature_incompat = features::INCOMPAT_CSUM_V3;
        sb.checksum_type = CRC32C_CHKSUM;
        let mut b = vec![0u8; 1024];
        sb.encode(&mut b);
        let back = JournalSuperblock::decode(&b);
        assert_eq!(back.checksum, checksum(&b));
        b[0x100] ^= 1;
        assert_ne!(back.checksum, checksum(&b));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Deterministic mutations of a base image: random bit flips in metadata
//! blocks, and field-aware mutations of every metadata structure (the
//! superblock, the jbd2 superblock, a crafted jbd2 transaction, bitmaps,
//! reference counts, inodes, extent-tree roots and nodes, directory
//! records, symlinks, the orphan list). Field-aware mutations recompute
//! the checksums they break most of the time, so that the damage gets past
//! the CRC and reaches the parser, and leave them stale sometimes.

use swapfs_common::crc32c;
use swapfs_common::format::{
    extent_flags, get_u16, get_u32, get_u64, magic, max_lblk, mode, put_u16, put_u32, put_u64,
    Geometry, BLOCK_HEADER_SIZE, DIR_HEADER_SIZE, ENTRY_SIZE, INODE_ROOT_OFFSET, INODE_SIZE,
    MAX_EXTENT_LEN, NODE_ENTRIES_OFFSET, NODE_HEADER_OFFSET, ROOT_HEADER_SIZE, ROOT_INO,
    SUPERBLOCK_SIZE,
};
use swapfs_image::jbd2;

use crate::corpus::{base, Base, MetaKind, BLOCK_SIZES_LOG2};
use crate::rng::Rng;

/// One generated test case.
pub struct Case {
    /// The seed.
    pub seed: u64,
    /// log2 of the block size.
    pub log2: u32,
    /// The mutated image.
    pub bytes: Vec<u8>,
    /// What was done to it, one line per mutation.
    pub what: Vec<String>,
}

/// The block size a seed uses (they rotate through the corpus).
pub fn log2_of(seed: u64) -> u32 {
    BLOCK_SIZES_LOG2[(seed % 3) as usize]
}

/// Generates the case of `seed`: the base image of its block size with one
/// to four mutations.
pub fn generate(seed: u64) -> Case {
    let log2 = log2_of(seed);
    let b = base(log2);
    let mut rng = Rng::new(seed ^ 0x5357_4653_4655_5a5a);
    let mut m = Mutator {
        b,
        geo: b.geo,
        img: b.bytes.clone(),
        what: Vec::new(),
    };
    let n = match rng.below(20) {
        0..=11 => 1,
        12..=16 => 2,
        17..=18 => 3,
        _ => 4,
    };
    for _ in 0..n {
        m.one(&mut rng);
    }
    Case {
        seed,
        log2,
        bytes: m.img,
        what: m.what,
    }
}

struct Mutator {
    b: &'static Base,
    geo: Geometry,
    img: Vec<u8>,
    what: Vec<String>,
}

/// Superblock fields: (offset, size, name).
const SB_FIELDS: &[(usize, usize, &str)] = &[
    (0, 4, "magic"),
    (4, 4, "version"),
    (8, 4, "checksum"),
    (12, 4, "block_size_log2"),
    (16, 8, "block_count"),
    (24, 8, "inode_count"),
    (32, 8, "free_blocks"),
    (40, 8, "free_inodes"),
    (48, 4, "feature_compat"),
    (52, 4, "feature_ro_compat"),
    (56, 4, "feature_incompat"),
    (60, 4, "state"),
    (64, 16, "uuid"),
    (80, 32, "label"),
    (112, 8, "journal_start"),
    (120, 8, "journal_blocks"),
    (128, 8, "ibitmap_start"),
    (136, 8, "ibitmap_blocks"),
    (144, 8, "bbitmap_start"),
    (152, 8, "bbitmap_blocks"),
    (160, 8, "refcount_start"),
    (168, 8, "refcount_blocks"),
    (176, 8, "itable_start"),
    (184, 8, "itable_blocks"),
    (192, 8, "data_start"),
    (200, 8, "mkfs_time"),
    (208, 8, "mount_time"),
    (216, 8, "write_time"),
    (224, 4, "mount_count"),
    (228, 4, "reserved"),
    (232, 8, "orphan_head"),
    (240, 8, "reserved+"),
];

/// Inode fields: (offset, size, name); the extent root is mutated apart.
const INODE_FIELDS: &[(usize, usize, &str)] = &[
    (0, 2, "mode"),
    (2, 2, "reserved"),
    (4, 4, "nlink"),
    (8, 4, "uid"),
    (12, 4, "gid"),
    (16, 8, "size"),
    (24, 8, "blocks"),
    (32, 8, "atime_sec"),
    (40, 8, "mtime_sec"),
    (48, 8, "ctime_sec"),
    (56, 8, "btime_sec"),
    (64, 4, "atime_nsec"),
    (68, 4, "mtime_nsec"),
    (72, 4, "ctime_nsec"),
    (76, 4, "btime_nsec"),
    (80, 4, "flags"),
    (84, 4, "generation"),
    (88, 8, "parent"),
    (96, 4, "checksum"),
    (100, 4, "rdev"),
    (104, 8, "orphan_next"),
    (112, 8, "reserved"),
];

/// jbd2 superblock fields (big-endian u32 unless noted): (offset, name).
const JSB_FIELDS: &[(usize, &str)] = &[
    (0x00, "h_magic"),
    (0x04, "h_blocktype"),
    (0x08, "h_sequence"),
    (0x0c, "s_blocksize"),
    (0x10, "s_maxlen"),
    (0x14, "s_first"),
    (0x18, "s_sequence"),
    (0x1c, "s_start"),
    (0x20, "s_errno"),
    (0x24, "s_feature_compat"),
    (0x28, "s_feature_incompat"),
    (0x2c, "s_feature_ro_compat"),
    (0x40, "s_nr_users"),
    (0x44, "s_dynsuper"),
    (0x48, "s_max_transaction"),
    (0x4c, "s_max_trans_data"),
    (0x54, "s_num_fc_blks"),
    (0x58, "s_head"),
];

fn put_be32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_be_bytes());
}

fn get_be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl Mutator {
    fn bs(&self) -> usize {
        self.geo.block_size()
    }

    fn block(&mut self, blk: u64) -> &mut [u8] {
        let bs = self.bs();
        let o = blk as usize * bs;
        &mut self.img[o..o + bs]
    }

    fn note(&mut self, s: String) {
        self.what.push(s);
    }

    /// Recomputes the superblock checksum (seeded with its own UUID).
    fn reseal_sb(&mut self) {
        let b = &mut self.img[..SUPERBLOCK_SIZE];
        let seed = crc32c::update(!0, &b[64..80]);
        put_u32(b, 8, 0);
        let sum = crc32c::update(seed, b);
        put_u32(b, 8, sum);
    }

    /// Re-seals a metadata block with the magic and block number it holds.
    fn reseal_block(&mut self, blk: u64) {
        let geo = self.geo;
        let b = self.block(blk);
        let (m, nr) = (get_u32(b, 0), get_u64(b, 8));
        geo.seal_block(b, m, nr);
    }

    fn inode_off(&self, ino: u64) -> Option<usize> {
        let (blk, off) = self.geo.inode_location(ino)?;
        Some(blk as usize * self.bs() + off)
    }

    fn reseal_inode(&mut self, ino: u64) {
        let Some(o) = self.inode_off(ino) else { return };
        let geo = self.geo;
        let raw = &mut self.img[o..o + INODE_SIZE];
        let sum = geo.inode_checksum(ino, raw);
        put_u32(raw, 96, sum);
    }

    fn reseal_jsb(&mut self) {
        let j = self.geo.journal_start;
        let b = self.block(j);
        let sb = jbd2::JournalSuperblock::decode(b);
        if sb.has_csum_v2or3() {
            let sum = jbd2::checksum(b);
            put_be32(b, 0xfc, sum);
        }
    }

    /// Usually true: recompute the checksum after a field-aware mutation.
    fn reseal(rng: &mut Rng) -> bool {
        rng.below(8) != 0
    }

    /// An interesting value for a field of `size` bytes now holding `cur`.
    fn value(&self, rng: &mut Rng, size: usize, cur: u64) -> u64 {
        let g = &self.geo;
        let max = if size >= 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        let v = match rng.below(24) {
            0 => 0,
            1 => 1,
            2 => cur ^ 1,
            3 => cur.wrapping_add(1),
            4 => cur.wrapping_sub(1),
            5 => cur.wrapping_mul(2),
            6 => max,
            7 => max / 2,
            8 => max / 2 + 1,
            9 => g.block_count,
            10 => g.block_count - 1,
            11 => g.block_count + 1,
            12 => g.data_start,
            13 => g.data_start - 1,
            14 => g.journal_start + rng.below(g.journal_blocks),
            15 => g.itable_start,
            16 => g.inode_count,
            17 => g.inode_count + 1,
            18 => rng.below(g.block_count),
            19 => 1u64 << rng.below(64),
            20 => cur ^ (1u64 << rng.below(64)),
            21 => self.b.meta[rng.below(self.b.meta.len() as u64) as usize].blk,
            22 => self.b.inodes[rng.below(self.b.inodes.len() as u64) as usize].ino,
            _ => rng.next(),
        };
        v & max
    }

    fn put(&mut self, off: usize, size: usize, v: u64) {
        let b = &mut self.img[off..off + size];
        match size {
            1 => b[0] = v as u8,
            2 => put_u16(b, 0, v as u16),
            4 => put_u32(b, 0, v as u32),
            8 => put_u64(b, 0, v),
            _ => {
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (v >> ((i % 8) * 8)) as u8;
                }
            }
        }
    }

    fn get(&self, off: usize, size: usize) -> u64 {
        let b = &self.img[off..off + size];
        match size {
            1 => u64::from(b[0]),
            2 => u64::from(get_u16(b, 0)),
            4 => u64::from(get_u32(b, 0)),
            _ => get_u64(b, 0),
        }
    }

    fn one(&mut self, rng: &mut Rng) {
        match rng.below(100) {
            0..=19 => self.bit_flips(rng),
            20..=27 => self.superblock(rng),
            28..=33 => self.journal_sb(rng),
            34..=39 => self.journal_txn(rng),
            40..=44 => self.bitmap(rng),
            45..=49 => self.refcount(rng),
            50..=61 => self.inode(rng),
            62..=71 => self.extent(rng),
            72..=81 => self.dirent(rng),
            82..=85 => self.symlink(rng),
            86..=89 => self.orphan(rng),
            90..=94 => self.garbage(rng),
            _ => self.cross_link(rng),
        }
    }

    /// Every block the kernel parses as metadata.
    fn pick_meta_block(&self, rng: &mut Rng) -> u64 {
        let g = &self.geo;
        match rng.below(10) {
            0 => 0,
            1 => g.journal_start,
            2..=4 => g.ibitmap_start + rng.below(g.data_start - g.ibitmap_start),
            5..=6 => {
                // An inode-table block holding inodes in use.
                let i = &self.b.inodes[rng.below(self.b.inodes.len() as u64) as usize];
                g.inode_location(i.ino).map_or(g.itable_start, |l| l.0)
            }
            _ => self.b.meta[rng.below(self.b.meta.len() as u64) as usize].blk,
        }
    }

    fn bit_flips(&mut self, rng: &mut Rng) {
        let blk = self.pick_meta_block(rng);
        let span = if blk == 0 { SUPERBLOCK_SIZE } else { self.bs() };
        let n = 1 + rng.below(8);
        let base = blk as usize * self.bs();
        for _ in 0..n {
            let bit = rng.below(span as u64 * 8) as usize;
            self.img[base + bit / 8] ^= 1 << (bit % 8);
        }
        let reseal = rng.below(2) == 0;
        if reseal {
            self.reseal_any(blk);
        }
        self.note(format!(
            "bitflip: {n} bits in block {blk}{}",
            if reseal { " (resealed)" } else { "" }
        ));
    }

    /// Re-seals whatever kind of block `blk` is.
    fn reseal_any(&mut self, blk: u64) {
        let g = self.geo;
        if blk == 0 {
            self.reseal_sb();
        } else if blk == g.journal_start {
            self.reseal_jsb();
        } else if blk >= g.itable_start && blk < g.data_start {
            let per = (self.bs() / INODE_SIZE) as u64;
            let first = (blk - g.itable_start) * per + 1;
            for ino in first..first + per {
                if let Some(o) = self.inode_off(ino) {
                    if self.get(o, 2) != 0 {
                        self.reseal_inode(ino);
                    }
                }
            }
        } else {
            self.reseal_block(blk);
        }
    }

    fn superblock(&mut self, rng: &mut Rng) {
        let &(off, size, name) = &SB_FIELDS[rng.below(SB_FIELDS.len() as u64) as usize];
        let v = if name == "block_size_log2" {
            [9, 10, 11, 12, 13, 0, 31, 32][rng.below(8) as usize]
        } else if name == "state" {
            [0, 1, 2, 3, 4, 0xffff_ffff][rng.below(6) as usize]
        } else if name.starts_with("feature") {
            [1, 0x8000_0000, 0xffff_ffff][rng.below(3) as usize]
        } else {
            let cur = self.get(off, size.min(8));
            self.value(rng, size.min(8), cur)
        };
        self.put(off, size, v);
        let reseal = name != "checksum" && Self::reseal(rng);
        if reseal {
            self.reseal_sb();
        }
        self.note(format!(
            "superblock: {name} = {v:#x}{}",
            if reseal { "" } else { " (stale checksum)" }
        ));
    }

    fn journal_sb(&mut self, rng: &mut Rng) {
        let j = self.geo.journal_start as usize * self.bs();
        let &(off, name) = &JSB_FIELDS[rng.below(JSB_FIELDS.len() as u64) as usize];
        let jblocks = self.geo.journal_blocks;
        let cur = u64::from(get_be32(&self.img[j..], off));
        let v: u32 = match name {
            "h_blocktype" => [1, 2, 3, 4, 5, 0][rng.below(6) as usize],
            "s_blocksize" => [512, 1024, 2048, 4096, 8192, 0, 0xffff_ffff][rng.below(7) as usize],
            "s_maxlen" | "s_first" | "s_start" | "s_head" => [
                0,
                1,
                2,
                (jblocks - 1) as u32,
                jblocks as u32,
                jblocks as u32 + 1,
                1023,
                u32::MAX,
                rng.below(jblocks) as u32,
            ][rng.below(9) as usize],
            "s_feature_incompat" => {
                [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x13, 0xffff_ffff][rng.below(9) as usize]
            }
            "s_feature_compat" | "s_feature_ro_compat" => {
                [1, 2, 0xffff_ffff][rng.below(3) as usize]
            }
            "s_errno" => [(-5i32) as u32, (-30i32) as u32, 1, 0x8000_0000][rng.below(4) as usize],
            "s_num_fc_blks" => [0, 1, 256, u32::MAX][rng.below(4) as usize],
            _ => self.value(rng, 4, cur) as u32,
        };
        put_be32(&mut self.img[j..], off, v);
        if name == "s_feature_incompat" && v & 0x18 != 0 {
            // Checksummed superblock: checksum type CRC-32C.
            self.img[j + 0x50] = jbd2::CRC32C_CHKSUM;
        }
        let reseal = Self::reseal(rng);
        if reseal {
            self.reseal_jsb();
        }
        self.note(format!("journal superblock: {name} = {v:#x}"));
    }

    /// A crafted, well-formed jbd2 transaction (no checksum features) that
    /// replays mutated copies of metadata blocks, or writes to blocks that
    /// are not metadata at all, at mount.
    fn journal_txn(&mut self, rng: &mut Rng) {
        let bs = self.bs();
        let g = self.geo;
        let j0 = g.journal_start;
        let seq: u32 = 1 + rng.below(1000) as u32;
        let n = 1 + rng.below(3) as usize;
        let mut targets = Vec::new();
        for _ in 0..n {
            let (target, content) = match rng.below(6) {
                0..=3 => {
                    // A mutated copy of a metadata block.
                    let blk = self.pick_meta_block(rng);
                    let saved = self.img.clone();
                    let before = self.what.len();
                    match rng.below(3) {
                        0 => {
                            let base = blk as usize * bs;
                            for _ in 0..1 + rng.below(4) {
                                let bit = rng.below(bs as u64 * 8) as usize;
                                self.img[base + bit / 8] ^= 1 << (bit % 8);
                            }
                            self.reseal_any(blk);
                        }
                        1 => self.inode(rng),
                        _ => self.extent(rng),
                    }
                    // Whatever block the mutation changed, journal that
                    // block's new content and restore the home copy.
                    let changed = (0..self.img.len() / bs)
                        .find(|&i| self.img[i * bs..(i + 1) * bs] != saved[i * bs..(i + 1) * bs])
                        .unwrap_or(blk as usize);
                    let content = self.img[changed * bs..(changed + 1) * bs].to_vec();
                    self.img = saved;
                    let what: Vec<String> = self.what.drain(before..).collect();
                    self.note(format!("  (journaled: {})", what.join("; ")));
                    (changed as u64, content)
                }
                4 => {
                    // Replay into the journal itself, or past the end.
                    let t = [
                        j0,
                        j0 + 1,
                        g.block_count,
                        g.block_count + 7,
                        u64::from(u32::MAX),
                    ][rng.below(5) as usize];
                    (t, vec![0x5a; bs])
                }
                _ => (0, {
                    // The superblock, changed behind the first check of
                    // mount: a layout field, the block size, the journal.
                    let mut b = self.img[..bs].to_vec();
                    match rng.below(3) {
                        0 => {
                            let v = rng.next();
                            let a = 16 + 8 * rng.below(24) as usize;
                            put_u64(&mut b, a, v);
                            self.note(format!("  (journaled superblock: u64 at {a} = {v:#x})"));
                        }
                        1 => {
                            let v = [10, 11, 12][rng.below(3) as usize];
                            put_u32(&mut b, 12, v);
                            self.note(format!("  (journaled superblock: block_size_log2 = {v})"));
                        }
                        _ => {
                            let (js, jb) = (g.journal_start, g.journal_blocks);
                            let (a, v) = [
                                (112, js + 1),
                                (120, jb + 1),
                                (120, jb - 1),
                                (232, 1 + rng.below(g.inode_count)),
                            ][rng.below(4) as usize];
                            put_u64(&mut b, a, v);
                            self.note(format!("  (journaled superblock: u64 at {a} = {v})"));
                        }
                    }
                    let seed = crc32c::update(!0, &b[64..80]);
                    put_u32(&mut b, 8, 0);
                    let sum = crc32c::update(seed, &b[..SUPERBLOCK_SIZE]);
                    put_u32(&mut b, 8, sum);
                    b
                }),
            };
            targets.push((target, content));
        }
        // Descriptor at journal block 1, data blocks, commit block.
        let mut desc = vec![0u8; bs];
        put_be32(&mut desc, 0, jbd2::MAGIC);
        put_be32(&mut desc, 4, 1);
        put_be32(&mut desc, 8, seq);
        let mut o = 12;
        for (i, (t, _)) in targets.iter().enumerate() {
            put_be32(&mut desc, o, *t as u32);
            let mut flags = 0u16;
            if i > 0 {
                flags |= 2; // SAME_UUID
            }
            if i + 1 == targets.len() {
                flags |= 8; // LAST_TAG
            }
            desc[o + 6..o + 8].copy_from_slice(&flags.to_be_bytes());
            o += 8;
            if i == 0 {
                desc[o..o + 16].copy_from_slice(&self.img[64..80]);
                o += 16;
            }
        }
        let mut jb = 1u64;
        let desc_at = (j0 + jb) as usize * bs;
        self.img[desc_at..desc_at + bs].copy_from_slice(&desc);
        jb += 1;
        for (_, content) in &targets {
            let at = (j0 + jb) as usize * bs;
            self.img[at..at + bs].copy_from_slice(content);
            jb += 1;
        }
        let mut commit = vec![0u8; bs];
        put_be32(&mut commit, 0, jbd2::MAGIC);
        put_be32(&mut commit, 4, 2);
        put_be32(&mut commit, 8, seq);
        let at = (j0 + jb) as usize * bs;
        self.img[at..at + bs].copy_from_slice(&commit);
        let jsb = j0 as usize * bs;
        put_be32(&mut self.img[jsb..], 0x18, seq);
        put_be32(&mut self.img[jsb..], 0x1c, 1);
        // Now and then, damage the transaction itself.
        let damage = rng.below(4) == 0;
        if damage {
            let blk = j0 + rng.below(jb + 1);
            let base = blk as usize * bs;
            let bit = rng.below(64 * 8) as usize;
            self.img[base + bit / 8] ^= 1 << (bit % 8);
        }
        let list: Vec<String> = targets.iter().map(|t| t.0.to_string()).collect();
        self.note(format!(
            "journal transaction {seq} replaying blocks [{}]{}",
            list.join(", "),
            if damage { " (damaged)" } else { "" }
        ));
    }

    fn bitmap(&mut self, rng: &mut Rng) {
        let g = self.geo;
        let inode_bm = rng.below(2) == 0;
        let (start, end) = if inode_bm {
            (g.ibitmap_start, g.bbitmap_start)
        } else {
            (g.bbitmap_start, g.refcount_start)
        };
        let blk = start + rng.below(end - start);
        let bs = self.bs();
        let how = rng.below(5);
        let b = self.block(blk);
        let desc = match how {
            0 => {
                b[BLOCK_HEADER_SIZE..].fill(0);
                "all clear".to_string()
            }
            1 => {
                b[BLOCK_HEADER_SIZE..].fill(0xff);
                "all set".to_string()
            }
            2 => {
                // The padding past the last entry.
                let last = bs - 1 - rng.below(8) as usize;
                b[last] = 0;
                format!("byte {last} cleared")
            }
            _ => {
                let n = 1 + rng.below(16);
                for _ in 0..n {
                    // Mostly the first bits, where things are in use.
                    let bit = if rng.below(2) == 0 {
                        rng.below(256)
                    } else {
                        rng.below(((bs - BLOCK_HEADER_SIZE) * 8) as u64)
                    } as usize;
                    b[BLOCK_HEADER_SIZE + bit / 8] ^= 1 << (bit % 8);
                }
                format!("{n} bits flipped")
            }
        };
        let reseal = Self::reseal(rng);
        if reseal {
            self.reseal_block(blk);
        }
        self.note(format!(
            "{} bitmap block {blk}: {desc}",
            if inode_bm { "inode" } else { "block" }
        ));
    }

    fn refcount(&mut self, rng: &mut Rng) {
        let g = self.geo;
        let per = ((self.bs() - BLOCK_HEADER_SIZE) / 2) as u64;
        // A used block most of the time: a file's, or metadata.
        let target = match rng.below(4) {
            0 => g.data_start + rng.below(g.data_blocks()),
            1 => self.b.meta[rng.below(self.b.meta.len() as u64) as usize].blk,
            _ => {
                let files: Vec<_> = self
                    .b
                    .inodes
                    .iter()
                    .filter(|i| !i.extents.is_empty())
                    .collect();
                let f = files[rng.below(files.len() as u64) as usize];
                let e = f.extents[rng.below(f.extents.len() as u64) as usize];
                e.pblk + rng.below(u64::from(e.len))
            }
        };
        let v: u16 = [0, 1, 2, 3, 0x7fff, 0xfffe, 0xffff][rng.below(7) as usize];
        let tail = rng.below(8) == 0;
        let (blk, off) = if tail {
            // Padding past the last block.
            let last = g.refcount_start + (g.data_blocks() - 1) / per;
            (last, self.bs() - 2)
        } else {
            match g.refcount_location(target) {
                Some(l) => l,
                None => return,
            }
        };
        put_u16(self.block(blk), off, v);
        if Self::reseal(rng) {
            self.reseal_block(blk);
        }
        self.note(format!(
            "refcount of {} = {v}",
            if tail {
                "padding".to_string()
            } else {
                target.to_string()
            }
        ));
    }

    fn pick_inode(&self, rng: &mut Rng) -> u64 {
        match rng.below(12) {
            0 => ROOT_INO,
            1 => 1 + rng.below(self.geo.inode_count),
            2 => self.b.swapfile,
            _ => self.b.inodes[rng.below(self.b.inodes.len() as u64) as usize].ino,
        }
    }

    fn inode(&mut self, rng: &mut Rng) {
        let ino = self.pick_inode(rng);
        let Some(o) = self.inode_off(ino) else { return };
        let &(off, size, name) = &INODE_FIELDS[rng.below(INODE_FIELDS.len() as u64) as usize];
        let v = match name {
            "mode" => {
                let t = [
                    mode::S_IFDIR,
                    mode::S_IFREG,
                    mode::S_IFLNK,
                    mode::S_IFCHR,
                    mode::S_IFBLK,
                    mode::S_IFIFO,
                    mode::S_IFSOCK,
                    0,
                    0o170000,
                    0o030000,
                ][rng.below(10) as usize];
                u64::from(t | (rng.below(0o10000) as u16))
            }
            "nlink" => [0, 1, 2, 0xffff, 0xffff_ffff][rng.below(5) as usize],
            "size" => {
                let cur = self.get(o + 16, 8);
                match rng.below(8) {
                    0 => 0,
                    1 => i64::MAX as u64,
                    2 => u64::MAX,
                    3 => cur + 1,
                    4 => cur.saturating_sub(1),
                    5 => cur * 1000,
                    6 => 1u64 << 40,
                    _ => self.bs() as u64,
                }
            }
            n if n.ends_with("nsec") => [1_000_000_000, u32::MAX as u64][rng.below(2) as usize],
            _ => {
                let cur = self.get(o + off, size);
                self.value(rng, size, cur)
            }
        };
        self.put(o + off, size, v);
        let reseal = name != "checksum" && Self::reseal(rng);
        if reseal {
            self.reseal_inode(ino);
        }
        self.note(format!(
            "inode {ino}: {name} = {v:#x}{}",
            if reseal { "" } else { " (stale checksum)" }
        ));
    }

    /// An extent-tree node: in an inode's root, or a node block.
    fn extent(&mut self, rng: &mut Rng) {
        let nodes: Vec<_> = self
            .b
            .meta
            .iter()
            .filter(|m| m.kind == MetaKind::Node)
            .copied()
            .collect();
        let in_block = !nodes.is_empty() && rng.below(2) == 0;
        let (hdr, entries_at, cap, owner, where_) = if in_block {
            let m = nodes[rng.below(nodes.len() as u64) as usize];
            let base = m.blk as usize * self.bs();
            (
                base + NODE_HEADER_OFFSET,
                base + NODE_ENTRIES_OFFSET,
                self.geo.node_capacity(),
                m.owner,
                format!("node {} of inode {}", m.blk, m.owner),
            )
        } else {
            let with: Vec<_> = self
                .b
                .inodes
                .iter()
                .filter(|i| !i.extents.is_empty())
                .collect();
            let i = with[rng.below(with.len() as u64) as usize].ino;
            let Some(o) = self.inode_off(i) else { return };
            (
                o + INODE_ROOT_OFFSET,
                o + INODE_ROOT_OFFSET + ROOT_HEADER_SIZE,
                5,
                i,
                format!("root of inode {i}"),
            )
        };
        let entries = self.get(hdr, 2) as usize;
        let depth = self.get(hdr + 4, 2);
        let k = if entries == 0 {
            0
        } else {
            rng.below(entries as u64) as usize
        };
        let e = entries_at + k * ENTRY_SIZE;
        let g = self.geo;
        let desc = match rng.below(16) {
            0 => {
                let v = [0, entries as u64 + 1, cap as u64, cap as u64 + 1, 0xffff]
                    [rng.below(5) as usize];
                self.put(hdr, 2, v);
                format!("entries = {v}")
            }
            1 => {
                let v = [0, 1, 4, 5, 6, cap as u64 + 1, 0xffff][rng.below(7) as usize];
                self.put(hdr + 2, 2, v);
                format!("max = {v}")
            }
            2 => {
                let v = [
                    0,
                    1,
                    depth + 1,
                    depth.wrapping_sub(1) & 0xffff,
                    5,
                    6,
                    0xffff,
                ][rng.below(7) as usize];
                self.put(hdr + 4, 2, v);
                format!("depth = {v}")
            }
            3 if in_block => {
                let v = self.value(rng, 8, owner);
                self.put(hdr + 8, 8, v);
                format!("owner = {v}")
            }
            4 if entries >= 2 => {
                // Swap two entries: out of order.
                let k2 = (k + 1) % entries;
                let e2 = entries_at + k2 * ENTRY_SIZE;
                let a = self.img[e..e + ENTRY_SIZE].to_vec();
                let b = self.img[e2..e2 + ENTRY_SIZE].to_vec();
                self.img[e..e + ENTRY_SIZE].copy_from_slice(&b);
                self.img[e2..e2 + ENTRY_SIZE].copy_from_slice(&a);
                format!("entries {k} and {k2} swapped")
            }
            5 if entries >= 2 => {
                // Duplicate an entry: overlapping extents or children.
                let k2 = (k + 1) % entries;
                let e2 = entries_at + k2 * ENTRY_SIZE;
                let a = self.img[e..e + ENTRY_SIZE].to_vec();
                self.img[e2..e2 + ENTRY_SIZE].copy_from_slice(&a);
                format!("entry {k} copied over {k2}")
            }
            6 | 7 => {
                let cur = self.get(e, 8);
                let v = match rng.below(6) {
                    0 => max_lblk(&g),
                    1 => max_lblk(&g) - 1,
                    2 => u64::MAX,
                    3 => cur.wrapping_sub(1),
                    4 => 0,
                    _ => self.value(rng, 8, cur),
                };
                self.put(e, 8, v);
                format!("entry {k} lblk = {v:#x}")
            }
            8..=10 => {
                // pblk (leaf) or child (index).
                let cur = self.get(e + 8, 8);
                let v = match rng.below(8) {
                    0 => 0,
                    1 => g.itable_start,
                    2 => g.block_count - 1,
                    3 => g.block_count,
                    4 => self.b.meta[rng.below(self.b.meta.len() as u64) as usize].blk,
                    5 if in_block => (hdr - NODE_HEADER_OFFSET) as u64 / self.bs() as u64,
                    6 => g.data_start - 1,
                    _ => self.value(rng, 8, cur),
                };
                self.put(e + 8, 8, v);
                format!(
                    "entry {k} {} = {v}",
                    if depth == 0 { "pblk" } else { "child" }
                )
            }
            11 | 12 => {
                let cur = self.get(e + 16, 4);
                let v = [
                    0,
                    1,
                    cur + 1,
                    u64::from(MAX_EXTENT_LEN),
                    u64::from(MAX_EXTENT_LEN) + 1,
                    u64::from(u32::MAX),
                    g.block_count,
                    self.value(rng, 4, cur),
                ][rng.below(8) as usize];
                self.put(e + 16, 4, v);
                format!("entry {k} len = {v:#x}")
            }
            13 => {
                let v = [
                    u64::from(extent_flags::UNWRITTEN),
                    0,
                    2,
                    u64::from(u32::MAX),
                ][rng.below(4) as usize];
                self.put(e + 20, 4, v);
                format!("entry {k} flags = {v:#x}")
            }
            _ => {
                // Garbage in the whole entry.
                for x in &mut self.img[e..e + ENTRY_SIZE] {
                    *x = rng.next() as u8;
                }
                format!("entry {k} random")
            }
        };
        if Self::reseal(rng) {
            if in_block {
                self.reseal_block((hdr - NODE_HEADER_OFFSET) as u64 / self.bs() as u64);
            } else {
                self.reseal_inode(owner);
            }
        }
        self.note(format!("extent tree, {where_}: {desc}"));
    }

    fn dirent(&mut self, rng: &mut Rng) {
        let dirs: Vec<_> = self
            .b
            .meta
            .iter()
            .filter(|m| m.kind == MetaKind::Dir)
            .copied()
            .collect();
        let m = dirs[rng.below(dirs.len() as u64) as usize];
        let bs = self.bs();
        let base = m.blk as usize * bs;
        // The records, walked raw.
        let mut recs = Vec::new();
        let mut o = DIR_HEADER_SIZE;
        while o + 12 <= bs {
            let rl = get_u16(&self.img[base + o..], 8) as usize;
            recs.push(o);
            if rl < 12 {
                break;
            }
            o += rl;
        }
        let used: Vec<usize> = recs
            .iter()
            .copied()
            .filter(|&r| get_u64(&self.img[base + r..], 0) != 0)
            .collect();
        let r = if !used.is_empty() && rng.below(4) != 0 {
            used[rng.below(used.len() as u64) as usize]
        } else {
            recs[rng.below(recs.len() as u64) as usize]
        };
        let at = base + r;
        let g = self.geo;
        let desc = match rng.below(12) {
            0..=2 => {
                let v = match rng.below(9) {
                    0 => 0,
                    1 => m.owner,
                    2 => ROOT_INO,
                    3 => g.inode_count,
                    4 => g.inode_count + 1,
                    5 => u64::MAX,
                    6 => 1 + rng.below(g.inode_count),
                    7 => self.b.swapfile,
                    _ => {
                        let d: Vec<_> = self.b.dirs().collect();
                        d[rng.below(d.len() as u64) as usize].ino
                    }
                };
                put_u64(&mut self.img[at..], 0, v);
                format!("ino = {v}")
            }
            3..=5 => {
                let cur = u64::from(get_u16(&self.img[at..], 8));
                let v = [
                    0,
                    1,
                    4,
                    12,
                    cur + 1,
                    cur + 4,
                    cur.wrapping_sub(4),
                    bs as u64,
                    0xffff,
                ][rng.below(9) as usize];
                put_u16(&mut self.img[at..], 8, v as u16);
                format!("rec_len = {v}")
            }
            6 | 7 => {
                let rl = get_u16(&self.img[at..], 8);
                let v = [
                    0u8,
                    1,
                    255,
                    (rl.min(255)) as u8,
                    self.img[at + 10].wrapping_add(1),
                ][rng.below(5) as usize];
                self.img[at + 10] = v;
                format!("name_len = {v}")
            }
            8 => {
                let v = rng.below(16) as u8;
                self.img[at + 11] = v;
                format!("file_type = {v}")
            }
            9 | 10 => {
                let nl = usize::from(self.img[at + 10]).max(1);
                let what: &[u8] = [b"/".as_slice(), b"\0", b".", b".."][rng.below(4) as usize];
                let n = what.len().min(bs - r - 12);
                self.img[at + 12..at + 12 + n].copy_from_slice(&what[..n]);
                if rng.below(2) == 0 {
                    self.img[at + 10] = n as u8;
                } else if nl > n {
                    self.img[at + 12 + nl - 1] = b'/';
                }
                format!("name {:?}", what.escape_ascii().to_string())
            }
            _ => {
                let v = self.value(rng, 8, m.owner);
                put_u64(&mut self.img[base + BLOCK_HEADER_SIZE..], 0, v);
                format!("header owner = {v}")
            }
        };
        if Self::reseal(rng) {
            self.reseal_block(m.blk);
        }
        self.note(format!(
            "directory block {} of inode {} record at {r}: {desc}",
            m.blk, m.owner
        ));
    }

    fn symlink(&mut self, rng: &mut Rng) {
        let links: Vec<_> = self
            .b
            .meta
            .iter()
            .filter(|m| m.kind == MetaKind::Symlink)
            .copied()
            .collect();
        let m = links[rng.below(links.len() as u64) as usize];
        let bs = self.bs();
        let desc = match rng.below(3) {
            0 => {
                // The inode's size.
                let v = [
                    0,
                    1,
                    (bs - 16) as u64,
                    bs as u64 - 15,
                    bs as u64,
                    4096,
                    u64::MAX,
                ][rng.below(7) as usize];
                let Some(o) = self.inode_off(m.owner) else {
                    return;
                };
                put_u64(&mut self.img[o..], 16, v);
                if Self::reseal(rng) {
                    self.reseal_inode(m.owner);
                }
                format!("size = {v}")
            }
            1 => {
                let base = m.blk as usize * bs;
                let p = BLOCK_HEADER_SIZE + rng.below(8) as usize;
                self.img[base + p] = 0;
                if Self::reseal(rng) {
                    self.reseal_block(m.blk);
                }
                format!("NUL at {p}")
            }
            _ => {
                let base = m.blk as usize * bs;
                self.img[base + BLOCK_HEADER_SIZE..base + bs].fill(b'a');
                if Self::reseal(rng) {
                    self.reseal_block(m.blk);
                }
                "target fills the block".to_string()
            }
        };
        self.note(format!("symlink {}: {desc}", m.owner));
    }

    fn orphan(&mut self, rng: &mut Rng) {
        let g = self.geo;
        let desc = if rng.below(2) == 0 {
            let v = match rng.below(6) {
                0 => ROOT_INO,
                1 => self.b.swapfile,
                2 => g.inode_count + 1,
                3 => u64::MAX,
                4 => 1 + rng.below(g.inode_count),
                _ => self.b.inodes[rng.below(self.b.inodes.len() as u64) as usize].ino,
            };
            put_u64(&mut self.img, 232, v);
            self.reseal_sb();
            format!("superblock orphan_head = {v}")
        } else {
            let head = get_u64(&self.img, 232);
            let ino = if head != 0 && rng.below(2) == 0 {
                head
            } else {
                self.pick_inode(rng)
            };
            let v = match rng.below(4) {
                0 => ino,
                1 => head,
                2 => ROOT_INO,
                _ => 1 + rng.below(g.inode_count + 2),
            };
            let Some(o) = self.inode_off(ino) else { return };
            put_u64(&mut self.img[o..], 104, v);
            self.reseal_inode(ino);
            format!("inode {ino} orphan_next = {v}")
        };
        self.note(format!("orphan list: {desc}"));
    }

    fn garbage(&mut self, rng: &mut Rng) {
        let blk = self.pick_meta_block(rng);
        let bs = self.bs();
        let span = if blk == 0 { SUPERBLOCK_SIZE } else { bs };
        let len = 1 + rng.below(64) as usize;
        let start = rng.below((span - len.min(span)) as u64 + 1) as usize;
        let base = blk as usize * bs;
        let fill = rng.below(3);
        for x in &mut self.img[base + start..base + (start + len).min(span)] {
            *x = match fill {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
        }
        self.reseal_any(blk);
        self.note(format!(
            "garbage: bytes {start}..+{len} of block {blk} (resealed)"
        ));
    }

    /// Cross-links: one inode's bytes copied over another's (shared
    /// extents without the reference counts), or a block's content copied
    /// to another block.
    fn cross_link(&mut self, rng: &mut Rng) {
        if rng.below(2) == 0 {
            let a = self.pick_inode(rng);
            let b = self.pick_inode(rng);
            let (Some(oa), Some(ob)) = (self.inode_off(a), self.inode_off(b)) else {
                return;
            };
            let raw = self.img[oa..oa + INODE_SIZE].to_vec();
            self.img[ob..ob + INODE_SIZE].copy_from_slice(&raw);
            self.reseal_inode(b);
            self.note(format!("cross-link: inode {a} copied over inode {b}"));
        } else {
            let a = self.pick_meta_block(rng);
            let b = self.pick_meta_block(rng);
            let bs = self.bs();
            let raw = self.img[a as usize * bs..(a as usize + 1) * bs].to_vec();
            self.img[b as usize * bs..(b as usize + 1) * bs].copy_from_slice(&raw);
            let resealed = b != 0 && b != self.geo.journal_start && rng.below(2) == 0;
            if resealed {
                // Claim to be at home (magic kept).
                let geo = self.geo;
                let blk = self.block(b);
                let m = get_u32(blk, 0);
                if m == magic::DIR || m == magic::EXTENT || m == magic::SYMLINK {
                    geo.seal_block(blk, m, b);
                }
            }
            self.note(format!(
                "cross-link: block {a} copied over block {b}{}",
                if resealed { " (resealed)" } else { "" }
            ));
        }
    }
}

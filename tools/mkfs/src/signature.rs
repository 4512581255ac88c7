// SPDX-License-Identifier: GPL-2.0

//! What a device already holds, so that `mkfs.swapfs` refuses to overwrite
//! it without `-f`.
//!
//! The checks follow libblkid (util-linux), which mkfs.xfs and mkfs.btrfs
//! consult for the same refusal: the signatures of the filesystems that the
//! usual `mkfs.*` programs make, MD RAID members, LUKS and LVM2 volumes,
//! swap space and partition tables, each found by its magic number at its
//! fixed place, with plain byte comparisons and no library.
//!
//! A magic of four bytes or more is taken on its own, even where libblkid
//! goes on to validate the rest: a damaged filesystem is still worth a `-f`,
//! and random data matches such a magic once in 2^32 or less. A weak magic
//! (the two bytes of minix, FAT, HFS or an MBR) counts only with the sanity
//! checks that libblkid makes of it, so that random data is seldom taken for
//! one.
//!
//! The first [`HEAD_BYTES`] of the device are read (less on a smaller
//! device): enough for the ISO 9660 and UDF volume descriptors at 32 KiB and
//! the btrfs, ReiserFS and GFS2 superblocks at 64 KiB. MD RAID superblocks
//! 0.90 and 1.0 live near the end of the device, and take two small reads
//! there.

use swapfs_common::format::MAGIC;
use swapfs_image::Image;

/// How much of the start of the device is read.
pub const HEAD_BYTES: usize = 65536 + 4096;

/// The MD RAID superblock magic.
const MD_MAGIC: u32 = 0xa92b_4efc;

/// Bytes of the device from some offset; reads past the end give zeros
/// (no magic here is zero, so a short device never matches beyond its end).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn at(&self, off: usize, sig: &[u8]) -> bool {
        self.0.get(off..off + sig.len()) == Some(sig)
    }

    fn array<const N: usize>(&self, off: usize) -> [u8; N] {
        self.0
            .get(off..off + N)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; N])
    }

    fn u8(&self, off: usize) -> u8 {
        self.array::<1>(off)[0]
    }

    fn le16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.array(off))
    }

    fn be16(&self, off: usize) -> u16 {
        u16::from_be_bytes(self.array(off))
    }

    fn le32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.array(off))
    }

    fn be32(&self, off: usize) -> u32 {
        u32::from_be_bytes(self.array(off))
    }

    fn le64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.array(off))
    }
}

/// What an existing signature on the device says it is, if anything, as a
/// phrase for "appears to contain ...". Filesystems, RAID, LUKS, LVM2 and
/// swap come before partition tables (as in mkfs.xfs), so that a FAT boot
/// sector, which also ends in 0x55AA, is called FAT and not an MBR.
pub fn detect_signature(img: &Image) -> Option<&'static str> {
    let mut head = vec![0u8; HEAD_BYTES];
    let n = usize::try_from(img.size())
        .unwrap_or(usize::MAX)
        .min(head.len());
    img.read_at(0, &mut head[..n]).ok()?;
    let h = Bytes(&head);
    if h.le32(0) == MAGIC {
        return Some("a swapfs filesystem");
    }
    md_raid(&h, img)
        .or_else(|| PROBES.iter().find_map(|probe| probe(&h)))
        .or_else(|| partition_table(&h))
}

/// The probes of the start of the device, in order.
const PROBES: &[fn(&Bytes) -> Option<&'static str>] = &[
    luks, lvm2, ext, xfs, btrfs, bfs, cramfs, minix, ntfs, exfat, fat, f2fs, squashfs, optical,
    jfs, reiserfs, nilfs2, hfs, gfs2, ocfs2, ufs, bcache, erofs, romfs, ubifs, swap,
];

/// Whether `sb` is an MD superblock of version 1 placed at byte `off`.
fn md1(sb: &Bytes, off: u64) -> bool {
    sb.le32(0) == MD_MAGIC && sb.le32(4) == 1 && sb.le64(144) == off >> 9
}

/// Linux MD RAID member: superblock 0.90 (64 KiB-aligned, 64 KiB from the
/// end, either endianness) and 1.0 (8 KiB from the end), 1.1 (at 0) and
/// 1.2 (at 4 KiB).
fn md_raid(h: &Bytes, img: &Image) -> Option<&'static str> {
    let size = img.size();
    let tail = |off: u64, buf: &mut [u8]| img.read_at(off, buf).is_ok();
    if size > 0x10000 {
        let off = (size & !0xffff) - 0x10000;
        let mut sb = [0u8; 36];
        if tail(off, &mut sb) {
            let sb = Bytes(&sb);
            let kib = if sb.le32(0) == MD_MAGIC {
                Some(sb.le32(32))
            } else if sb.be32(0) == MD_MAGIC {
                Some(sb.be32(32))
            } else {
                None
            };
            if let Some(kib) = kib {
                let used = u64::from(kib) << 10;
                if size >= used + 0x10000 && off >= used {
                    return Some("a Linux MD RAID superblock (version 0.90)");
                }
            }
        }
        let off = (size & !0xfff) - 0x2000;
        let mut sb = [0u8; 152];
        if tail(off, &mut sb) && md1(&Bytes(&sb), off) {
            return Some("a Linux MD RAID superblock (version 1.0)");
        }
    }
    if md1(h, 0) {
        return Some("a Linux MD RAID superblock (version 1.1)");
    }
    let at4k = Bytes(h.0.get(4096..).unwrap_or(&[]));
    md1(&at4k, 4096).then_some("a Linux MD RAID superblock (version 1.2)")
}

/// LUKS header, or a LUKS2 secondary header where the primary was wiped.
fn luks(h: &Bytes) -> Option<&'static str> {
    (h.at(0, b"LUKS\xba\xbe")
        || [0x4000, 0x8000, 0x10000]
            .iter()
            .any(|&off| h.at(off, b"SKUL\xba\xbe")))
    .then_some("a LUKS encrypted volume")
}

/// LVM2 physical volume label, in any of the first four sectors.
fn lvm2(h: &Bytes) -> Option<&'static str> {
    (0..4)
        .any(|s| h.at(s * 512, b"LABELONE"))
        .then_some("an LVM2 physical volume")
}

fn ext(h: &Bytes) -> Option<&'static str> {
    h.at(1080, &[0x53, 0xef])
        .then_some("an ext2/ext3/ext4 filesystem")
}

fn xfs(h: &Bytes) -> Option<&'static str> {
    h.at(0, b"XFSB").then_some("an XFS filesystem")
}

fn btrfs(h: &Bytes) -> Option<&'static str> {
    h.at(65536 + 64, b"_BHRfS_M")
        .then_some("a btrfs filesystem")
}

/// SCO bfs: 0x1BADFACE, little-endian, at 0.
fn bfs(h: &Bytes) -> Option<&'static str> {
    (h.le32(0) == 0x1bad_face).then_some("a bfs filesystem")
}

/// cramfs: 0x28CD3D45 in either endianness, at 0 or after 512 bytes of
/// padding (`mkfs.cramfs -p`).
fn cramfs(h: &Bytes) -> Option<&'static str> {
    [0, 512]
        .iter()
        .any(|&off| h.le32(off) == 0x28cd_3d45 || h.be32(off) == 0x28cd_3d45)
        .then_some("a cramfs filesystem")
}

/// minix v1/v2 (magic at 1024 + 16, either endianness) and v3 (magic at
/// 1024 + 24), with libblkid's sanity checks of the bitmap sizes.
fn minix(h: &Bytes) -> Option<&'static str> {
    const SB: usize = 1024;
    let v12 = |magic: u16| match magic {
        0x137f | 0x138f => Some(1),
        0x2468 | 0x2478 => Some(2),
        _ => None,
    };
    let magic = h.le16(SB + 16);
    let (version, swapped) = if let Some(v) = v12(magic) {
        (v, false)
    } else if h.le16(SB + 24) == 0x4d5a {
        (3, false)
    } else {
        (v12(magic.swap_bytes())?, true)
    };
    let r16 = |off: usize| {
        let v = h.le16(SB + off);
        if swapped {
            v.swap_bytes()
        } else {
            v
        }
    };
    if version <= 2 {
        let (ninodes, imaps, zmaps, firstz) = (r16(0), r16(4), r16(6), r16(8));
        if imaps == 0 || zmaps == 0 {
            return None;
        }
        let zones = if version == 2 {
            let z = h.le32(SB + 20);
            // libblkid holds the count in a C int.
            i64::from((if swapped { z.swap_bytes() } else { z }) as i32)
        } else {
            i64::from(r16(2))
        };
        let bits = |blocks: u16| i64::from(blocks) * 1024 * 8;
        if bits(imaps) < i64::from(ninodes) + 1 || bits(zmaps) < zones - i64::from(firstz) + 1 {
            return None;
        }
    } else if h.le16(SB + 6) == 0 || h.le16(SB + 8) == 0 {
        return None;
    }
    // Parts of an ext3 superblock can look like minix; libblkid rules
    // that out the same way.
    if h.at(1080, &[0x53, 0xef]) {
        return None;
    }
    Some(match version {
        1 => "a minix filesystem (version 1)",
        2 => "a minix filesystem (version 2)",
        _ => "a minix filesystem (version 3)",
    })
}

fn ntfs(h: &Bytes) -> Option<&'static str> {
    h.at(3, b"NTFS    ").then_some("an NTFS filesystem")
}

fn exfat(h: &Bytes) -> Option<&'static str> {
    h.at(3, b"EXFAT   ").then_some("an exFAT filesystem")
}

/// FAT12/16/32, as libblkid's vfat probe: one of the FAT ids in the boot
/// sector, or failing that the 0x55AA boot signature; and either way a
/// BIOS parameter block that describes a possible FAT filesystem.
fn fat(h: &Bytes) -> Option<&'static str> {
    let ids = [
        (0x52, &b"MSWIN"[..]),
        (0x52, b"FAT32   "),
        (0x36, b"MSDOS"),
        (0x36, b"FAT16   "),
        (0x36, b"FAT12   "),
        (0x36, b"FAT     "),
    ];
    if !ids.iter().any(|&(off, id)| h.at(off, id)) {
        // Only the jump instruction or the boot signature is left to go on:
        // then the boot signature must be there, and OS/2 puts FAT-like
        // boot sectors in front of JFS and HPFS.
        if !h.at(510, &[0x55, 0xaa]) || h.at(0x36, b"JFS     ") || h.at(0x36, b"HPFS    ") {
            return None;
        }
    }
    let (cluster_sectors, reserved, fats, media) =
        (h.u8(0x0d), h.le16(0x0e), h.u8(0x10), h.u8(0x15));
    if fats == 0 || reserved == 0 || !(media >= 0xf8 || media == 0xf0) {
        return None;
    }
    if !cluster_sectors.is_power_of_two() {
        return None;
    }
    let sector_size = h.le16(0x0b);
    if !sector_size.is_power_of_two() || !(512..=4096).contains(&sector_size) {
        return None;
    }
    let sector_size = u32::from(sector_size);
    let dir_entries = u32::from(h.le16(0x11));
    let sectors = match h.le16(0x13) {
        0 => h.le32(0x20),
        n => u32::from(n),
    };
    let (fat16_length, fat32_length) = (h.le16(0x16), h.le32(0x24));
    let fat_length = match fat16_length {
        0 => fat32_length,
        n => u32::from(n),
    };
    let fat32 = fat16_length == 0 && fat32_length != 0;
    // libblkid's unsigned 32-bit arithmetic, wrapping included: a count of
    // sectors too small for the metadata gives a huge cluster count.
    let fat_sectors = fat_length.wrapping_mul(u32::from(fats));
    let dir_sectors = (dir_entries * 32).div_ceil(sector_size);
    let metadata = u32::from(reserved)
        .wrapping_add(fat_sectors)
        .wrapping_add(dir_sectors);
    let clusters = sectors.wrapping_sub(metadata) / u32::from(cluster_sectors);
    let max = if fat32 {
        0x0fff_fff6
    } else if clusters > 0xff4 {
        0xfff4
    } else {
        0xff4
    };
    if clusters > max {
        return None;
    }
    Some(if fat32 {
        "a FAT32 filesystem"
    } else if fat16_length == 0 {
        "a FAT filesystem"
    } else if clusters < 0xff4 {
        "a FAT12 filesystem"
    } else {
        "a FAT16 filesystem"
    })
}

fn f2fs(h: &Bytes) -> Option<&'static str> {
    (h.le32(1024) == 0xf2f5_2010).then_some("an F2FS filesystem")
}

/// squashfs 4 ("hsqs"), and squashfs 3 in either endianness.
fn squashfs(h: &Bytes) -> Option<&'static str> {
    (h.at(0, b"hsqs") || h.at(0, b"sqsh")).then_some("a squashfs filesystem")
}

/// UDF and ISO 9660: the volume recognition sequence from 32 KiB, one
/// descriptor per 2 KiB (or per sector, for larger sectors), each with its
/// id at byte 1.
fn optical(h: &Bytes) -> Option<&'static str> {
    let vrs = |id: &[u8]| (0..16).any(|k| h.at(32769 + k * 2048, id));
    if vrs(b"NSR02") || vrs(b"NSR03") {
        Some("a UDF filesystem")
    } else if h.at(32769, b"CD001") || h.at(32777, b"CDROM") {
        Some("an ISO 9660 filesystem")
    } else if vrs(b"BEA01") {
        Some("a UDF filesystem")
    } else {
        None
    }
}

fn jfs(h: &Bytes) -> Option<&'static str> {
    h.at(32768, b"JFS1").then_some("a JFS filesystem")
}

/// ReiserFS 3.6 (superblock at 64 KiB), 3.5 (64 KiB or the old 8 KiB) and
/// Reiser4.
fn reiserfs(h: &Bytes) -> Option<&'static str> {
    const MAGICS: [&[u8]; 3] = [b"ReIsErFs", b"ReIsEr2Fs", b"ReIsEr3Fs"];
    if MAGICS.iter().any(|m| h.at(65536 + 52, m)) || h.at(8192 + 52, MAGICS[0]) {
        Some("a ReiserFS filesystem")
    } else if h.at(65536, b"ReIsEr4") {
        Some("a Reiser4 filesystem")
    } else {
        None
    }
}

/// NILFS2: its 16-bit magic at 1024 + 6, with the revision (2) and the
/// superblock's byte count for a check of more than two bytes.
fn nilfs2(h: &Bytes) -> Option<&'static str> {
    let bytes = h.le16(1024 + 8);
    (h.le16(1024 + 6) == 0x3434 && h.le32(1024) == 2 && (24..=1024).contains(&bytes))
        .then_some("a NILFS2 filesystem")
}

/// HFS+ / HFSX (signature and version, with libblkid's block size floor),
/// and HFS (the weak "BD" with a plausible allocation block size), which
/// may wrap an HFS+ volume.
fn hfs(h: &Bytes) -> Option<&'static str> {
    const SB: usize = 1024;
    let plus = (h.at(SB, b"H+") && h.be16(SB + 2) == 4) || (h.at(SB, b"HX") && h.be16(SB + 2) == 5);
    if plus && h.be32(SB + 40) >= 512 {
        return Some("an HFS+ filesystem");
    }
    if !h.at(SB, b"BD") {
        return None;
    }
    let block = h.be32(SB + 20);
    if block == 0 || !block.is_multiple_of(512) || h.be16(SB + 18) == 0 || h.u8(SB + 36) > 27 {
        return None;
    }
    if h.at(SB + 124, b"H+") || h.at(SB + 124, b"HX") {
        Some("an HFS+ filesystem")
    } else {
        Some("an HFS filesystem")
    }
}

/// GFS and GFS2: the metadata magic 0x01161970 and the superblock type, at
/// 64 KiB, big-endian.
fn gfs2(h: &Bytes) -> Option<&'static str> {
    (h.be32(65536) == 0x0116_1970 && h.be32(65536 + 4) == 1).then_some("a GFS/GFS2 filesystem")
}

/// OCFS2: its superblock is block 2, for blocks of 512 bytes to 4 KiB.
fn ocfs2(h: &Bytes) -> Option<&'static str> {
    [1024, 2048, 4096, 8192]
        .iter()
        .any(|&off| h.at(off, b"OCFSV2"))
        .then_some("an OCFS2 filesystem")
}

/// UFS 1 and 2 (and their variants), in either endianness: the magic at
/// 1372 into a superblock at 0, 8 KiB or 64 KiB (libblkid also looks at
/// 256 KiB, which is not read here).
fn ufs(h: &Bytes) -> Option<&'static str> {
    const MAGICS: [u32; 6] = [
        0x1954_0119, // UFS2
        0x0001_1954, // UFS1
        0x0019_5612, // the variants of FreeBSD, 4.4BSD, Solaris and HP-UX
        0x0009_5014,
        0x0061_2195,
        0x0523_1994,
    ];
    [0, 8192, 65536]
        .iter()
        .map(|&sb| sb + 1372)
        .any(|off| MAGICS.contains(&h.le32(off)) || MAGICS.contains(&h.be32(off)))
        .then_some("a UFS filesystem")
}

/// bcache and bcachefs: a 16-byte magic at 4 KiB + 24.
fn bcache(h: &Bytes) -> Option<&'static str> {
    const BCACHE: [u8; 16] = [
        0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d,
        0x81,
    ];
    const BCACHEFS: [u8; 16] = [
        0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7,
        0xef,
    ];
    if h.at(4096 + 24, &BCACHEFS) {
        Some("a bcachefs filesystem")
    } else if h.at(4096 + 24, &BCACHE) {
        Some("a bcache or bcachefs superblock")
    } else {
        None
    }
}

fn erofs(h: &Bytes) -> Option<&'static str> {
    (h.le32(1024) == 0xe0f5_e1e2).then_some("an EROFS filesystem")
}

fn romfs(h: &Bytes) -> Option<&'static str> {
    h.at(0, b"-rom1fs-").then_some("a romfs filesystem")
}

/// UBIFS (its node magic at 0) and UBI (the erase counter header).
fn ubifs(h: &Bytes) -> Option<&'static str> {
    if h.le32(0) == 0x0610_1831 {
        Some("a UBIFS filesystem")
    } else if h.at(0, b"UBI#") {
        Some("a UBI volume")
    } else {
        None
    }
}

/// Swap space (and a hibernation image in it): the signature in the last
/// 10 bytes of the first page, for pages of 4 to 64 KiB.
fn swap(h: &Bytes) -> Option<&'static str> {
    for page in [4096, 8192, 16384, 32768, 65536] {
        let off = page - 10;
        if h.at(off, b"SWAPSPACE2") || h.at(off, b"SWAP-SPACE") {
            return Some("swap space");
        }
        let suspend: [&[u8]; 4] = [b"S1SUSPEND", b"S2SUSPEND", b"ULSUSPEND", b"LINHIB0001"];
        if suspend.iter().any(|s| h.at(off, s)) {
            return Some("swap space holding a hibernation image");
        }
    }
    None
}

/// A GPT header (at 512, or 4096 for 4 KiB sectors), or an MBR: the boot
/// signature, a boot indicator of 0 or 0x80 in all four entries (libblkid's
/// test) and at least one entry in use.
fn partition_table(h: &Bytes) -> Option<&'static str> {
    if h.at(512, b"EFI PART") || h.at(4096, b"EFI PART") {
        return Some("a partition table (gpt)");
    }
    if !h.at(510, &[0x55, 0xaa]) {
        return None;
    }
    let entries = [446, 462, 478, 494];
    if entries.iter().any(|&e| h.u8(e) != 0 && h.u8(e) != 0x80) {
        return None;
    }
    let used = |e: usize| h.u8(e + 4) != 0 || h.le32(e + 12) != 0;
    if !entries.iter().any(|&e| used(e)) {
        return None;
    }
    // A protective MBR whose GPT header is not where it was looked for.
    if entries.iter().any(|&e| h.u8(e + 4) == 0xee) {
        Some("a partition table (gpt)")
    } else {
        Some("a partition table (dos)")
    }
}

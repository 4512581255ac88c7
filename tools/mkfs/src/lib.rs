// SPDX-License-Identifier: GPL-2.0

//! `mkfs.swapfs`: creates a swapfs filesystem.
//!
//! ```text
//! mkfs.swapfs [-b 1024|2048|4096] [-L label] [-N inodes] [-J journal-blocks]
//!             [-U uuid|random] [-f] [-q] [-V] device [size]
//! ```
//!
//! `size` is in blocks, or in bytes with a `K`, `M`, `G` or `T` suffix
//! (powers of 1024); the default is the whole device. The defaults are
//! 4096-byte blocks, one inode per 16 KiB (at least 64), and a journal of a
//! 64th of the filesystem between 1024 and 32768 blocks. A device that
//! already holds a filesystem or swap signature is refused unless `-f` is
//! given; a block device is opened exclusively (so a mounted one or an
//! active swap device is refused whatever the options). `-q` prints
//! nothing, `-V` prints the version and exits.
//!
//! Exit status, as mke2fs: 0 on success, 1 on any error (usage included).
//! The work is done by [`swapfs_image::mkfs::format`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use swapfs_common::format::{get_u32, MAGIC};
use swapfs_image::cli::{parse_u64, value_str, Arg, GetOpt, UsageError};
use swapfs_image::mkfs::{self, label_from_str, MkfsParams};
use swapfs_image::{Access, Image};

pub use swapfs_image::mkfs::{format, MkfsError};

/// The program's name in messages.
pub const PROG: &str = "mkfs.swapfs";

/// The usage line.
pub const USAGE: &str = "Usage: mkfs.swapfs [-b 1024|2048|4096] [-L label] [-N inodes] \
[-J journal-blocks] [-U uuid|random] [-f] [-q] [-V] device [size-in-blocks]";

/// The size operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// In blocks.
    Blocks(u64),
    /// In bytes (a suffixed number).
    Bytes(u64),
}

/// The UUID to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UuidChoice {
    /// A new random (version 4) UUID.
    Random,
    /// This one.
    Given([u8; 16]),
}

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// log2 of the block size.
    pub block_size_log2: u32,
    /// Volume label, NUL-padded.
    pub label: [u8; 32],
    /// `-N`.
    pub inodes: Option<u64>,
    /// `-J`.
    pub journal_blocks: Option<u64>,
    /// `-U`.
    pub uuid: UuidChoice,
    /// `-f`: overwrite an existing filesystem or swap signature.
    pub force: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-V`: print the version and exit.
    pub version: bool,
    /// The device or image file (empty with `-V`).
    pub device: PathBuf,
    /// The size operand.
    pub size: Option<Size>,
}

fn usage(msg: String) -> UsageError {
    UsageError::Other(msg)
}

/// Parses a UUID in its canonical 8-4-4-4-12 hexadecimal form.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut uuid = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        uuid[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(uuid)
}

/// Formats a UUID canonically.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}

/// A random RFC 4122 version-4 UUID from `/dev/urandom`.
pub fn random_uuid() -> io::Result<[u8; 16]> {
    let mut u = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut u)?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

fn parse_size(s: &str) -> Option<Size> {
    let (num, shift) = match s.as_bytes().last()?.to_ascii_uppercase() {
        b'K' => (&s[..s.len() - 1], 10),
        b'M' => (&s[..s.len() - 1], 20),
        b'G' => (&s[..s.len() - 1], 30),
        b'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = num.parse().ok()?;
    if shift == 0 {
        return Some(Size::Blocks(n));
    }
    n.checked_mul(1 << shift).map(Size::Bytes)
}

/// Parses the command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Options, UsageError> {
    let mut o = Options {
        block_size_log2: 12,
        label: [0; 32],
        inodes: None,
        journal_blocks: None,
        uuid: UuidChoice::Random,
        force: false,
        quiet: false,
        version: false,
        device: PathBuf::new(),
        size: None,
    };
    let mut operands = Vec::new();
    for arg in GetOpt::new(args, "fqV", "bLNJU") {
        match arg? {
            Arg::Flag('f') => o.force = true,
            Arg::Flag('q') => o.quiet = true,
            Arg::Flag('V') => o.version = true,
            Arg::Value('b', v) => {
                o.block_size_log2 = match value_str('b', &v)? {
                    "1024" => 10,
                    "2048" => 11,
                    "4096" => 12,
                    s => {
                        return Err(usage(format!(
                            "invalid block size '{s}' (1024, 2048 or 4096)"
                        )))
                    }
                }
            }
            Arg::Value('L', v) => {
                let s = value_str('L', &v)?;
                o.label = label_from_str(s)
                    .ok_or_else(|| usage(format!("label '{s}' is longer than 32 bytes")))?;
            }
            Arg::Value('N', v) => {
                let n = parse_u64('N', &v)?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(usage(format!(
                        "-N: inode count {n} out of range (1 to {})",
                        u32::MAX
                    )));
                }
                o.inodes = Some(n);
            }
            Arg::Value('J', v) => {
                let n = parse_u64('J', &v)?;
                if !(1024..=u64::from(u32::MAX)).contains(&n) {
                    return Err(usage(format!(
                        "-J: journal of {n} blocks out of range (1024 to {})",
                        u32::MAX
                    )));
                }
                o.journal_blocks = Some(n);
            }
            Arg::Value('U', v) => {
                let s = value_str('U', &v)?;
                o.uuid = if s == "random" {
                    UuidChoice::Random
                } else {
                    UuidChoice::Given(
                        parse_uuid(s).ok_or_else(|| usage(format!("invalid UUID '{s}'")))?,
                    )
                };
            }
            Arg::Operand(v) => operands.push(v),
            Arg::Flag(c) | Arg::Value(c, _) => return Err(UsageError::Unknown(c)),
        }
    }
    if o.version && operands.is_empty() {
        return Ok(o);
    }
    let mut operands = operands.into_iter();
    o.device = operands
        .next()
        .map(PathBuf::from)
        .ok_or_else(|| usage("no device given".into()))?;
    if let Some(s) = operands.next() {
        let s = s
            .to_str()
            .ok_or_else(|| usage("invalid size".into()))?
            .to_string();
        o.size = match parse_size(&s) {
            Some(Size::Blocks(0) | Size::Bytes(0)) | None => {
                return Err(usage(format!("invalid size '{s}'")))
            }
            size => size,
        };
    }
    if operands.next().is_some() {
        return Err(usage("too many arguments".into()));
    }
    Ok(o)
}

/// What an existing signature on the device says it is, if anything.
pub fn detect_signature(img: &Image) -> Option<&'static str> {
    let mut buf = vec![0u8; 65536 + 4096];
    let n = usize::try_from(img.size())
        .unwrap_or(usize::MAX)
        .min(buf.len());
    img.read_at(0, &mut buf[..n]).ok()?;
    let at = |off: usize, sig: &[u8]| buf.get(off..off + sig.len()) == Some(sig);
    if get_u32(&buf, 0) == MAGIC {
        Some("a swapfs filesystem")
    } else if at(1080, &[0x53, 0xef]) {
        Some("an ext2/ext3/ext4 filesystem")
    } else if at(0, b"XFSB") {
        Some("an XFS filesystem")
    } else if at(65536 + 64, b"_BHRfS_M") {
        Some("a btrfs filesystem")
    } else if [4096, 8192, 16384, 65536]
        .iter()
        .any(|&p| at(p - 10, b"SWAPSPACE2") || at(p - 10, b"SWAP-SPACE"))
    {
        Some("swap space")
    } else {
        None
    }
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Runs mkfs with parsed options; errors are messages for the user.
pub fn run(o: &Options) -> Result<(), String> {
    let dev = o.device.display();
    let mut img =
        Image::open(&o.device, Access::Exclusive).map_err(|e| format!("cannot open {dev}: {e}"))?;
    let bs = 1u64 << o.block_size_log2;
    let device_blocks = img.blocks(bs as usize);
    let block_count = match o.size {
        None => device_blocks,
        Some(Size::Blocks(n)) => n,
        Some(Size::Bytes(n)) => n / bs,
    };
    if block_count > device_blocks {
        return Err(format!(
            "{dev}: a filesystem of {block_count} blocks does not fit the device ({device_blocks} blocks of {bs} bytes)"
        ));
    }
    if !o.force {
        if let Some(what) = detect_signature(&img) {
            return Err(format!(
                "{dev} appears to contain {what}; use -f to overwrite it"
            ));
        }
    }
    let mut p = MkfsParams::new(o.block_size_log2, block_count);
    p.label = o.label;
    if let Some(n) = o.inodes {
        p.inode_count = n;
    }
    if let Some(n) = o.journal_blocks {
        p.journal_blocks = n;
    }
    p.uuid = match o.uuid {
        UuidChoice::Given(u) => u,
        UuidChoice::Random => {
            random_uuid().map_err(|e| format!("cannot read /dev/urandom: {e}"))?
        }
    };
    let (sb, geo) = mkfs::plan(&p, device_blocks).map_err(|e| match e {
        MkfsError::Layout(e) => format!(
            "{dev}: cannot make a filesystem of {block_count} blocks of {bs} bytes with {} inodes and a {}-block journal: {e}",
            p.inode_count, p.journal_blocks
        ),
        e => format!("{dev}: {e}"),
    })?;
    if !o.quiet {
        println!("Creating a swapfs filesystem on {dev}");
        println!(
            "  {} blocks of {bs} bytes ({}), {} inodes",
            sb.block_count,
            human(sb.block_count * bs),
            sb.inode_count
        );
        println!(
            "  journal: {} blocks; data: {} blocks from block {}",
            sb.journal_blocks,
            geo.data_blocks(),
            sb.data_start
        );
        println!(
            "  UUID {}, label \"{}\"",
            format_uuid(&sb.uuid),
            sb.label_str()
        );
    }
    format(&mut img, &p).map_err(|e| format!("{dev}: {e}"))?;
    if !o.quiet {
        println!("Done.");
    }
    Ok(())
}

/// The whole program: parses `args` (without the program name), runs,
/// prints errors, and returns the exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    let o = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            eprintln!("{USAGE}");
            return 1;
        }
    };
    if o.version {
        println!(
            "{PROG} {} (swapfs format version {})",
            env!("CARGO_PKG_VERSION"),
            swapfs_common::format::VERSION
        );
        return 0;
    }
    match run(&o) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("{PROG}: {msg}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults_and_all_options() {
        let o = parse(&["img"]).unwrap();
        assert_eq!(o.block_size_log2, 12);
        assert_eq!((o.inodes, o.journal_blocks, o.size), (None, None, None));
        assert_eq!(o.uuid, UuidChoice::Random);
        let o = parse(&[
            "-b",
            "1024",
            "-Lswap",
            "-N",
            "100",
            "-J2048",
            "-U",
            "01234567-89ab-cdef-0123-456789abcdef",
            "-fq",
            "img",
            "4096",
        ])
        .unwrap();
        assert_eq!(o.block_size_log2, 10);
        assert_eq!(&o.label[..5], b"swap\0");
        assert_eq!((o.inodes, o.journal_blocks), (Some(100), Some(2048)));
        assert!(o.force && o.quiet && !o.version);
        assert_eq!(o.size, Some(Size::Blocks(4096)));
        let UuidChoice::Given(u) = o.uuid else {
            panic!()
        };
        assert_eq!(format_uuid(&u), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(
            parse(&["img", "64M"]).unwrap().size,
            Some(Size::Bytes(64 << 20))
        );
        assert!(parse(&["-V"]).unwrap().version);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["-b", "512", "img"],
            &["-b", "4097", "img"],
            &["-b"],
            &["-x", "img"],
            &["-N", "0", "img"],
            &["-N", "4294967296", "img"],
            &["-N", "many", "img"],
            &["-J", "1023", "img"],
            &["-U", "not-a-uuid", "img"],
            &["-U", "01234567-89ab-cdef-0123-456789abcdeg", "img"],
            &["-L", "this label is much longer than 32 bytes", "img"],
            &["img", "0"],
            &["img", "12Q"],
            &["img", "99999999999T"],
            &["img", "10", "extra"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn random_uuids_are_v4() {
        let u = random_uuid().unwrap();
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(u[8] >> 6, 2);
        assert_ne!(u, random_uuid().unwrap());
    }

    #[test]
    fn signatures() {
        let mut img = Image::zeroed(128 * 1024);
        assert_eq!(detect_signature(&img), None);
        img.write_at(1080, &[0x53, 0xef]).unwrap();
        assert!(detect_signature(&img).unwrap().contains("ext"));
        let mut img = Image::zeroed(8192);
        img.write_at(4086, b"SWAPSPACE2").unwrap();
        assert_eq!(detect_signature(&img), Some("swap space"));
        assert_eq!(detect_signature(&Image::zeroed(10)), None);
    }
}

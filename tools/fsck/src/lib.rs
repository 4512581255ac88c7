// SPDX-License-Identifier: GPL-2.0

//! `fsck.swapfs`: checks a swapfs filesystem, and replays its journal.
//!
//! ```text
//! fsck.swapfs [-n] [-f] [-v] [-a|-p|-y] device
//! ```
//!
//! When the journal's log holds transactions (the filesystem was not
//! unmounted cleanly: a crash, a shutdown, a device that failed), what is
//! on disk is not what the kernel will use: the next mount replays the log
//! first. As e2fsck does:
//!
//! - `-n`, or no mode option: the device is opened read-only and never
//!   written. The log is recovered in memory exactly as the kernel's jbd2
//!   will recover it ([`swapfs_image::jlog`]), and the filesystem is
//!   checked as the replay will leave it; one line says so, whatever the
//!   verbosity: `journal: needs recovery, N transactions (tids A-B), M
//!   blocks; checked as replayed`. Needing recovery is not a problem. A log
//!   the kernel would refuse to recover (its mount then fails: a commit
//!   block that fails its checksum, a descriptor or revoke block that fails
//!   its checksum in a committed transaction, a data block that fails its
//!   tag checksum, a log that runs out of the journal, ...) is one, as is a
//!   log that replays blocks swapfs never journals (outside the filesystem,
//!   into the journal); the filesystem is then checked as it is on disk.
//! - `-p` (or `-a`) and `-y`: the device is opened read-write (a block
//!   device exclusively, as mkfs does: a mounted filesystem is refused). A
//!   log that needs recovery is replayed to disk as the kernel would (the
//!   blocks, a flush, then the journal superblock marked empty with the
//!   next transaction ID, a flush; `journal: replayed N transactions, M
//!   blocks`), then the filesystem is checked. A log that the kernel would
//!   refuse is left alone, and reported. Nothing else is repaired: the
//!   problems that remain are reported as not corrected.
//!
//! An aborted journal (`s_errno` != 0) is a warning line, not a problem:
//! the kernel replays it at the next mount as any other, clears the error
//! and marks the filesystem as having had errors (which the check after
//! that mount reports). With nothing else wrong the exit status is 0;
//! `-p`/`-y` leave `s_errno` to that mount.
//!
//! `-f` (force) is accepted: the check is always complete. `-v` adds
//! informational notes.
//!
//! Every problem is printed on its own line, then a summary. Exit status as
//! fsck(8), the sum of 1 (errors corrected: the journal was replayed) and 4
//! (problems left uncorrected), 0 when nothing was wrong and nothing was
//! written; or 8, operational error (cannot open, read or write the device,
//! no swapfs superblock), 16 usage error.
//!
//! The checks are in [`check()`], which returns a structured [`Report`];
//! the replay is [`replay()`].

pub mod check;
pub mod journal;
pub mod report;

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use swapfs_image::cli::{Arg, GetOpt, UsageError};
use swapfs_image::{Access, Image};

pub use check::check;
use journal::count;
pub use journal::{replay, Replay};
pub use report::{exit, Error, Location, Problem, Report, Summary};

/// The program's name in messages.
pub const PROG: &str = "fsck.swapfs";

/// The usage text.
pub const USAGE: &str = "Usage: fsck.swapfs [-n] [-f] [-v] [-a|-p|-y] device
  -n        check only, read-only: as the kernel will see the filesystem
            once it recovered the journal
  -p, -a    replay the journal to disk if it needs recovery, then check
  -y        the same (no other repair is implemented)
  -f        accepted: the check is always complete
  -v        informational notes";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-n`: open read-only, answer "no" to every repair.
    pub no: bool,
    /// `-a`, `-p` or `-y`: the repair mode asked for (`'p'` or `'y'`): the
    /// journal is replayed; no other repair is implemented.
    pub repair: Option<char>,
    /// `-f`.
    pub force: bool,
    /// `-v`.
    pub verbose: bool,
    /// The device or image file.
    pub device: PathBuf,
}

/// Parses the command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Options, UsageError> {
    let mut o = Options {
        no: false,
        repair: None,
        force: false,
        verbose: false,
        device: PathBuf::new(),
    };
    let mut devices = Vec::new();
    for arg in GetOpt::new(args, "nfvapy", "") {
        match arg? {
            Arg::Flag('n') => o.no = true,
            Arg::Flag('f') => o.force = true,
            Arg::Flag('v') => o.verbose = true,
            Arg::Flag(c @ ('a' | 'p' | 'y')) => {
                let c = if c == 'a' { 'p' } else { c };
                if o.repair.is_some_and(|r| r != c) {
                    return Err(UsageError::Other(
                        "only one of the options -p/-a, -n or -y may be given".into(),
                    ));
                }
                o.repair = Some(c);
            }
            Arg::Operand(d) => devices.push(d),
            Arg::Flag(c) | Arg::Value(c, _) => return Err(UsageError::Unknown(c)),
        }
    }
    if o.no && o.repair.is_some() {
        return Err(UsageError::Other(
            "only one of the options -p/-a, -n or -y may be given".into(),
        ));
    }
    match <[OsString; 1]>::try_from(devices) {
        Ok([d]) => o.device = PathBuf::from(d),
        Err(v) if v.is_empty() => return Err(UsageError::Other("no device given".into())),
        Err(_) => return Err(UsageError::Other("only one device may be checked".into())),
    }
    Ok(o)
}

/// Prints a report as the program does: the journal's state and warnings,
/// problems, notes with `verbose`, the summary.
pub fn print_report(device: &str, report: &Report, verbose: bool) {
    for i in &report.info {
        println!("{i}");
    }
    for p in &report.problems {
        println!("{p}");
    }
    if verbose {
        for n in &report.notes {
            println!("note: {n}");
        }
    }
    match &report.summary {
        Some(s) => println!(
            "swapfs: {device}: {}/{} inodes, {}/{} blocks",
            s.inodes_used, s.inode_count, s.blocks_used, s.block_count
        ),
        None => println!("swapfs: {device}: the superblock is unusable"),
    }
    match report.problems.len() {
        0 => println!("{device}: clean"),
        1 => println!("{device}: 1 problem (not corrected)"),
        n => println!("{device}: {n} problems (not corrected)"),
    }
}

/// Replays the journal if asked to, checks, and returns the exit status.
pub fn run(o: &Options) -> u8 {
    let dev = o.device.display().to_string();
    let access = if o.repair.is_some() {
        Access::Exclusive
    } else {
        Access::ReadOnly
    };
    let mut img = match Image::open(&o.device, access) {
        Ok(img) => img,
        Err(e) => {
            let hint = if e.kind() == io::ErrorKind::ResourceBusy {
                " (mounted or in use? -n checks without writing)"
            } else {
                ""
            };
            eprintln!("{PROG}: cannot open {dev}: {e}{hint}");
            return exit::OPERATIONAL;
        }
    };
    let mut written = false;
    if o.repair.is_some() {
        match replay(&mut img) {
            Ok(Replay::NotNeeded) => {}
            Ok(Replay::Done {
                transactions,
                blocks,
            }) => {
                written = true;
                println!(
                    "journal: replayed {}, {}",
                    count(u64::from(transactions), "transaction"),
                    count(blocks as u64, "block")
                );
            }
            Ok(Replay::Refused(why)) => println!("journal: not replayed: {why}"),
            Err(e) => {
                eprintln!("{PROG}: {dev}: journal replay failed: {e}");
                return exit::OPERATIONAL;
            }
        }
    }
    match check(&img) {
        Ok(report) => {
            print_report(&dev, &report, o.verbose);
            if o.repair.is_some() && !report.is_clean() {
                println!(
                    "{PROG}: repair is not implemented (only journal replay is): the problems above were not corrected"
                );
            }
            report.exit_code() | if written { exit::CORRECTED } else { exit::OK }
        }
        Err(e) => {
            eprintln!("{PROG}: {dev}: {e}");
            exit::OPERATIONAL
        }
    }
}

/// The whole program: parses `args` (without the program name), checks,
/// and returns the exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    match parse_args(args) {
        Ok(o) => run(&o),
        Err(e) => {
            eprintln!("{PROG}: {e}");
            eprintln!("{USAGE}");
            exit::USAGE
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
    fn options() {
        let o = parse(&["-nfv", "img"]).unwrap();
        assert!(o.no && o.force && o.verbose && o.repair.is_none());
        assert_eq!(o.device, PathBuf::from("img"));
        assert_eq!(parse(&["-a", "img"]).unwrap().repair, Some('p'));
        assert_eq!(parse(&["-p", "-a", "img"]).unwrap().repair, Some('p'));
        assert_eq!(parse(&["-y", "img"]).unwrap().repair, Some('y'));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["-n", "-y", "img"],
            &["-p", "-y", "img"],
            &["-a", "-n", "img"],
            &["-x", "img"],
            &["img", "img2"],
            &["--", "-n"][..1],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}

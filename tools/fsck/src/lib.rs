// SPDX-License-Identifier: GPL-2.0

//! `fsck.swapfs`: checks a swapfs filesystem.
//!
//! ```text
//! fsck.swapfs [-n] [-f] [-v] [-a|-p|-y] device
//! ```
//!
//! Version 1 checks and never repairs: the device is always opened
//! read-only and never written, whatever the options. `-n` asks for exactly
//! that; `-a`, `-p` and `-y` (repair requests) are accepted for fsck(8)'s
//! sake, and the checker says once that it only checks. `-f` (force) is
//! accepted: the check is always complete. `-v` adds informational notes.
//!
//! Every problem is printed on its own line, then a summary. Exit status as
//! fsck(8): 0 no problem, 4 problems left uncorrected, 8 operational error
//! (cannot open or read the device, no swapfs superblock), 16 usage error.
//!
//! The checks are in [`check()`], which returns a structured [`Report`].

pub mod check;
pub mod report;

use std::ffi::OsString;
use std::path::PathBuf;

use swapfs_image::cli::{Arg, GetOpt, UsageError};
use swapfs_image::{Access, Image};

pub use check::check;
pub use report::{exit, Error, Location, Problem, Report, Summary};

/// The program's name in messages.
pub const PROG: &str = "fsck.swapfs";

/// The usage line.
pub const USAGE: &str = "Usage: fsck.swapfs [-n] [-f] [-v] [-a|-p|-y] device";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-n`: open read-only, answer "no" (what v1 always does).
    pub no: bool,
    /// `-a`, `-p` or `-y`: the repair mode asked for (not implemented).
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

/// Prints a report as the program does: problems, notes with `verbose`,
/// the summary.
pub fn print_report(device: &str, report: &Report, verbose: bool) {
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

/// Checks with parsed options and returns the exit status.
pub fn run(o: &Options) -> u8 {
    let dev = o.device.display().to_string();
    if o.repair.is_some() {
        println!("{PROG}: repair is not implemented; checking only, nothing will be changed");
    }
    let img = match Image::open(&o.device, Access::ReadOnly) {
        Ok(img) => img,
        Err(e) => {
            eprintln!("{PROG}: cannot open {dev}: {e}");
            return exit::OPERATIONAL;
        }
    };
    match check(&img) {
        Ok(report) => {
            print_report(&dev, &report, o.verbose);
            report.exit_code()
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

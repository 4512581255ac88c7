// SPDX-License-Identifier: GPL-2.0

//! `swapfs-fuzz`: hostile images for swapfs.
//!
//! ```text
//! swapfs-fuzz image SEED OUT        write the case of SEED to OUT, print its mutations
//! swapfs-fuzz base BITS OUT         write the unmutated base image (BITS 10, 11 or 12)
//! swapfs-fuzz fsck [-s START] [-n COUNT] [-x FSCK]
//!                                   run fsck on every case: in-process (catching
//!                                   panics), or the fsck.swapfs binary FSCK with -n;
//!                                   it must end with 0, 4 or 8
//! swapfs-fuzz run -d DEV -m MNT [-s START] [-n COUNT] [-p EVERY] [-c EVERY] [-f EVERY] [-k] [-v]
//!                                   the guest loop (root, swapfs loaded): write each
//!                                   case to DEV, mount on MNT, exercise, unmount,
//!                                   watch the kernel log; -p progress every EVERY
//!                                   seeds, -c base-image sanity check every EVERY
//!                                   seeds (500), -f fsck (in-process, must not panic)
//!                                   on the image left behind every EVERY seeds (10),
//!                                   -k keep going after a failure, -v print
//!                                   every case
//! ```
//!
//! Seed `s` uses block size 1024, 2048, 4096 for `s % 3` = 0, 1, 2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use swapfs_fuzz::corpus::base;
use swapfs_fuzz::guest::{self, sizes};
use swapfs_fuzz::{fsck, generate};

fn usage() -> ExitCode {
    eprintln!(
        "usage: swapfs-fuzz image SEED OUT | base BITS OUT | fsck [-s START] [-n COUNT] [-x FSCK] \
         | run -d DEV -m MNT [-s START] [-n COUNT] [-p EVERY] [-c EVERY] [-f EVERY] [-k] [-v]"
    );
    ExitCode::from(16)
}

fn num(s: Option<&String>) -> Option<u64> {
    s.and_then(|s| s.parse().ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    match cmd.as_str() {
        "image" => {
            let (Some(seed), Some(out)) = (num(args.get(1)), args.get(2)) else {
                return usage();
            };
            let case = generate(seed);
            for w in &case.what {
                println!("{w}");
            }
            match std::fs::write(out, &case.bytes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("swapfs-fuzz: {out}: {e}");
                    ExitCode::from(8)
                }
            }
        }
        "base" => {
            let (Some(bits @ 10..=12), Some(out)) = (num(args.get(1)), args.get(2)) else {
                return usage();
            };
            match std::fs::write(out, &base(bits as u32).bytes) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("swapfs-fuzz: {out}: {e}");
                    ExitCode::from(8)
                }
            }
        }
        "fsck" | "run" => {
            let mut start = 0;
            let mut count = 1000;
            let mut exec = None;
            let mut dev = None;
            let mut mnt = None;
            let mut progress = 100;
            let mut sanity_every = 500;
            let mut fsck_every = 10;
            let mut keep_going = false;
            let mut verbose = false;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-s" => start = num(it.next()).unwrap_or(u64::MAX),
                    "-n" => count = num(it.next()).unwrap_or(u64::MAX),
                    "-p" => progress = num(it.next()).unwrap_or(u64::MAX),
                    "-f" => fsck_every = num(it.next()).unwrap_or(u64::MAX),
                    "-c" => sanity_every = num(it.next()).unwrap_or(u64::MAX),
                    "-x" => exec = it.next().map(PathBuf::from),
                    "-d" => dev = it.next().map(PathBuf::from),
                    "-m" => mnt = it.next().map(PathBuf::from),
                    "-k" => keep_going = true,
                    "-v" => verbose = true,
                    _ => return usage(),
                }
            }
            if start == u64::MAX || count == u64::MAX || progress == u64::MAX {
                return usage();
            }
            if cmd == "fsck" {
                host_fsck(start, count, exec)
            } else {
                let (Some(dev), Some(mnt)) = (dev, mnt) else {
                    return usage();
                };
                let o = guest::Options {
                    dev,
                    mnt,
                    start,
                    count,
                    progress,
                    sanity_every,
                    fsck_every,
                    keep_going,
                    verbose,
                };
                if guest::run(&o) == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
        }
        _ => usage(),
    }
}

fn host_fsck(start: u64, count: u64, exec: Option<PathBuf>) -> ExitCode {
    let t = Instant::now();
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let tmp = dir.join(format!("swapfs-fuzz-{}.img", std::process::id()));
    let mut codes = [0u64; 3];
    let mut failures = 0u64;
    for seed in start..start + count {
        let case = generate(seed);
        let res = match &exec {
            Some(bin) => fsck::binary(bin, &case, &tmp),
            None => fsck::in_process(&case.bytes).map(i32::from),
        };
        match res {
            Ok(c) if fsck::is_fsck_code(c) => codes[(c / 4) as usize] += 1,
            Ok(c) => {
                failures += 1;
                println!("FAIL seed {seed}: fsck exit code {c}");
            }
            Err(e) => {
                failures += 1;
                println!("FAIL seed {seed}: fsck: {e}");
                for w in &case.what {
                    println!("  mutation: {w}");
                }
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
    let per: Vec<String> = sizes(start, count)
        .iter()
        .map(|(l, n)| format!("{n} at {}", 1u32 << l))
        .collect();
    println!(
        "swapfs-fuzz fsck: seeds {start}..{}: {count} images ({}), {} exit codes: clean {}, problems {}, \
         unusable {}; {failures} failures; {:.1} s",
        start + count,
        per.join(", "),
        if exec.is_some() {
            "fsck.swapfs -n"
        } else {
            "in-process check"
        },
        codes[0],
        codes[1],
        codes[2],
        t.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

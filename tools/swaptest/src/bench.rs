// SPDX-License-Identifier: GPL-2.0

//! Benchmark helpers (`make bench`):
//!
//! - `fragment`: makes a file of exactly N physically separate extents the
//!   same way on any filesystem that allocates at write time: the target
//!   file and a spacer file are grown alternately, a chunk of the target
//!   then one page of the spacer, so each chunk lands after the previous
//!   spacer page; deleting the spacer afterwards leaves N extents and no
//!   hole.
//! - `swapon-cost`: times swapon(2) and swapoff(2) of a prepared swapfile
//!   (cold: after dropping caches, and warm), and the kernel memory the
//!   active swapfile pins.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::stats;
use crate::Error;

const USAGE_FRAGMENT: &str = "\
usage: swapfs-swaptest fragment TARGET SPACER --size SIZE --extents N [--direct]
Writes TARGET (SIZE bytes, a page multiple) as N chunks, each followed by one
page of SPACER, so that TARGET has N physically separate extents once SPACER
is deleted. --direct uses O_DIRECT writes.";

const USAGE_COST: &str = "\
usage: swapfs-swaptest swapon-cost FILE [--reps N] [--swapfs-debugfs FILE]
Times swapon(2)/swapoff(2) of FILE (a mkswap'ed swapfile): per repetition
once cold (sync, drop caches) and once warm. Prints key=value lines.";

fn get_val(it: &mut std::vec::IntoIter<String>, name: &str) -> Result<String, Error> {
    it.next()
        .ok_or_else(|| Error::new(format!("{name} needs a value")))
}

/// `fragment`: returns the output lines.
pub fn fragment(args: Vec<String>) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    let mut size = None;
    let mut extents = None;
    let mut direct = false;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--size" => {
                let v = get_val(&mut it, "--size")?;
                size = Some(
                    crate::parse_size(&v).ok_or_else(|| Error::new(format!("bad --size {v:?}")))?,
                );
            }
            "--extents" => {
                let v = get_val(&mut it, "--extents")?;
                extents = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| Error::new(format!("bad --extents {v:?}")))?,
                );
            }
            "--direct" => direct = true,
            "-h" | "--help" => return Ok(vec![USAGE_FRAGMENT.to_string()]),
            _ if a.starts_with('-') => {
                return Err(Error::new(format!(
                    "unknown argument {a:?}\n{USAGE_FRAGMENT}"
                )))
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    let ([target, spacer], Some(size), Some(n)) = (
        <[PathBuf; 2]>::try_from(files).ok().unwrap_or_default(),
        size,
        extents,
    ) else {
        return Err(Error::new(USAGE_FRAGMENT));
    };
    if target.as_os_str().is_empty() {
        return Err(Error::new(USAGE_FRAGMENT));
    }
    let page = crate::sys::page_size() as u64;
    if size % page != 0 || size / page < n {
        return Err(Error::new(format!(
            "--size must be a page multiple of at least --extents pages ({n} x {page})"
        )));
    }
    let open = |p: &Path| -> Result<File, Error> {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(p)
            .map_err(|e| Error::new(format!("creating {}: {e}", p.display())))
    };
    let t = open(&target)?;
    let s = open(&spacer)?;
    let pages = size / page;
    // Chunk i gets pages/n pages, the first pages%n chunks one more.
    let (base, extra) = (pages / n, pages % n);
    const MAX_IO: u64 = 1 << 20;
    // Page-aligned (O_DIRECT), non-zero content.
    let buf_len = (MAX_IO.min(base.saturating_add(1) * page)) as usize;
    let buf = crate::sys::Region::new(buf_len, crate::sys::Thp::None)?;
    for i in 0..buf_len / page as usize {
        // SAFETY: inside the buffer mapping.
        unsafe { buf.word_ptr(i, page as usize).write(0x5357_4150 ^ i as u64) };
    }
    // SAFETY: the whole mapping, read only from here on.
    let data = unsafe { std::slice::from_raw_parts(buf.word_ptr(0, 1).cast::<u8>(), buf_len) };
    let werr = |p: &Path, e: io::Error| Error::new(format!("writing {}: {e}", p.display()));
    let t0 = Instant::now();
    let mut off = 0u64;
    for i in 0..n {
        let mut left = (base + u64::from(i < extra)) * page;
        while left > 0 {
            let len = left.min(buf_len as u64) as usize;
            t.write_all_at(&data[..len], off)
                .map_err(|e| werr(&target, e))?;
            off += len as u64;
            left -= len as u64;
        }
        if i + 1 < n {
            s.write_all_at(&data[..page as usize], i * page)
                .map_err(|e| werr(&spacer, e))?;
        }
    }
    t.sync_all().map_err(|e| werr(&target, e))?;
    s.sync_all().map_err(|e| werr(&spacer, e))?;
    Ok(vec![
        format!("fragment.extents={n}"),
        format!("fragment.bytes={size}"),
        format!("fragment.secs={:.3}", t0.elapsed().as_secs_f64()),
    ])
}

fn meminfo() -> Result<std::collections::BTreeMap<String, u64>, Error> {
    let text = stats::read("/proc/meminfo")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect())
}

fn sys_swapon(path: &CString) -> io::Result<()> {
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::swapon(path.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sys_swapoff(path: &CString) -> io::Result<()> {
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::swapoff(path.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn drop_caches() -> Result<(), Error> {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| Error::new(format!("writing /proc/sys/vm/drop_caches: {e}")))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `swapon-cost`: returns the output lines.
pub fn swapon_cost(args: Vec<String>) -> Result<Vec<String>, Error> {
    let mut file = None;
    let mut reps = 3usize;
    let mut debugfs = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => {
                let v = get_val(&mut it, "--reps")?;
                reps = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| Error::new(format!("bad --reps {v:?}")))?;
            }
            "--swapfs-debugfs" => debugfs.push(PathBuf::from(get_val(&mut it, a.as_str())?)),
            "-h" | "--help" => return Ok(vec![USAGE_COST.to_string()]),
            _ if a.starts_with('-') => {
                return Err(Error::new(format!("unknown argument {a:?}\n{USAGE_COST}")))
            }
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let file = file.ok_or_else(|| Error::new(USAGE_COST))?;
    let abs =
        fs::canonicalize(&file).map_err(|e| Error::new(format!("{}: {e}", file.display())))?;
    let c =
        CString::new(abs.as_os_str().as_bytes()).map_err(|_| Error::new("path contains NUL"))?;
    let path_str = abs.display().to_string();
    let mut on_cold = Vec::new();
    let mut on_warm = Vec::new();
    let mut off = Vec::new();
    let mut out = Vec::new();
    let fail = |what: &str, e: io::Error| Error::new(format!("{what} {path_str}: {e}"));
    for r in 0..reps {
        for cold in [true, false] {
            if cold {
                drop_caches()?;
            }
            let m0 = meminfo()?;
            let t0 = Instant::now();
            sys_swapon(&c).map_err(|e| fail("swapon", e))?;
            let t_on = t0.elapsed().as_secs_f64();
            let m1 = meminfo()?;
            if r == 0 && cold {
                let d = |k: &str| {
                    m1.get(k).copied().unwrap_or(0) as i64 - m0.get(k).copied().unwrap_or(0) as i64
                };
                out.push(format!("mem.slab_kib={}", d("Slab")));
                out.push(format!("mem.vmalloc_kib={}", d("VmallocUsed")));
                out.push(format!("mem.free_kib={}", -d("MemFree")));
                if let Some(a) = stats::read_swaps()?.iter().find(|a| a.path == path_str) {
                    out.push(format!("swap.size_kib={}", a.size_kib));
                }
                if !debugfs.is_empty() {
                    let v = stats::read_swapfs(&debugfs, std::slice::from_ref(&path_str))?;
                    if let Some(f) = v.first() {
                        out.push(format!("swapfs.runs={}", f.get("runs")));
                        out.push(format!("swapfs.table_bytes={}", f.get("table_bytes")));
                        out.push(format!("swapfs.pages={}", f.get("pages")));
                    }
                }
            }
            let t1 = Instant::now();
            sys_swapoff(&c).map_err(|e| fail("swapoff", e))?;
            off.push(t1.elapsed().as_secs_f64());
            if cold {
                on_cold.push(t_on);
            } else {
                on_warm.push(t_on);
            }
        }
    }
    out.push(format!("reps={reps}"));
    out.push(format!("swapon_cold_ms={:.3}", median(&mut on_cold) * 1e3));
    out.push(format!("swapon_warm_ms={:.3}", median(&mut on_warm) * 1e3));
    out.push(format!("swapoff_ms={:.3}", median(&mut off) * 1e3));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn fragment_usage_errors() {
        assert!(fragment(vec![]).is_err());
        assert!(fragment(vec!["a".into(), "--extents".into(), "0".into()]).is_err());
    }
}

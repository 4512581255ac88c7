// SPDX-License-Identifier: GPL-2.0

//! The guest loop (runs as root in a test VM with swapfs loaded): for each
//! seed, write the case to a scratch disk, mount it (failing is fine),
//! exercise it (list, stat, read every file, readlink; create, write,
//! fallocate, truncate, rename, link, unlink, mkdir/rmdir; overwrite,
//! append to, truncate and unlink existing files; mkswap + swapon +
//! swapoff on a file), syncfs, unmount; then watch the kernel log for a
//! splat and check the result with fsck in-process (which must not panic).
//! Every few hundred seeds, and at the end, the unmutated base images must
//! still mount, work, swap on and check clean: the module stays functional.
//!
//! The kernel log ring buffer is small and a long run logs a lot (every
//! refused mount says why), so the loop reads `/dev/kmsg` itself after
//! every case instead of relying on a `dmesg` at the end; it also writes
//! `swapfs-fuzz: seed N` there before each mount, so that a splat or a
//! hung-task report in the log names the seed that caused it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::corpus::{base, BLOCK_SIZES_LOG2};
use crate::fsck;
use crate::mutate::{generate, log2_of, Case};
use crate::rng::Rng;

/// What the loop is told.
pub struct Options {
    /// The scratch disk the cases are written to.
    pub dev: PathBuf,
    /// Where to mount it.
    pub mnt: PathBuf,
    /// First seed.
    pub start: u64,
    /// Number of seeds.
    pub count: u64,
    /// Progress line every this many seeds.
    pub progress: u64,
    /// Base-image sanity check every this many seeds.
    pub sanity_every: u64,
    /// Check the image the kernel left behind with fsck (in-process) on
    /// every this many seeds (0: never).
    pub fsck_every: u64,
    /// Keep going after a failure.
    pub keep_going: bool,
    /// Print every case and its mutations.
    pub verbose: bool,
}

/// Per block size.
#[derive(Default, Clone)]
struct PerSize {
    cases: u64,
    mounted: u64,
    swapon: u64,
    mount_errors: BTreeMap<i32, u64>,
    swapon_errors: BTreeMap<i32, u64>,
}

#[derive(Default)]
struct Times {
    gen: Duration,
    write: Duration,
    mount: Duration,
    exercise: Duration,
    umount: Duration,
    fsck: Duration,
}

/// The kernel log's splats, one string per line: the list `scripts/splats`
/// reads too.
const SPLAT_PATTERNS: &str = include_str!("../../../scripts/splat-patterns");

/// Whether a kernel log line is a splat: a string of
/// `scripts/splat-patterns` at the start of the line or after `]` or a
/// space (the rule of `scripts/splats`).
pub fn is_splat(line: &str) -> bool {
    SPLAT_PATTERNS
        .lines()
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .any(|p| {
            line.match_indices(p).any(|(at, _)| {
                line[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| c == ']' || c == ' ')
            })
        })
}

/// Reads `/dev/kmsg` from where it was opened.
struct Kmsg {
    rd: File,
    wr: Option<File>,
}

impl Kmsg {
    fn open() -> std::io::Result<Kmsg> {
        let rd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        // SAFETY: lseek on a file descriptor we own.
        unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&rd), 0, libc::SEEK_END) };
        let wr = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        Ok(Kmsg { rd, wr })
    }

    /// The messages logged since the last call.
    fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.rd.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map_or(&*rec, |x| x.1);
                    // Continuation lines (dictionary) start with a space.
                    if let Some(first) = msg.lines().next() {
                        out.push(first.to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }

    fn log(&mut self, s: &str) {
        if let Some(w) = &mut self.wr {
            let _ = w.write_all(format!("<5>{s}\n").as_bytes());
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(dev: &Path, mnt: &Path, flags: u64, data: &str) -> Result<(), i32> {
    let (d, m) = (cstr(dev), cstr(mnt));
    let t = CString::new("swapfs").unwrap_or_default();
    let o = CString::new(data).unwrap_or_default();
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            d.as_ptr(),
            m.as_ptr(),
            t.as_ptr(),
            flags as libc::c_ulong,
            o.as_ptr().cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn umount(mnt: &Path, flags: i32) -> Result<(), i32> {
    let m = cstr(mnt);
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::umount2(m.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn swapon(p: &Path) -> Result<(), i32> {
    let c = cstr(p);
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::swapon(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn swapoff(p: &Path) -> Result<(), i32> {
    let c = cstr(p);
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::swapoff(c.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn syncfs(p: &Path) {
    if let Ok(f) = File::open(p) {
        // SAFETY: syncfs on a file descriptor we own.
        unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    }
}

/// What the walk found.
#[derive(Default)]
struct Found {
    files: Vec<(PathBuf, u64)>,
    dirs: Vec<PathBuf>,
    entries: usize,
}

const MAX_ENTRIES: usize = 600;
const MAX_DEPTH: usize = 10;
const READ_CAP: u64 = 64 * 1024;

/// `ls -lR` and `cat` of everything, with limits (a corrupt directory may
/// name itself or be huge).
fn walk(dir: &Path, depth: usize, found: &mut Found) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    found.dirs.push(dir.to_path_buf());
    for ent in rd {
        let Ok(ent) = ent else { break };
        found.entries += 1;
        if found.entries > MAX_ENTRIES {
            return;
        }
        let p = ent.path();
        let _ = ent.file_type();
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            let _ = fs::read_link(&p);
            let _ = fs::metadata(&p);
        } else if ft.is_dir() {
            if depth < MAX_DEPTH {
                walk(&p, depth + 1, found);
            }
        } else if ft.is_file() {
            read_file(&p, md.len());
            found.files.push((p, md.len()));
        }
    }
}

fn read_file(p: &Path, size: u64) {
    let Ok(f) = File::open(p) else { return };
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < READ_CAP {
        match f.read_at(&mut buf, off) {
            Ok(0) | Err(_) => break,
            Ok(n) => off += n as u64,
        }
    }
    // The end of big and sparse files too.
    if size > READ_CAP {
        for at in [size / 2, size.saturating_sub(8192)] {
            let _ = f.read_at(&mut buf[..8192], at);
        }
    }
}

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.next() as u8).collect()
}

/// Writes that allocate, free, share and unshare blocks; every error is
/// fine (a corrupt filesystem refuses), only the kernel's behaviour counts.
fn write_ops(mnt: &Path, found: &Found, rng: &mut Rng, bs: usize) {
    let new = mnt.join("fuzz-new");
    if let Ok(f) = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&new)
    {
        let data = pattern(3 * bs + 100, rng.next());
        let _ = f.write_all_at(&data, 0);
        let mut back = vec![0u8; data.len()];
        let _ = f.read_at(&mut back, 0);
        // SAFETY: fallocate on a file descriptor we own.
        unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, 64 * 1024) };
        let _ = f.set_len(10);
        let _ = f.write_all_at(b"tail", 20 * bs as u64);
    }
    let moved = match found.dirs.get(1) {
        Some(d) => d.join("fuzz-moved"),
        None => mnt.join("fuzz-moved"),
    };
    let _ = fs::rename(&new, &moved);
    let _ = fs::hard_link(&moved, mnt.join("fuzz-link"));
    let _ = fs::remove_file(&moved);
    let _ = fs::remove_file(mnt.join("fuzz-link"));
    let d = mnt.join("fuzz-dir");
    if fs::create_dir(&d).is_ok() {
        let _ = fs::write(d.join("f"), b"x");
        let _ = fs::remove_dir(&d);
        let _ = fs::remove_file(d.join("f"));
        let _ = fs::remove_dir(&d);
    }
    let _ = std::os::unix::fs::symlink("dir/sub", mnt.join("fuzz-sym"));
    let _ = fs::remove_file(mnt.join("fuzz-sym"));

    // Existing files (not the swapfile): overwrite the start (copy on
    // write if shared), append, truncate, unlink.
    let files: Vec<_> = found
        .files
        .iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n != "swapfile"))
        .collect();
    if files.is_empty() {
        return;
    }
    let pick = |rng: &mut Rng| files[rng.below(files.len() as u64) as usize];
    let (p, size) = pick(rng);
    if let Ok(f) = OpenOptions::new().write(true).open(p) {
        let _ = f.write_all_at(&pattern(bs + 7, rng.next()), 0);
        let _ = f.write_all_at(b"appended", *size);
        let _ = f.sync_all();
    }
    let (p, size) = pick(rng);
    if let Ok(f) = OpenOptions::new().write(true).open(p) {
        let _ = f.set_len(size / 2);
    }
    let (p, _) = pick(rng);
    let _ = fs::remove_file(p);
}

/// `mkswap`: a version-1 swap header in the first page.
fn mkswap(p: &Path, size: u64) -> bool {
    let page = 4096u64;
    let pages = size / page;
    if pages < 10 {
        return false;
    }
    let mut h = vec![0u8; page as usize];
    h[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    h[1028..1032].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
    h[1036..1052].copy_from_slice(b"swapfs-fuzz-uuid");
    h[page as usize - 10..].copy_from_slice(b"SWAPSPACE2");
    let Ok(f) = OpenOptions::new().write(true).open(p) else {
        return false;
    };
    f.write_all_at(&h, 0).is_ok() && f.sync_all().is_ok()
}

/// Tries swapon on the swapfile (or the largest file); a successful
/// swapon must be undone by swapoff. Returns (swapon worked or why
/// not: its errno, -1 no file, -2 mkswap failed; an error).
fn try_swap(mnt: &Path, found: &Found) -> (Result<(), i32>, Option<String>) {
    let sw = mnt.join("swapfile");
    let cand = match fs::symlink_metadata(&sw) {
        Ok(m) if m.file_type().is_file() => Some((sw, m.len())),
        _ => found.files.iter().max_by_key(|f| f.1).cloned(),
    };
    let Some((p, size)) = cand else {
        return (Err(-1), None);
    };
    if !mkswap(&p, size.min(64 << 20)) {
        return (Err(-2), None);
    }
    match swapon(&p) {
        Ok(()) => match swapoff(&p) {
            Ok(()) => (Ok(()), None),
            Err(e) => (
                Ok(()),
                Some(format!("swapoff {} failed: errno {e}", p.display())),
            ),
        },
        Err(e) => (Err(e), None),
    }
}

fn write_case(dev: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(dev)?;
    f.write_all_at(bytes, 0)?;
    f.sync_all()
}

fn read_back(dev: &Path, len: usize) -> std::io::Result<Vec<u8>> {
    let f = File::open(dev)?;
    let mut v = vec![0u8; len];
    f.read_exact_at(&mut v, 0)?;
    Ok(v)
}

/// One case end to end: (mounted, swapon worked, problems).
fn run_case(
    o: &Options,
    case: &Case,
    k: &mut Kmsg,
    t: &mut Times,
    stats: &mut PerSize,
) -> Vec<String> {
    let mut problems = Vec::new();
    let now = Instant::now();
    if let Err(e) = write_case(&o.dev, &case.bytes) {
        problems.push(format!("writing the image to {}: {e}", o.dev.display()));
        return problems;
    }
    t.write += now.elapsed();
    k.log(&format!(
        "swapfs-fuzz: seed {} ({}-byte blocks)",
        case.seed,
        1u32 << case.log2
    ));
    let mut rng = Rng::new(case.seed ^ 0x0067_7565_7374);
    let (flags, data) = match rng.below(10) {
        0 => (0, "errors=continue"),
        1 => (0, "errors=remount-ro"),
        2 => (libc::MS_RDONLY, ""),
        _ => (0, ""),
    };
    let now = Instant::now();
    let m = mount(&o.dev, &o.mnt, flags, data);
    t.mount += now.elapsed();
    match m {
        Err(e) => *stats.mount_errors.entry(e).or_default() += 1,
        Ok(()) => {
            stats.mounted += 1;
            let now = Instant::now();
            let mut found = Found::default();
            walk(&o.mnt, 0, &mut found);
            if flags & libc::MS_RDONLY == 0 {
                write_ops(&o.mnt, &found, &mut rng, 1 << case.log2);
            }
            let (on, err) = try_swap(&o.mnt, &found);
            match on {
                Ok(()) => stats.swapon += 1,
                Err(e) => *stats.swapon_errors.entry(e).or_default() += 1,
            }
            problems.extend(err);
            syncfs(&o.mnt);
            t.exercise += now.elapsed();
            let now = Instant::now();
            if let Err(e) = umount(&o.mnt, 0) {
                problems.push(format!("umount failed: errno {e}"));
                let _ = umount(&o.mnt, libc::MNT_DETACH);
            }
            t.umount += now.elapsed();
        }
    }
    // fsck on what the kernel left behind: it must not panic.
    if o.fsck_every == 0 || !case.seed.is_multiple_of(o.fsck_every) {
        return problems;
    }
    let now = Instant::now();
    match read_back(&o.dev, case.bytes.len()) {
        Ok(v) => {
            if let Err(p) = fsck::in_process(&v) {
                problems.push(format!("fsck panicked on the image after the mount: {p}"));
            }
        }
        Err(e) => problems.push(format!("reading back {}: {e}", o.dev.display())),
    }
    t.fsck += now.elapsed();
    problems
}

/// The unmutated base images still mount, take writes, swap on and off,
/// unmount and check clean.
fn sanity(o: &Options) -> Vec<String> {
    let mut problems = Vec::new();
    for log2 in BLOCK_SIZES_LOG2 {
        let b = base(log2);
        let what = format!("sanity ({}-byte blocks)", 1u32 << log2);
        if let Err(e) = write_case(&o.dev, &b.bytes) {
            problems.push(format!("{what}: writing the image: {e}"));
            continue;
        }
        if let Err(e) = mount(&o.dev, &o.mnt, 0, "") {
            problems.push(format!("{what}: mount failed: errno {e}"));
            continue;
        }
        let data = pattern(100_000, 7);
        let p = o.mnt.join("sanity");
        let step = fs::write(&p, &data)
            .map_err(|e| format!("write: {e}"))
            .and_then(|()| fs::read(&p).map_err(|e| format!("read back: {e}")))
            .and_then(|v| match v.iter().zip(&data).position(|(a, b)| a != b) {
                _ if v.len() != data.len() => {
                    Err(format!("read back {} bytes, wrote {}", v.len(), data.len()))
                }
                Some(at) => Err(format!("read back differs from byte {at}")),
                None => Ok(()),
            })
            .and_then(|()| fs::remove_file(&p).map_err(|e| format!("unlink: {e}")));
        if let Err(e) = step {
            problems.push(format!("{what}: {e}"));
        }
        let sw = o.mnt.join("swapfile");
        if !mkswap(&sw, crate::corpus::SWAPFILE_BYTES) {
            problems.push(format!("{what}: mkswap failed"));
        } else if let Err(e) = swapon(&sw) {
            problems.push(format!("{what}: swapon failed: errno {e}"));
        } else if let Err(e) = swapoff(&sw) {
            problems.push(format!("{what}: swapoff failed: errno {e}"));
        }
        if let Err(e) = umount(&o.mnt, 0) {
            problems.push(format!("{what}: umount failed: errno {e}"));
            let _ = umount(&o.mnt, libc::MNT_DETACH);
            continue;
        }
        match read_back(&o.dev, b.bytes.len()).map(|v| fsck::in_process(&v)) {
            Ok(Ok(0)) => {}
            Ok(Ok(c)) => problems.push(format!("{what}: fsck exit code {c} after use")),
            Ok(Err(p)) => problems.push(format!("{what}: fsck panicked: {p}")),
            Err(e) => problems.push(format!("{what}: reading back: {e}")),
        }
    }
    let loaded = fs::read_to_string("/proc/modules")
        .is_ok_and(|m| m.lines().any(|l| l.starts_with("swapfs ")));
    if !loaded {
        problems.push("the swapfs module is not loaded any more".into());
    }
    problems
}

fn errname(e: i32) -> String {
    match e {
        libc::EINVAL => "EINVAL".into(),
        libc::EUCLEAN => "EUCLEAN".into(),
        libc::EIO => "EIO".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::EROFS => "EROFS".into(),
        libc::EFBIG => "EFBIG".into(),
        libc::ENOSPC => "ENOSPC".into(),
        libc::EBUSY => "EBUSY".into(),
        libc::EPERM => "EPERM".into(),
        -1 => "no file".into(),
        -2 => "mkswap failed".into(),
        _ => format!("errno {e}"),
    }
}

/// The loop; returns the number of failures.
pub fn run(o: &Options) -> u64 {
    let mut k = match Kmsg::open() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("swapfs-fuzz: /dev/kmsg: {e}");
            return 1;
        }
    };
    let _ = fs::create_dir_all(&o.mnt);
    let started = Instant::now();
    let mut per: BTreeMap<u32, PerSize> = BTreeMap::new();
    let mut t = Times::default();
    let mut failures = 0u64;
    let fail = |seed: Option<u64>, what: &[String], problems: &[String]| {
        match seed {
            Some(s) => println!("FAIL seed {s}"),
            None => println!("FAIL sanity check"),
        }
        for w in what {
            println!("  mutation: {w}");
        }
        for p in problems {
            println!("  {p}");
        }
    };
    // Build the corpus (and check it) before timing cases.
    let p = sanity(o);
    let _ = k.drain();
    if !p.is_empty() {
        fail(None, &[], &p);
        return 1;
    }
    let mut done = 0u64;
    for seed in o.start..o.start.saturating_add(o.count) {
        let now = Instant::now();
        let case = generate(seed);
        t.gen += now.elapsed();
        if o.verbose {
            println!("seed {seed}: {}", case.what.join("; "));
        }
        let stats = per.entry(case.log2).or_default();
        stats.cases += 1;
        let mut problems = run_case(o, &case, &mut k, &mut t, stats);
        let log = k.drain();
        if o.verbose {
            for l in &log {
                println!("  | {l}");
            }
        }
        let splat = log.iter().any(|l| is_splat(l));
        if splat {
            problems.push("kernel splat:".into());
            problems.extend(log.iter().map(|l| format!("  | {l}")));
        }
        done += 1;
        if !problems.is_empty() {
            failures += 1;
            fail(Some(seed), &case.what, &problems);
            if !o.keep_going {
                break;
            }
        }
        if o.sanity_every > 0 && done.is_multiple_of(o.sanity_every) {
            let p = sanity(o);
            let log = k.drain();
            if !p.is_empty() || log.iter().any(|l| is_splat(l)) {
                failures += 1;
                let mut p = p;
                p.extend(log.iter().map(|l| format!("  | {l}")));
                fail(None, &[], &p);
                if !o.keep_going {
                    break;
                }
            }
        }
        if o.progress > 0 && done.is_multiple_of(o.progress) {
            let ms = started.elapsed().as_millis() as u64 / done;
            let mounted: u64 = per.values().map(|s| s.mounted).sum();
            println!(
                "swapfs-fuzz: {done}/{} seeds, {mounted} mounted, {failures} failures, {ms} ms/seed",
                o.count
            );
        }
    }
    if failures == 0 || o.keep_going {
        let p = sanity(o);
        let log = k.drain();
        if !p.is_empty() || log.iter().any(|l| is_splat(l)) {
            failures += 1;
            let mut p = p;
            p.extend(log.iter().map(|l| format!("  | {l}")));
            fail(None, &[], &p);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "swapfs-fuzz: seeds {}..{}: {done} cases in {secs:.0} s ({:.0} ms each)",
        o.start,
        o.start + done,
        if done > 0 {
            secs * 1000.0 / done as f64
        } else {
            0.0
        }
    );
    for (log2, s) in &per {
        let errs: Vec<String> = s
            .mount_errors
            .iter()
            .map(|(e, n)| format!("{} {n}", errname(*e)))
            .collect();
        let swerrs: Vec<String> = s
            .swapon_errors
            .iter()
            .map(|(e, n)| format!("{} {n}", errname(*e)))
            .collect();
        println!(
            "swapfs-fuzz: {}-byte blocks: {} cases, {} mounted, {} swapon; mount refused: {}; \
             swapon refused: {}",
            1u32 << log2,
            s.cases,
            s.mounted,
            s.swapon,
            errs.join(", "),
            swerrs.join(", ")
        );
    }
    let ms = |d: Duration| d.as_millis() as f64 / done.max(1) as f64;
    println!(
        "swapfs-fuzz: ms per case: generate {:.1}, write {:.1}, mount {:.1}, exercise {:.1}, umount {:.1}, fsck {:.1}",
        ms(t.gen),
        ms(t.write),
        ms(t.mount),
        ms(t.exercise),
        ms(t.umount),
        ms(t.fsck)
    );
    println!("swapfs-fuzz: {failures} failures");
    failures
}

/// Which seeds of a range use which block size (for the host summary).
pub fn sizes(start: u64, count: u64) -> BTreeMap<u32, u64> {
    let mut m = BTreeMap::new();
    for s in start..start + count {
        *m.entry(log2_of(s)).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::is_splat;

    #[test]
    fn splats_as_scripts_splats_sees_them() {
        for line in [
            "BUG: KASAN: slab-use-after-free in swapfs_x+0x1/0x2",
            "[   12.5] WARNING: CPU: 0 PID: 1 at fs/x.c:1 f+0x1/0x2",
            "INFO: task kworker/0:1:12 blocked for more than 120 seconds.",
            "rust_kernel: panicked at rust/fs/x.rs:1:1:",
            "Oops: general protection fault, probably for non-canonical address",
            "[ 3.0] ======================================================\n[ 3.0] WARNING: possible circular locking dependency detected",
        ] {
            assert!(is_splat(line), "{line}");
        }
        for line in [
            "swapfs: vda: journal recovery complete, next transaction 5",
            "DEBUG: not a BUG",
            "xWARNING: glued to a word",
            "",
        ] {
            assert!(!is_splat(line), "{line}");
        }
    }
}

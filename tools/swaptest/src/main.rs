// SPDX-License-Identifier: GPL-2.0

//! `swapfs-swaptest`: swap integrity test and usemem-style swap throughput
//! benchmark. See `--help` ([`USAGE`]).

mod bench;
mod cgroup;
mod pattern;
mod stats;
mod sys;
mod worker;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroup::{Cgroup, Limit};
use stats::{BlkStat, CpuTime, SwapArea, SwapfsFile, ThpStats, VmStat};
use sys::Thp;
use worker::Order;

const USAGE: &str = "\
usage: swapfs-swaptest [verify|throughput] [options]
       swapfs-swaptest fragment|swapon-cost ... (benchmark helpers, --help)

Runs worker processes in a memory-limited cgroup v2 whose anonymous memory
exceeds the limit several times, so that it must go to swap, and checks it.

verify (default): every page carries a header (index, seed, pid, worker,
  generation) and a checksum; after the fill (and MADV_PAGEOUT) every page is
  read back in each --order and checked. /proc/vmstat pswpout/pswpin must grow
  by at least the pages that cannot be resident; with --swapfs-debugfs, the
  swapfs counters of the swapfile(s) must equal the vmstat deltas (when they
  are the only active swap), with no IO error and tx_from_swap_io = 0.
throughput: usemem-style. Phase out: each worker writes one word into every
  page of its region under the limit, then MADV_PAGEOUT, until writeback is
  done. Phase in: the limit is lifted and every page is read back. Each
  phase is timed; MiB/s of swap IO and CPU time are reported.

Options:
  --memory-max SIZE      memory.max of the cgroup (default 32M)
  --memory-high SIZE     the limit as memory.high instead (reclaim and
                         throttling past it, no OOM kill), with memory.max
                         at 4x it as a backstop; sizes derive from it as
                         from --memory-max
  --procs N              worker processes (default 2)
  --size SIZE            anonymous memory per worker (default: --ratio x
                         memory-max / procs)
  --ratio R              total memory / memory-max when --size is absent
                         (default 3)
  --cgroup NAME          cgroup to create or join (relative to the cgroup2
                         mount, or absolute); a cgroup this run created is
                         removed at the end (default swapfs-swaptest.<pid>)
  --order LIST           verify: read-back sweeps, comma-separated, of seq
                         and random (default seq,random); throughput: the one
                         order of both phases (default seq)
  --rewrite              verify: every sweep but the last rewrites each page
                         with the next generation after checking it
  --no-pageout           no MADV_PAGEOUT (only the limit pushes pages out)
  --thp                  MADV_HUGEPAGE on the regions (THP 'enabled' is set to
                         madvise for the run if it is never); default is
                         MADV_NOHUGEPAGE
  --mthp all|SIZES       also enable these mTHP sizes (KiB list, e.g. 64,512)
                         as madvise for the run (implies --thp); restored
  --expect-large-folios  fail unless large folios were allocated
  --expect-large-swapout fail unless some large folio was swapped out whole
  --seed N               pattern seed (default: from the clock)
  --swapfs-debugfs FILE  swapfs' swapfiles file (/sys/kernel/debug/swapfs/
                         <dev>/swapfiles); repeatable
  --swapfile PATH        only these swapfiles' lines (repeatable; default all)
  --blkstat DEV          report /sys/class/block/DEV/stat deltas (repeatable)
  --hold FILE            verify: after swap-out, lift memory.max, create FILE,
                         wait until it is removed (swapoff now, for example),
                         then read back
  --until FILE           verify: repeat the --order sweeps (rewriting with
                         --rewrite) until FILE exists, then one last sweep
                         that only checks: swap IO for as long as a caller
                         needs it (it creates FILE when done)
  --hold-timeout SECS    give up waiting for --hold or --until (default 600)
  --settle SECS          wait at most this for in-flight swap IO before
                         reading counters (default 10)
  --no-free-swap-check   do not fail early when free swap is below the run's
                         need (total - memory-max)
  -q, --quiet            only the summary line and the results
  -h, --help

Output: key=value lines, then one summary line starting with PASS or FAIL.
Exit status: 0 if every check held, 1 if one failed, 2 on a usage or setup
error (with a message).
";

/// An error with its explanation.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(s: impl Into<String>) -> Error {
        Error(s.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Verify,
    Throughput,
}

#[derive(Debug)]
struct Opts {
    mode: Mode,
    /// The limit, in bytes, on `limit`.
    limit_bytes: u64,
    limit: Limit,
    procs: usize,
    size: Option<u64>,
    ratio: f64,
    cgroup: Option<String>,
    orders: Option<Vec<Order>>,
    rewrite: bool,
    pageout: bool,
    thp: bool,
    mthp: Option<String>,
    expect_large_folios: bool,
    expect_large_swapout: bool,
    seed: Option<u64>,
    debugfs: Vec<PathBuf>,
    swapfiles: Vec<String>,
    blkstat: Vec<String>,
    hold: Option<PathBuf>,
    until: Option<PathBuf>,
    hold_timeout: f64,
    settle: f64,
    free_swap_check: bool,
    quiet: bool,
    /// The kernel has madvise (probed, not an option).
    madvise: bool,
}

/// Parses "64M", "64MiB", "1G", "4096", "512k".
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix(['B', 'b']).unwrap_or(s);
    let s = s.strip_suffix('i').unwrap_or(s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        (i, 't' | 'T') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_args(args: Vec<String>) -> Result<Option<Opts>, Error> {
    let mut o = Opts {
        mode: Mode::Verify,
        limit_bytes: 32 << 20,
        limit: Limit::Max,
        procs: 2,
        size: None,
        ratio: 3.0,
        cgroup: None,
        orders: None,
        rewrite: false,
        pageout: true,
        thp: false,
        mthp: None,
        expect_large_folios: false,
        expect_large_swapout: false,
        seed: None,
        debugfs: Vec::new(),
        swapfiles: Vec::new(),
        blkstat: Vec::new(),
        hold: None,
        until: None,
        hold_timeout: 600.0,
        settle: 10.0,
        free_swap_check: true,
        quiet: false,
        madvise: true,
    };
    let mut it = args.into_iter().peekable();
    let mut first = true;
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = |what: &str| -> Result<String, Error> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .ok_or_else(|| Error::new(format!("{name} needs {what}"))),
            }
        };
        match name.as_str() {
            "verify" if first => o.mode = Mode::Verify,
            "throughput" | "bench" if first => o.mode = Mode::Throughput,
            "-h" | "--help" => return Ok(None),
            "--memory-max" | "--memory-high" => {
                let v = val("a size")?;
                o.limit_bytes = parse_size(&v)
                    .filter(|&x| x > 0)
                    .ok_or_else(|| Error::new(format!("bad {name} {v:?}")))?;
                o.limit = if name == "--memory-high" {
                    Limit::High
                } else {
                    Limit::Max
                };
            }
            "--procs" => {
                let v = val("a number")?;
                o.procs = v
                    .parse()
                    .ok()
                    .filter(|&n| (1..=256).contains(&n))
                    .ok_or_else(|| Error::new(format!("bad --procs {v:?} (1..256)")))?;
            }
            "--size" => {
                let v = val("a size")?;
                o.size = Some(
                    parse_size(&v)
                        .filter(|&x| x > 0)
                        .ok_or_else(|| Error::new(format!("bad --size {v:?}")))?,
                );
            }
            "--ratio" => {
                let v = val("a number")?;
                o.ratio = v
                    .parse()
                    .ok()
                    .filter(|&r: &f64| r > 0.0)
                    .ok_or_else(|| Error::new(format!("bad --ratio {v:?}")))?;
            }
            "--cgroup" => o.cgroup = Some(val("a name")?),
            "--order" => {
                let v = val("a list")?;
                let l: Option<Vec<Order>> = v.split(',').map(Order::parse).collect();
                o.orders = Some(
                    l.filter(|l| !l.is_empty())
                        .ok_or_else(|| Error::new(format!("bad --order {v:?} (seq, random)")))?,
                );
            }
            "--rewrite" => o.rewrite = true,
            "--no-pageout" => o.pageout = false,
            "--pageout" => o.pageout = true,
            "--thp" => o.thp = true,
            "--mthp" => {
                o.mthp = Some(val("a list")?);
                o.thp = true;
            }
            "--expect-large-folios" => o.expect_large_folios = true,
            "--expect-large-swapout" => o.expect_large_swapout = true,
            "--seed" => {
                let v = val("a number")?;
                o.seed = Some(
                    v.parse()
                        .map_err(|_| Error::new(format!("bad --seed {v:?}")))?,
                );
            }
            "--swapfs-debugfs" => o.debugfs.push(PathBuf::from(val("a file")?)),
            "--swapfile" => o.swapfiles.push(val("a path")?),
            "--blkstat" => o.blkstat.push(val("a device name")?),
            "--hold" => o.hold = Some(PathBuf::from(val("a file")?)),
            "--until" => o.until = Some(PathBuf::from(val("a file")?)),
            "--hold-timeout" | "--settle" => {
                let v = val("seconds")?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|&s: &f64| s >= 0.0)
                    .ok_or_else(|| Error::new(format!("bad {name} {v:?}")))?;
                if name == "--settle" {
                    o.settle = s;
                } else {
                    o.hold_timeout = s;
                }
            }
            "--no-free-swap-check" => o.free_swap_check = false,
            "-q" | "--quiet" => o.quiet = true,
            _ => return Err(Error::new(format!("unknown argument {a:?} (see --help)"))),
        }
        first = false;
    }
    if o.mode == Mode::Throughput {
        if o.orders.as_ref().is_some_and(|l| l.len() != 1) {
            return Err(Error::new("throughput takes one --order (seq or random)"));
        }
        if o.hold.is_some() || o.until.is_some() || o.rewrite {
            return Err(Error::new("--hold, --until and --rewrite are for verify"));
        }
    }
    if o.hold.is_some() && o.until.is_some() {
        return Err(Error::new("--hold and --until do not go together"));
    }
    Ok(Some(o))
}

/// Everything counted at one moment.
#[derive(Clone)]
struct Snapshot {
    at: Instant,
    vm: VmStat,
    cpu: CpuTime,
    swaps: Vec<SwapArea>,
    /// Selected swapfs lines (None without --swapfs-debugfs).
    swapfs: Option<Vec<SwapfsFile>>,
    thp: ThpStats,
    blk: Vec<(String, BlkStat)>,
}

impl Snapshot {
    fn take(o: &Opts) -> Result<Snapshot, Error> {
        let swapfs = if o.debugfs.is_empty() {
            None
        } else {
            Some(stats::read_swapfs(&o.debugfs, &o.swapfiles)?)
        };
        let mut blk = Vec::new();
        for d in &o.blkstat {
            blk.push((d.clone(), BlkStat::read(d)?));
        }
        Ok(Snapshot {
            at: Instant::now(),
            vm: VmStat::read()?,
            cpu: CpuTime::read()?,
            swaps: stats::read_swaps()?,
            swapfs,
            thp: ThpStats::read(),
            blk,
        })
    }

    fn swapfs_paths(&self) -> BTreeSet<String> {
        self.swapfs
            .iter()
            .flatten()
            .map(|f| f.path.clone())
            .collect()
    }
}

/// Swapfs counter deltas between two snapshots over the swapfiles present
/// in both (None if there are none).
fn swapfs_delta(a: &Snapshot, b: &Snapshot, k: &str) -> Option<u64> {
    let (va, vb) = (a.swapfs.as_ref()?, b.swapfs.as_ref()?);
    let mut sum = 0u64;
    let mut any = false;
    for fb in vb {
        if let Some(fa) = va
            .iter()
            .find(|f| f.path == fb.path && f.get("ino") == fb.get("ino"))
        {
            sum += fb.get(k).saturating_sub(fa.get(k));
            any = true;
        }
    }
    any.then_some(sum)
}

/// The results and checks of a run, printed at the end.
#[derive(Default)]
struct Report {
    kv: Vec<(String, String)>,
    checks: Vec<(String, bool, String)>,
}

impl Report {
    fn set(&mut self, k: impl Into<String>, v: impl fmt::Display) {
        self.kv.push((k.into(), v.to_string()));
    }

    fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push((name.to_string(), ok, detail.into()));
    }

    fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.1)
    }
}

/// Sysfs values changed for the run, restored on drop.
#[derive(Default)]
struct Restore(Vec<(PathBuf, String)>);

impl Restore {
    fn set(&mut self, path: PathBuf, value: &str) -> Result<(), Error> {
        let old = stats::read(&path)?;
        // "always [madvise] never" -> "madvise"
        let cur = old
            .split_whitespace()
            .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
            .unwrap_or(old.trim())
            .to_string();
        if cur == value {
            return Ok(());
        }
        fs::write(&path, value)
            .map_err(|e| Error::new(format!("writing {value} to {}: {e}", path.display())))?;
        self.0.push((path, cur));
        Ok(())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        for (p, v) in self.0.iter().rev() {
            if let Err(e) = fs::write(p, v) {
                eprintln!("swapfs-swaptest: restoring {}: {e}", p.display());
            }
        }
    }
}

fn thp_setup(o: &Opts, restore: &mut Restore, r: &mut Report) -> Result<(), Error> {
    if !o.thp {
        r.set("thp", "off");
        return Ok(());
    }
    let top = Path::new(stats::THP_DIR).join("enabled");
    if !top.exists() {
        return Err(Error::new(format!(
            "--thp: {} does not exist (CONFIG_TRANSPARENT_HUGEPAGE off)",
            top.display()
        )));
    }
    let cur = stats::read(&top)?;
    if cur.contains("[never]") {
        restore.set(top.clone(), if o.madvise { "madvise" } else { "always" })?;
    }
    let sizes = stats::thp_sizes();
    let mut enabled = Vec::new();
    if let Some(list) = &o.mthp {
        let want: Vec<u64> = if list == "all" {
            sizes.clone()
        } else {
            list.split(',')
                .map(|x| {
                    let x = x.trim().trim_end_matches("kB").trim_end_matches(['k', 'K']);
                    x.parse()
                        .map_err(|_| Error::new(format!("bad --mthp size {x:?} (KiB)")))
                })
                .collect::<Result<_, _>>()?
        };
        for kb in want {
            if !sizes.contains(&kb) {
                return Err(Error::new(format!(
                    "--mthp: the kernel has no {kb} KiB mTHP size (it offers {sizes:?})"
                )));
            }
            let p = Path::new(stats::THP_DIR).join(format!("hugepages-{kb}kB/enabled"));
            if p.exists() {
                restore.set(p, if o.madvise { "madvise" } else { "always" })?;
                enabled.push(kb);
            }
        }
    }
    let state: Vec<String> = sizes
        .iter()
        .filter_map(|kb| {
            let p = Path::new(stats::THP_DIR).join(format!("hugepages-{kb}kB/enabled"));
            let t = fs::read_to_string(p).ok()?;
            let cur = t
                .split_whitespace()
                .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))?
                .to_string();
            Some(format!("{kb}kB:{cur}"))
        })
        .collect();
    r.set("thp", "madvise");
    r.set("thp.enabled", stats::read(&top)?.trim().replace(' ', "/"));
    r.set("thp.sizes", state.join(","));
    Ok(())
}

/// One worker as the parent sees it.
struct Proc {
    pid: libc::pid_t,
    cmd: File,
    ans: BufReader<File>,
}

/// What a phase took, over all workers.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    wall: f64,
    bad: u64,
    worker_max: f64,
    user: f64,
    sys: f64,
}

struct Workers {
    procs: Vec<Proc>,
    /// The cgroup's memory.events, quoted when a worker dies.
    events: std::path::PathBuf,
}

impl Workers {
    fn start(
        o: &Opts,
        cg: &Cgroup,
        pages: usize,
        page_size: usize,
        seed: u64,
    ) -> Result<Workers, Error> {
        let mut w = Workers {
            procs: Vec::new(),
            events: cg.path.join("memory.events"),
        };
        for i in 0..o.procs {
            let (cmd_r, cmd_w) = sys::pipe()?;
            let (ans_r, ans_w) = sys::pipe()?;
            // Flush before forking so that nothing is printed twice.
            let _ = std::io::stdout().flush();
            match sys::fork()? {
                sys::Forked::Child => {
                    // Close the parent's ends, ours and the earlier workers'.
                    drop(cmd_w);
                    drop(ans_r);
                    for p in w.procs.drain(..) {
                        drop(p);
                    }
                    let cfg = worker::Config {
                        worker: i as u32,
                        pages,
                        page_size,
                        seed,
                        thp: match (o.madvise, o.thp) {
                            (false, _) => Thp::None,
                            (true, true) => Thp::Huge,
                            (true, false) => Thp::NoHuge,
                        },
                        max_reports: 10,
                    };
                    worker::run(
                        cfg,
                        cg,
                        worker::Pipes {
                            commands: cmd_r,
                            answers: ans_w,
                        },
                    );
                }
                sys::Forked::Parent(pid) => {
                    drop(cmd_r);
                    drop(ans_w);
                    w.procs.push(Proc {
                        pid,
                        cmd: cmd_w,
                        ans: BufReader::new(ans_r),
                    });
                }
            }
        }
        for i in 0..w.procs.len() {
            let line = w.answer(i)?;
            if line != "ready" {
                return Err(Error::new(format!("worker {i}: unexpected {line:?}")));
            }
        }
        Ok(w)
    }

    /// The next answer of worker `i`; an error explains a dead worker.
    fn answer(&mut self, i: usize) -> Result<String, Error> {
        let p = &mut self.procs[i];
        let mut line = String::new();
        match p.ans.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let how = sys::wait(p.pid).unwrap_or_else(|e| e.to_string());
                // Reaped: do not wait for it again.
                p.pid = 0;
                // Say whether the cgroup's OOM killer did it.
                let events = std::fs::read_to_string(&self.events)
                    .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                Err(Error::new(format!(
                    "worker {i} died: {} (memory.events: {events})",
                    if how.is_empty() {
                        "exited".to_string()
                    } else {
                        how
                    }
                )))
            }
            Ok(_) => {
                let l = line.trim_end().to_string();
                match l.strip_prefix("err ") {
                    Some(m) => Err(Error::new(format!("worker {i}: {m}"))),
                    None => Ok(l),
                }
            }
        }
    }

    /// Sends `cmd` to every worker, waits for all answers.
    fn phase(&mut self, cmd: &str) -> Result<Phase, Error> {
        let t0 = Instant::now();
        for (i, p) in self.procs.iter_mut().enumerate() {
            writeln!(p.cmd, "{cmd}")
                .map_err(|e| Error::new(format!("sending {cmd:?} to worker {i}: {e}")))?;
        }
        let mut ph = Phase::default();
        for i in 0..self.procs.len() {
            let l = self.answer(i)?;
            let f: Vec<&str> = l.split_whitespace().collect();
            let parsed = match f.as_slice() {
                ["ok", bad, secs, user, sys] => (|| {
                    Some((
                        bad.parse::<u64>().ok()?,
                        secs.parse::<f64>().ok()?,
                        user.parse::<f64>().ok()?,
                        sys.parse::<f64>().ok()?,
                    ))
                })(),
                _ => None,
            };
            let (bad, secs, user, sys) =
                parsed.ok_or_else(|| Error::new(format!("worker {i}: unexpected answer {l:?}")))?;
            ph.bad += bad;
            ph.worker_max = ph.worker_max.max(secs);
            ph.user += user;
            ph.sys += sys;
        }
        ph.wall = t0.elapsed().as_secs_f64();
        Ok(ph)
    }

    /// Asks every worker to exit and reaps it.
    fn finish(&mut self) -> Result<(), Error> {
        let mut err = None;
        for (i, p) in self.procs.iter_mut().enumerate() {
            let _ = writeln!(p.cmd, "exit");
            if p.pid != 0 {
                let how = sys::wait(p.pid)?;
                p.pid = 0;
                if !how.is_empty() && err.is_none() {
                    err = Some(Error::new(format!("worker {i} {how}")));
                }
            }
        }
        self.procs.clear();
        err.map_or(Ok(()), Err)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for p in &self.procs {
            if p.pid != 0 {
                sys::kill(p.pid);
                let _ = sys::wait(p.pid);
            }
        }
    }
}

/// Waits until no page is under writeback and, if the swapfs lines cover
/// all active swap, until their counters agree with vmstat since `base`.
fn settle(o: &Opts, base: Option<&Snapshot>, covers: bool) -> Result<Snapshot, Error> {
    let start = Instant::now();
    loop {
        let s = Snapshot::take(o)?;
        let mut quiet = s.vm.nr_writeback == 0;
        if let (Some(b), true) = (base, covers) {
            let out = swapfs_delta(b, &s, "pages_out");
            let inn = swapfs_delta(b, &s, "pages_in");
            if let (Some(out), Some(inn)) = (out, inn) {
                quiet &= out == s.vm.pswpout - b.vm.pswpout && inn == s.vm.pswpin - b.vm.pswpin;
            }
        }
        if quiet || start.elapsed().as_secs_f64() >= o.settle {
            return Ok(s);
        }
        sleep(Duration::from_millis(20));
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn free_swap_bytes(swaps: &[SwapArea]) -> u64 {
    swaps
        .iter()
        .map(|s| s.size_kib.saturating_sub(s.used_kib) * 1024)
        .sum()
}

/// Everything a run shares between the modes.
struct Setup {
    page_size: usize,
    pages: usize,
    total_pages: u64,
    limit_pages: u64,
    seed: u64,
    cg: Cgroup,
}

fn setup(o: &Opts, r: &mut Report) -> Result<Setup, Error> {
    let page_size = sys::page_size();
    let size = match o.size {
        Some(s) => s,
        None => (o.limit_bytes as f64 * o.ratio / o.procs as f64) as u64,
    };
    let pages =
        usize::try_from(size / page_size as u64).map_err(|_| Error::new("--size too large"))?;
    if pages == 0 {
        return Err(Error::new(format!("--size {size} is below one page")));
    }
    let total_pages = pages as u64 * o.procs as u64;
    let limit_pages = o.limit_bytes / page_size as u64;
    let seed = o.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        pattern::mix(t ^ u64::from(std::process::id())) % 1_000_000_007
    });
    let swaps = stats::read_swaps()?;
    if swaps.is_empty() {
        return Err(Error::new("no active swap area (/proc/swaps is empty)"));
    }
    let need = (total_pages.saturating_sub(limit_pages)) * page_size as u64;
    if o.free_swap_check && free_swap_bytes(&swaps) < need {
        return Err(Error::new(format!(
            "not enough free swap: the run needs at least {:.1} MiB, {:.1} MiB are free",
            mib(need),
            mib(free_swap_bytes(&swaps))
        )));
    }
    let name = o
        .cgroup
        .clone()
        .unwrap_or_else(|| format!("swapfs-swaptest.{}", std::process::id()));
    let cg = Cgroup::setup(&name, o.limit_bytes, o.limit)?;
    r.set(
        "mode",
        match o.mode {
            Mode::Verify => "verify",
            Mode::Throughput => "throughput",
        },
    );
    r.set("kernel", sys::uname_release());
    r.set("page_size", page_size);
    r.set("procs", o.procs);
    r.set("pages_per_proc", pages);
    r.set("total_pages", total_pages);
    r.set(
        "total_mib",
        format!("{:.1}", mib(total_pages * page_size as u64)),
    );
    r.set(o.limit.knob().replace('.', "_"), o.limit_bytes);
    r.set("limit_pages", limit_pages);
    r.set("seed", seed);
    r.set("cgroup", cg.path.display());
    r.set(
        "swaps",
        swaps
            .iter()
            .map(|s| format!("{}:{}:prio{}", s.path, s.kind, s.prio))
            .collect::<Vec<_>>()
            .join(","),
    );
    Ok(Setup {
        page_size,
        pages,
        total_pages,
        limit_pages,
        seed,
        cg,
    })
}

/// Whether the selected swapfs lines are all of the active swap, so that
/// their counters must equal vmstat's.
fn covers_all_swap(s: &Snapshot) -> bool {
    let sel = s.swapfs_paths();
    !sel.is_empty() && s.swaps.iter().all(|a| sel.contains(&a.path))
}

/// Counter checks over [a, b]: vmstat lower bounds, and swapfs equality.
fn counter_checks(
    r: &mut Report,
    tag: &str,
    a: &Snapshot,
    b: &Snapshot,
    min_out: u64,
    min_in: u64,
    covers: bool,
) {
    let out = b.vm.pswpout - a.vm.pswpout;
    let inn = b.vm.pswpin - a.vm.pswpin;
    r.set(format!("{tag}pswpout"), out);
    r.set(format!("{tag}pswpin"), inn);
    r.set(format!("{tag}expect_pswpout_min"), min_out);
    r.set(format!("{tag}expect_pswpin_min"), min_in);
    r.check(
        &format!("{tag}pswpout"),
        out >= min_out,
        format!("pswpout grew by {out}, expected at least {min_out}"),
    );
    r.check(
        &format!("{tag}pswpin"),
        inn >= min_in,
        format!("pswpin grew by {inn}, expected at least {min_in}"),
    );
    let (Some(fa), Some(fb)) = (&a.swapfs, &b.swapfs) else {
        return;
    };
    if fa.is_empty() {
        r.check(
            &format!("{tag}swapfs_present"),
            false,
            "no selected swapfile in the swapfs debugfs file(s)".to_string(),
        );
        return;
    }
    let d = |k: &str| swapfs_delta(a, b, k);
    let (Some(so), Some(si)) = (d("pages_out"), d("pages_in")) else {
        r.check(
            &format!("{tag}swapfs_present"),
            false,
            "the selected swapfiles disappeared from debugfs".to_string(),
        );
        return;
    };
    let bios = d("bios").unwrap_or(0);
    r.set(format!("{tag}swapfs.pages_out"), so);
    r.set(format!("{tag}swapfs.pages_in"), si);
    r.set(format!("{tag}swapfs.bios"), bios);
    if bios > 0 {
        r.set(
            format!("{tag}swapfs.pages_per_bio"),
            format!("{:.2}", (so + si) as f64 / bios as f64),
        );
    }
    if covers {
        r.check(
            &format!("{tag}swapfs_pages_out_eq_pswpout"),
            so == out,
            format!("swapfs pages_out grew by {so}, pswpout by {out}"),
        );
        r.check(
            &format!("{tag}swapfs_pages_in_eq_pswpin"),
            si == inn,
            format!("swapfs pages_in grew by {si}, pswpin by {inn}"),
        );
    } else {
        r.check(
            &format!("{tag}swapfs_pages_out_le_pswpout"),
            so <= out,
            format!("swapfs pages_out grew by {so}, pswpout by {out} (other swap is active)"),
        );
        r.check(
            &format!("{tag}swapfs_pages_in_le_pswpin"),
            si <= inn,
            format!("swapfs pages_in grew by {si}, pswpin by {inn} (other swap is active)"),
        );
    }
    for k in ["write_errors", "read_errors"] {
        let v = d(k).unwrap_or(0);
        r.set(format!("{tag}swapfs.{k}"), v);
        r.check(
            &format!("{tag}swapfs_no_{k}"),
            v == 0,
            format!("swapfs counted {v} {k}"),
        );
    }
    let tx: u64 = fb.iter().map(|f| f.get("tx_from_swap_io")).sum();
    r.set(format!("{tag}swapfs.tx_from_swap_io"), tx);
    r.check(
        &format!("{tag}swapfs_tx_from_swap_io_zero"),
        tx == 0,
        format!("tx_from_swap_io is {tx}"),
    );
}

fn report_swapfs_files(r: &mut Report, s: &Snapshot) {
    if let Some(v) = &s.swapfs {
        r.set("swapfs.files", v.len());
        for (i, f) in v.iter().enumerate() {
            r.set(format!("swapfs.{i}.path"), &f.path);
            for k in [
                "runs",
                "pages",
                "table_bytes",
                "pages_out",
                "pages_in",
                "bios",
            ] {
                r.set(format!("swapfs.{i}.{k}"), f.get(k));
            }
        }
    }
}

fn thp_report(o: &Opts, r: &mut Report, a: &Snapshot, b: &Snapshot) {
    if !o.thp {
        return;
    }
    let alloc = b.thp.delta(&a.thp, "anon_fault_alloc");
    let swpout = b.thp.delta(&a.thp, "swpout");
    let fallback = b.thp.delta(&a.thp, "swpout_fallback");
    r.set(
        "thp.fault_alloc",
        b.thp.delta_by_size(&a.thp, "anon_fault_alloc"),
    );
    r.set("thp.swpout", b.thp.delta_by_size(&a.thp, "swpout"));
    r.set(
        "thp.swpout_fallback",
        b.thp.delta_by_size(&a.thp, "swpout_fallback"),
    );
    r.set("thp.swpin", b.thp.delta_by_size(&a.thp, "swpin"));
    r.set("vmstat.thp_swpout", b.vm.thp_swpout - a.vm.thp_swpout);
    r.set(
        "vmstat.thp_swpout_fallback",
        b.vm.thp_swpout_fallback - a.vm.thp_swpout_fallback,
    );
    if o.expect_large_folios {
        r.check(
            "large_folios_allocated",
            alloc > 0,
            format!("{alloc} large folios allocated at fault"),
        );
    }
    if o.expect_large_swapout {
        r.check(
            "large_folios_swapped_out",
            swpout > 0,
            format!("{swpout} large folios swapped out whole, {fallback} split first"),
        );
    }
}

fn blk_report(r: &mut Report, tag: &str, a: &Snapshot, b: &Snapshot) {
    for ((dev, sa), (_, sb)) in a.blk.iter().zip(&b.blk) {
        let d = sb.since(sa);
        r.set(format!("{tag}blk.{dev}.read_ios"), d.read_ios);
        r.set(format!("{tag}blk.{dev}.read_merges"), d.read_merges);
        r.set(format!("{tag}blk.{dev}.read_kib"), d.read_sectors / 2);
        r.set(format!("{tag}blk.{dev}.write_ios"), d.write_ios);
        r.set(format!("{tag}blk.{dev}.write_merges"), d.write_merges);
        r.set(format!("{tag}blk.{dev}.write_kib"), d.write_sectors / 2);
        r.set(format!("{tag}blk.{dev}.discard_ios"), d.discard_ios);
        if d.read_ios > 0 {
            r.set(
                format!("{tag}blk.{dev}.read_kib_per_io"),
                format!("{:.1}", d.read_sectors as f64 / 2.0 / d.read_ios as f64),
            );
        }
        if d.write_ios > 0 {
            r.set(
                format!("{tag}blk.{dev}.write_kib_per_io"),
                format!("{:.1}", d.write_sectors as f64 / 2.0 / d.write_ios as f64),
            );
        }
    }
}

/// Whether read-back sweep `k` (from 0) is the last: without `--until`
/// (`until` None), the last of the `orders` sweeps; with it, the first
/// sweep that starts once the file exists (`until` Some(true)): the sweeps
/// before it may rewrite every page, this one only checks.
fn last_sweep(k: usize, orders: usize, until: Option<bool>) -> bool {
    match until {
        None => k + 1 >= orders,
        Some(seen) => seen,
    }
}

fn run_verify(o: &Opts, r: &mut Report) -> Result<String, Error> {
    let orders = o.orders.clone().unwrap_or(vec![Order::Seq, Order::Random]);
    let mut restore = Restore::default();
    thp_setup(o, &mut restore, r)?;
    let st = setup(o, r)?;
    r.set(
        "orders",
        orders
            .iter()
            .map(|x| x.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    r.set("rewrite", u8::from(o.rewrite));
    r.set("pageout", u8::from(o.pageout));
    let result = verify_body(o, r, &st, &orders);
    let cleanup = st.cg.cleanup();
    drop(restore);
    let summary = result?;
    cleanup?;
    Ok(summary)
}

fn verify_body(o: &Opts, r: &mut Report, st: &Setup, orders: &[Order]) -> Result<String, Error> {
    let t0 = Instant::now();
    let s0 = settle(o, None, false)?;
    let covers = covers_all_swap(&s0);
    if o.debugfs.is_empty() {
        r.set("swapfs", "not checked");
    } else {
        r.set("swapfs.covers_all_swap", u8::from(covers));
    }
    let oom0 = st.cg.event("oom_kill");
    let mut w = Workers::start(o, &st.cg, st.pages, st.page_size, st.seed)?;
    let fill = w.phase(&format!("fill 0 {}", orders[0].name()))?;
    let mut gen = 0u64;
    r.set("fill.secs", format!("{:.3}", fill.wall));
    if o.pageout {
        w.phase("pageout")?;
    }
    let s1 = settle(o, Some(&s0), covers)?;
    let excess = st.total_pages.saturating_sub(st.limit_pages);
    r.set("swapped_out.pswpout", s1.vm.pswpout - s0.vm.pswpout);
    let mut hold_snap = None;
    if let Some(hold) = &o.hold {
        // Nothing must be forced back in by the limit while the caller acts
        // (a swapoff charges every page back to the cgroup).
        st.cg.lift()?;
        fs::write(hold, format!("pid={}\n", std::process::id()))
            .map_err(|e| Error::new(format!("creating {}: {e}", hold.display())))?;
        if !o.quiet {
            eprintln!(
                "swapfs-swaptest: swapped out; holding until {} is removed",
                hold.display()
            );
        }
        let start = Instant::now();
        while hold.exists() {
            if start.elapsed().as_secs_f64() > o.hold_timeout {
                let _ = fs::remove_file(hold);
                return Err(Error::new(format!(
                    "{} was not removed within {}s",
                    hold.display(),
                    o.hold_timeout
                )));
            }
            sleep(Duration::from_millis(50));
        }
        let sh = settle(o, Some(&s1), false)?;
        r.set("hold.secs", format!("{:.3}", start.elapsed().as_secs_f64()));
        r.set("hold.pswpin", sh.vm.pswpin - s1.vm.pswpin);
        hold_snap = Some(sh);
    }
    let mut bad = 0u64;
    let mut sweeps = Vec::new();
    let start = Instant::now();
    for k in 0.. {
        let order = orders[k % orders.len()];
        let until = match &o.until {
            Some(f) if start.elapsed().as_secs_f64() > o.hold_timeout => {
                return Err(Error::new(format!(
                    "{} did not appear within {}s",
                    f.display(),
                    o.hold_timeout
                )))
            }
            Some(f) => Some(f.exists()),
            None => None,
        };
        let last = last_sweep(k, orders.len(), until);
        let newgen = (o.rewrite && !last).then_some(gen + 1);
        let ph = w.phase(&format!(
            "verify {gen} {} {}",
            order.name(),
            newgen.map_or("-".to_string(), |g| g.to_string())
        ))?;
        bad += ph.bad;
        r.set(format!("sweep{k}.order"), order.name());
        r.set(format!("sweep{k}.bad_pages"), ph.bad);
        r.set(format!("sweep{k}.secs"), format!("{:.3}", ph.wall));
        sweeps.push(ph);
        if let Some(g) = newgen {
            gen = g;
        }
        if last {
            break;
        }
        if o.pageout {
            w.phase("pageout")?;
        }
    }
    let nsweeps = sweeps.len() as u64;
    r.set("sweeps", nsweeps);
    w.finish()?;
    let s2 = settle(o, Some(&s0), covers)?;
    r.set("elapsed_secs", format!("{:.3}", t0.elapsed().as_secs_f64()));
    r.set("bad_pages", bad);
    r.check("every_page_verified", bad == 0, format!("{bad} bad pages"));
    let oom = st.cg.event("oom_kill") - oom0;
    r.set("oom_kills", oom);
    r.check(
        "no_oom_kill",
        oom == 0,
        format!("{oom} OOM kills in the cgroup"),
    );

    // Lower bounds: whatever cannot be resident under the limit must have
    // gone out, and must come back in at each sweep that runs under it.
    let rewrites = if o.rewrite { nsweeps - 1 } else { 0 };
    let min_out = excess * (1 + rewrites);
    let min_in = if o.hold.is_some() {
        excess
    } else {
        excess * nsweeps
    };
    report_swapfs_files(r, &s2);
    thp_report(o, r, &s0, &s2);
    blk_report(r, "", &s0, &s2);
    match &hold_snap {
        Some(h) if h.swapfs_paths() != s0.swapfs_paths() => {
            // The swapfile went away during the hold (swapoff): its counters
            // are gone; check them up to the hold, and that the swapoff read
            // back every page that was out.
            r.set("hold.swapfile_gone", 1);
            counter_checks(r, "", &s0, &s1, excess, 0, covers);
            let inn = h.vm.pswpin - s1.vm.pswpin;
            r.check(
                "swapoff_read_back",
                inn >= excess,
                format!("pswpin grew by {inn} during the hold, {excess} pages were out at least"),
            );
            let after = s2.vm.pswpin - h.vm.pswpin;
            if h.swaps.is_empty() {
                r.check(
                    "no_swapin_after_swapoff",
                    after == 0,
                    format!("pswpin grew by {after} after swapoff with no swap active"),
                );
            }
        }
        _ => counter_checks(r, "", &s0, &s2, min_out, min_in, covers),
    }
    Ok(format!(
        "verify: {} procs x {} pages ({:.0} MiB, {:.1}x {} {:.0} MiB), {} sweeps ({}): {} bad pages; pswpout +{}, pswpin +{}{}",
        o.procs,
        st.pages,
        mib(st.total_pages * st.page_size as u64),
        st.total_pages as f64 / st.limit_pages.max(1) as f64,
        o.limit.knob(),
        mib(o.limit_bytes),
        nsweeps,
        orders
            .iter()
            .cycle()
            .take(sweeps.len())
            .map(|x| x.name())
            .collect::<Vec<_>>()
            .join(","),
        bad,
        s2.vm.pswpout - s0.vm.pswpout,
        s2.vm.pswpin - s0.vm.pswpin,
        match (&s0.swapfs, covers) {
            (None, _) => String::new(),
            (Some(_), true) => "; swapfs counters checked against vmstat".to_string(),
            (Some(_), false) => "; swapfs counters checked (other swap active)".to_string(),
        }
    ))
}

fn run_throughput(o: &Opts, r: &mut Report) -> Result<String, Error> {
    let order = o.orders.as_ref().map_or(Order::Seq, |l| l[0]);
    let mut restore = Restore::default();
    thp_setup(o, &mut restore, r)?;
    let st = setup(o, r)?;
    r.set("order", order.name());
    r.set("pageout", u8::from(o.pageout));
    let result = throughput_body(o, r, &st, order);
    let cleanup = st.cg.cleanup();
    drop(restore);
    let summary = result?;
    cleanup?;
    Ok(summary)
}

fn phase_report(r: &mut Report, tag: &str, ps: u64, ph: &Phase, a: &Snapshot, b: &Snapshot) {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let out = b.vm.pswpout - a.vm.pswpout;
    let inn = b.vm.pswpin - a.vm.pswpin;
    let cpu = b.cpu.since(&a.cpu);
    let swap_bytes = if tag == "out" { out * ps } else { inn * ps };
    r.set(format!("{tag}.secs"), format!("{secs:.3}"));
    r.set(
        format!("{tag}.worker_secs"),
        format!("{:.3}", ph.worker_max),
    );
    r.set(format!("{tag}.pswpout"), out);
    r.set(format!("{tag}.pswpin"), inn);
    r.set(format!("{tag}.swap_mib"), format!("{:.1}", mib(swap_bytes)));
    r.set(
        format!("{tag}.swap_mib_s"),
        format!("{:.2}", mib(swap_bytes) / secs),
    );
    r.set(format!("{tag}.sys_secs"), format!("{:.2}", cpu.system));
    r.set(
        format!("{tag}.irq_secs"),
        format!("{:.2}", cpu.irq + cpu.softirq),
    );
    r.set(format!("{tag}.user_secs"), format!("{:.2}", cpu.user));
    r.set(format!("{tag}.iowait_secs"), format!("{:.2}", cpu.iowait));
    r.set(format!("{tag}.worker_sys_secs"), format!("{:.3}", ph.sys));
    r.set(format!("{tag}.worker_user_secs"), format!("{:.3}", ph.user));
    // How mm batched the phase's pages into swap IOs (one swap_iocb each,
    // on every backend), to compare with the bios and requests below.
    let (x, y, pages) = if tag == "out" {
        (a.vm.swap_ios_out, b.vm.swap_ios_out, out)
    } else {
        (a.vm.swap_ios_in, b.vm.swap_ios_in, inn)
    };
    if let (Some(x), Some(y)) = (x, y) {
        let n = y.saturating_sub(x);
        r.set(format!("{tag}.mm_swap_ios"), n);
        if n > 0 {
            r.set(
                format!("{tag}.mm_pages_per_swap_io"),
                format!("{:.2}", pages as f64 / n as f64),
            );
        }
    }
    if let (Some(so), Some(si), Some(bios)) = (
        swapfs_delta(a, b, "pages_out"),
        swapfs_delta(a, b, "pages_in"),
        swapfs_delta(a, b, "bios"),
    ) {
        r.set(format!("{tag}.swapfs.pages_out"), so);
        r.set(format!("{tag}.swapfs.pages_in"), si);
        r.set(format!("{tag}.swapfs.bios"), bios);
        if bios > 0 {
            r.set(
                format!("{tag}.swapfs.pages_per_bio"),
                format!("{:.2}", (so + si) as f64 / bios as f64),
            );
        }
    }
    blk_report(r, &format!("{tag}."), a, b);
}

fn throughput_body(o: &Opts, r: &mut Report, st: &Setup, order: Order) -> Result<String, Error> {
    let s_start = settle(o, None, false)?;
    let covers = covers_all_swap(&s_start);
    let oom0 = st.cg.event("oom_kill");
    let mut w = Workers::start(o, &st.cg, st.pages, st.page_size, st.seed)?;
    let ps = st.page_size as u64;

    // Phase out: write everything under the limit, push the rest out, wait
    // for the writeback to end.
    let a = Snapshot::take(o)?;
    let mut out = w.phase(&format!("out {}", order.name()))?;
    if o.pageout {
        let p = w.phase("pageout")?;
        out.worker_max += p.worker_max;
        out.sys += p.sys;
        out.user += p.user;
    }
    let b = settle(o, None, false)?;
    // Phase in: lift the limit, read everything back.
    st.cg.lift()?;
    let b2 = Snapshot::take(o)?;
    let inp = w.phase(&format!("in {}", order.name()))?;
    let c = settle(o, None, false)?;
    w.finish()?;
    let end = settle(o, Some(&s_start), covers)?;

    phase_report(r, "out", ps, &out, &a, &b);
    phase_report(r, "in", ps, &inp, &b2, &c);
    r.set("bad_pages", inp.bad);
    r.check(
        "every_page_read_back",
        inp.bad == 0,
        format!("{} pages read back wrong", inp.bad),
    );
    let oom = st.cg.event("oom_kill") - oom0;
    r.set("oom_kills", oom);
    r.check(
        "no_oom_kill",
        oom == 0,
        format!("{oom} OOM kills in the cgroup"),
    );
    let excess = st.total_pages.saturating_sub(st.limit_pages);
    report_swapfs_files(r, &end);
    thp_report(o, r, &s_start, &end);
    counter_checks(r, "total.", &s_start, &end, excess, excess, covers);
    let secs = |x: &Snapshot, y: &Snapshot| y.at.duration_since(x.at).as_secs_f64().max(1e-9);
    Ok(format!(
        "throughput {}: {} procs x {:.0} MiB, {} {:.0} MiB: out {:.1} MiB/s ({:.1} MiB in {:.2}s), in {:.1} MiB/s ({:.1} MiB in {:.2}s)",
        order.name(),
        o.procs,
        mib(st.pages as u64 * ps),
        o.limit.knob(),
        mib(o.limit_bytes),
        mib((b.vm.pswpout - a.vm.pswpout) * ps) / secs(&a, &b),
        mib((b.vm.pswpout - a.vm.pswpout) * ps),
        secs(&a, &b),
        mib((c.vm.pswpin - b2.vm.pswpin) * ps) / secs(&b2, &c),
        mib((c.vm.pswpin - b2.vm.pswpin) * ps),
        secs(&b2, &c),
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The benchmark helpers.
    let helper = match args.first().map(String::as_str) {
        Some("fragment") => Some(bench::fragment as fn(Vec<String>) -> _),
        Some("swapon-cost") => Some(bench::swapon_cost as fn(Vec<String>) -> _),
        _ => None,
    };
    if let Some(f) = helper {
        return match f(args[1..].to_vec()) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("swapfs-swaptest: {e}");
                ExitCode::from(2)
            }
        };
    }
    let o = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("swapfs-swaptest: {e}");
            return ExitCode::from(2);
        }
    };
    let mut o = o;
    let mut r = Report::default();
    o.madvise = sys::have_madvise();
    if !o.madvise {
        // Without madvise there is no MADV_PAGEOUT and no THP advice: the
        // limit alone pushes pages out, THP follows the system policy.
        r.set("madvise", "unavailable");
        eprintln!("swapfs-swaptest: madvise(2) is not available (CONFIG_ADVISE_SYSCALLS off): no MADV_PAGEOUT, no THP advice");
        o.pageout = false;
    }
    let res = match o.mode {
        Mode::Verify => run_verify(&o, &mut r),
        Mode::Throughput => run_throughput(&o, &mut r),
    };
    let summary = match res {
        Ok(s) => s,
        Err(e) => {
            for (k, v) in &r.kv {
                println!("{k}={v}");
            }
            println!("result=error");
            eprintln!("swapfs-swaptest: error: {e}");
            println!("ERROR swapfs-swaptest: {e}");
            return ExitCode::from(2);
        }
    };
    let pass = r.passed();
    for (k, v) in &r.kv {
        println!("{k}={v}");
    }
    for (name, ok, detail) in &r.checks {
        println!("check.{name}={}", if *ok { "ok" } else { "FAIL" });
        if !ok {
            eprintln!("swapfs-swaptest: check {name} failed: {detail}");
        } else if !o.quiet {
            eprintln!("swapfs-swaptest: check {name}: {detail}");
        }
    }
    let failed: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| !c.1)
        .map(|c| c.0.as_str())
        .collect();
    println!("result={}", if pass { "pass" } else { "fail" });
    if pass {
        println!("PASS swapfs-swaptest {summary}");
        ExitCode::SUCCESS
    } else {
        println!(
            "FAIL swapfs-swaptest {summary}; failed: {}",
            failed.join(", ")
        );
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("2Mi"), Some(2 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn options() {
        let o = parse_args(args(
            "--memory-max 16M --procs 3 --order random,seq --rewrite",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(o.mode, Mode::Verify);
        assert_eq!(o.limit_bytes, 16 << 20);
        assert_eq!(o.limit, Limit::Max);
        assert_eq!(o.procs, 3);
        assert_eq!(o.orders, Some(vec![Order::Random, Order::Seq]));
        assert!(o.rewrite);
        let o = parse_args(args("--memory-high 8M")).unwrap().unwrap();
        assert_eq!((o.limit_bytes, o.limit), (8 << 20, Limit::High));
        assert!(parse_args(args("--memory-high 0")).is_err());
        let o = parse_args(args("throughput --order=random --size=64M"))
            .unwrap()
            .unwrap();
        assert_eq!(o.mode, Mode::Throughput);
        assert_eq!(o.size, Some(64 << 20));
        assert!(parse_args(args("throughput --order seq,random")).is_err());
        assert!(parse_args(args("--bogus")).is_err());
        assert!(parse_args(args("--procs 0")).is_err());
        assert!(parse_args(args("--procs")).is_err());
        assert!(parse_args(args("--help")).unwrap().is_none());
        let o = parse_args(args("--mthp 64,2048")).unwrap().unwrap();
        assert!(o.thp);
        let o = parse_args(args("--until /tmp/stop --rewrite"))
            .unwrap()
            .unwrap();
        assert_eq!(o.until, Some(PathBuf::from("/tmp/stop")));
        assert!(parse_args(args("--until /a --hold /b")).is_err());
        assert!(parse_args(args("throughput --until /a")).is_err());
    }

    #[test]
    fn sweeps() {
        // Without --until: exactly the listed sweeps.
        let n = (0..).take_while(|&k| !last_sweep(k, 3, None)).count() + 1;
        assert_eq!(n, 3);
        assert!(last_sweep(0, 1, None));
        // With it: sweeps go on, past the list's length, until the file is
        // seen; the sweep that starts then is the last one.
        assert!(!last_sweep(0, 2, Some(false)));
        assert!(!last_sweep(7, 2, Some(false)));
        assert!(last_sweep(0, 2, Some(true)));
        assert!(last_sweep(9, 2, Some(true)));
    }
}

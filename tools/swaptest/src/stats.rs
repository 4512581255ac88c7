// SPDX-License-Identifier: GPL-2.0

//! Snapshots of what the kernel counts: `/proc/vmstat`, CPU time from
//! `/proc/stat`, the active swap areas (`/proc/swaps`), swapfs' per-swapfile
//! counters (debugfs), block device statistics and THP/mTHP statistics.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// Reads a whole file, with the path in the error.
pub fn read(path: impl AsRef<Path>) -> Result<String, Error> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| Error::new(format!("reading {}: {e}", path.display())))
}

/// `/proc/vmstat` as name → value.
pub fn parse_vmstat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The vmstat counters the tests use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStat {
    pub pswpout: u64,
    pub pswpin: u64,
    pub nr_writeback: u64,
    pub thp_swpout: u64,
    pub thp_swpout_fallback: u64,
    pub swap_ra: u64,
    /// mm's swap IOs (`swap_iocb`s submitted): `nrswpout`, `nrswpin`;
    /// `None` where the kernel does not count them (before 7.3).
    pub swap_ios_out: Option<u64>,
    pub swap_ios_in: Option<u64>,
}

impl VmStat {
    pub fn read() -> Result<VmStat, Error> {
        VmStat::parse(&read("/proc/vmstat")?)
    }

    /// The counters from the text of `/proc/vmstat`.
    pub fn parse(text: &str) -> Result<VmStat, Error> {
        let m = parse_vmstat(text);
        let get = |k: &str| m.get(k).copied();
        Ok(VmStat {
            pswpout: get("pswpout")
                .ok_or_else(|| Error::new("/proc/vmstat has no pswpout (CONFIG_SWAP off?)"))?,
            pswpin: get("pswpin").unwrap_or(0),
            nr_writeback: get("nr_writeback").unwrap_or(0),
            thp_swpout: get("thp_swpout").unwrap_or(0),
            thp_swpout_fallback: get("thp_swpout_fallback").unwrap_or(0),
            swap_ra: get("swap_ra").unwrap_or(0),
            swap_ios_out: get("nrswpout"),
            swap_ios_in: get("nrswpin"),
        })
    }
}

/// Whole-machine CPU time from the first line of `/proc/stat`, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    pub user: f64,
    pub system: f64,
    pub irq: f64,
    pub softirq: f64,
    pub iowait: f64,
    pub idle: f64,
}

pub fn parse_cpu(text: &str) -> Option<CpuTime> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse::<f64>().ok())
        .collect();
    // USER_HZ is 100 on every architecture Linux exports it for.
    let t = |i: usize| v.get(i).copied().unwrap_or(0.0) / 100.0;
    Some(CpuTime {
        user: t(0) + t(1),
        system: t(2),
        idle: t(3),
        iowait: t(4),
        irq: t(5),
        softirq: t(6),
    })
}

impl CpuTime {
    pub fn read() -> Result<CpuTime, Error> {
        parse_cpu(&read("/proc/stat")?).ok_or_else(|| Error::new("/proc/stat has no cpu line"))
    }

    pub fn since(&self, before: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - before.user,
            system: self.system - before.system,
            irq: self.irq - before.irq,
            softirq: self.softirq - before.softirq,
            iowait: self.iowait - before.iowait,
            idle: self.idle - before.idle,
        }
    }
}

/// One line of `/proc/swaps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapArea {
    pub path: String,
    pub kind: String,
    pub size_kib: u64,
    pub used_kib: u64,
    pub prio: i64,
}

pub fn parse_swaps(text: &str) -> Vec<SwapArea> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 {
                return None;
            }
            Some(SwapArea {
                path: unescape_octal(f[0]),
                kind: f[1].to_string(),
                size_kib: f[2].parse().ok()?,
                used_kib: f[3].parse().ok()?,
                prio: f[4].parse().ok()?,
            })
        })
        .collect()
}

/// `/proc/swaps` escapes blanks and backslashes as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn read_swaps() -> Result<Vec<SwapArea>, Error> {
    Ok(parse_swaps(&read("/proc/swaps")?))
}

/// The counters of one active swapfs swapfile, from
/// `/sys/kernel/debug/swapfs/<dev>/swapfiles`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwapfsFile {
    pub path: String,
    pub fields: BTreeMap<String, u64>,
}

/// The counters that must be present on every line.
pub const SWAPFS_FIELDS: [&str; 10] = [
    "ino",
    "runs",
    "pages",
    "table_bytes",
    "pages_out",
    "pages_in",
    "bios",
    "write_errors",
    "read_errors",
    "tx_from_swap_io",
];

impl SwapfsFile {
    pub fn get(&self, k: &str) -> u64 {
        self.fields.get(k).copied().unwrap_or(0)
    }
}

pub fn parse_swapfs(text: &str) -> Result<Vec<SwapfsFile>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        let path = it.next().unwrap_or_default().to_string();
        let mut fields = BTreeMap::new();
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("unexpected field {kv:?} in {line:?}"))?;
            let v = v
                .parse()
                .map_err(|_| format!("field {k} is not a number in {line:?}"))?;
            fields.insert(k.to_string(), v);
        }
        for k in SWAPFS_FIELDS {
            if !fields.contains_key(k) {
                return Err(format!("no {k}= in {line:?}"));
            }
        }
        out.push(SwapfsFile { path, fields });
    }
    Ok(out)
}

/// Reads the swapfs debugfs files, keeps the lines of `only` (all if empty).
pub fn read_swapfs(files: &[PathBuf], only: &[String]) -> Result<Vec<SwapfsFile>, Error> {
    let mut all = Vec::new();
    for f in files {
        let text = read(f)?;
        let lines = parse_swapfs(&text).map_err(|e| Error::new(format!("{}: {e}", f.display())))?;
        all.extend(lines);
    }
    if !only.is_empty() {
        all.retain(|s| only.contains(&s.path));
    }
    Ok(all)
}

/// `/sys/class/block/<dev>/stat` (Documentation/block/stat.rst).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStat {
    pub read_ios: u64,
    pub read_merges: u64,
    pub read_sectors: u64,
    pub write_ios: u64,
    pub write_merges: u64,
    pub write_sectors: u64,
    pub discard_ios: u64,
    pub discard_sectors: u64,
}

pub fn parse_blkstat(text: &str) -> Option<BlkStat> {
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if v.len() < 11 {
        return None;
    }
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(BlkStat {
        read_ios: g(0),
        read_merges: g(1),
        read_sectors: g(2),
        write_ios: g(4),
        write_merges: g(5),
        write_sectors: g(6),
        discard_ios: g(11),
        discard_sectors: g(13),
    })
}

impl BlkStat {
    pub fn read(dev: &str) -> Result<BlkStat, Error> {
        let p = format!("/sys/class/block/{dev}/stat");
        parse_blkstat(&read(&p)?).ok_or_else(|| Error::new(format!("cannot parse {p}")))
    }

    pub fn since(&self, b: &BlkStat) -> BlkStat {
        BlkStat {
            read_ios: self.read_ios.saturating_sub(b.read_ios),
            read_merges: self.read_merges.saturating_sub(b.read_merges),
            read_sectors: self.read_sectors.saturating_sub(b.read_sectors),
            write_ios: self.write_ios.saturating_sub(b.write_ios),
            write_merges: self.write_merges.saturating_sub(b.write_merges),
            write_sectors: self.write_sectors.saturating_sub(b.write_sectors),
            discard_ios: self.discard_ios.saturating_sub(b.discard_ios),
            discard_sectors: self.discard_sectors.saturating_sub(b.discard_sectors),
        }
    }
}

pub const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";

/// Per-size mTHP statistics (`hugepages-<N>kB/stats/*`), summed over the
/// sizes, plus the size list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThpStats {
    pub per_size: BTreeMap<u64, BTreeMap<String, u64>>,
}

pub const THP_STAT_NAMES: [&str; 5] = [
    "anon_fault_alloc",
    "swpout",
    "swpout_fallback",
    "swpin",
    "split",
];

/// The mTHP sizes in KiB the kernel offers (empty without THP).
pub fn thp_sizes() -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(THP_DIR)
        .map(|d| {
            d.filter_map(|e| {
                let n = e.ok()?.file_name().into_string().ok()?;
                n.strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

impl ThpStats {
    pub fn read() -> ThpStats {
        let mut per_size = BTreeMap::new();
        for kb in thp_sizes() {
            let mut m = BTreeMap::new();
            for n in THP_STAT_NAMES {
                let p = format!("{THP_DIR}/hugepages-{kb}kB/stats/{n}");
                if let Ok(t) = fs::read_to_string(&p) {
                    if let Ok(v) = t.trim().parse() {
                        m.insert(n.to_string(), v);
                    }
                }
            }
            per_size.insert(kb, m);
        }
        ThpStats { per_size }
    }

    /// Sum of one statistic over every size, since `b`.
    pub fn delta(&self, b: &ThpStats, name: &str) -> u64 {
        self.per_size
            .iter()
            .map(|(kb, m)| {
                let now = m.get(name).copied().unwrap_or(0);
                let then = b
                    .per_size
                    .get(kb)
                    .and_then(|bm| bm.get(name))
                    .copied()
                    .unwrap_or(0);
                now.saturating_sub(then)
            })
            .sum()
    }

    /// One statistic per size since `b`, as "64kB:12,2048kB:3" (non-zero only).
    pub fn delta_by_size(&self, b: &ThpStats, name: &str) -> String {
        let v: Vec<String> = self
            .per_size
            .iter()
            .filter_map(|(kb, m)| {
                let now = m.get(name).copied().unwrap_or(0);
                let then = b
                    .per_size
                    .get(kb)
                    .and_then(|bm| bm.get(name))
                    .copied()
                    .unwrap_or(0);
                let d = now.saturating_sub(then);
                (d > 0).then(|| format!("{kb}kB:{d}"))
            })
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmstat() {
        let m = parse_vmstat("pswpin 12\npswpout 34\nbogus\n");
        assert_eq!(m["pswpin"], 12);
        assert_eq!(m["pswpout"], 34);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn vmstat_swap_ios() {
        // 7.3 counts mm's swap IOs; 7.2 does not.
        let v = VmStat::parse("pswpin 12\npswpout 34\nnrswpin 5\nnrswpout 2\n").unwrap();
        assert_eq!((v.swap_ios_out, v.swap_ios_in), (Some(2), Some(5)));
        let v = VmStat::parse("pswpin 12\npswpout 34\n").unwrap();
        assert_eq!((v.swap_ios_out, v.swap_ios_in), (None, None));
        assert!(VmStat::parse("pswpin 12\n").is_err());
    }

    #[test]
    fn cpu() {
        let c = parse_cpu("cpu  100 50 200 1000 7 3 2 0 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(c.user, 1.5);
        assert_eq!(c.system, 2.0);
        assert_eq!(c.iowait, 0.07);
        assert_eq!(c.irq, 0.03);
        assert_eq!(c.softirq, 0.02);
    }

    #[test]
    fn swaps() {
        let s = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
             /mnt/a\\040b\tfile\t\t65532\t\t0\t\t-2\n\
             /dev/vda1                               partition\t1048572\t\t12\t\t10\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].path, "/mnt/a b");
        assert_eq!(s[0].prio, -2);
        assert_eq!(s[1].kind, "partition");
        assert_eq!(s[1].used_kib, 12);
    }

    #[test]
    fn swapfs_lines() {
        let t = "/tmp/m/swap ino=12 runs=1 pages=16383 table_bytes=24 pages_out=5 pages_in=3 bios=4 write_errors=0 read_errors=0 tx_from_swap_io=0\n";
        let v = parse_swapfs(t).unwrap();
        assert_eq!(v[0].path, "/tmp/m/swap");
        assert_eq!(v[0].get("pages_out"), 5);
        assert!(parse_swapfs("/x ino=1").is_err());
        assert!(parse_swapfs("").unwrap().is_empty());
    }

    #[test]
    fn blkstat() {
        let b = parse_blkstat(
            "     100        5     8000      120      200       10    16000      300        0      400      420        1        0       64        0        0        0\n",
        )
        .unwrap();
        assert_eq!(b.read_ios, 100);
        assert_eq!(b.write_sectors, 16000);
        assert_eq!(b.discard_ios, 1);
        assert_eq!(b.discard_sectors, 64);
    }
}

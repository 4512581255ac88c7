// SPDX-License-Identifier: GPL-2.0

//! The cgroup v2 the workers run in: created (or joined), with the memory
//! controller enabled on the way down from the root, the limit set (as
//! `memory.max`, or as `memory.high` with `memory.max` a backstop at
//! [`HIGH_BACKSTOP`] times it) and `memory.swap.max` unlimited; removed at
//! the end if this run created it, else its limits are restored.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::stats::read;
use crate::Error;

/// The cgroup2 mount point, from `/proc/self/mountinfo`.
pub fn mount_point() -> Result<PathBuf, Error> {
    let text = read("/proc/self/mountinfo")?;
    for line in text.lines() {
        // ... mount-point ... - fstype source options
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split_whitespace().next() == Some("cgroup2") {
            if let Some(mp) = pre.split_whitespace().nth(4) {
                return Ok(PathBuf::from(mp.replace("\\040", " ")));
            }
        }
    }
    Err(Error::new(
        "cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup)",
    ))
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    fs::write(path, value)
        .map_err(|e| Error::new(format!("writing {value:?} to {}: {e}", path.display())))
}

/// With the limit as `memory.high`, `memory.max` is this many times it: a
/// backstop for a runaway, far from what reclaim lets a worker reach.
pub const HIGH_BACKSTOP: u64 = 4;

/// Which knob holds the run's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `memory.max`: past it, reclaim or the memcg OOM killer.
    Max,
    /// `memory.high`: past it, reclaim and throttling, never the OOM killer
    /// (until the backstop).
    High,
}

impl Limit {
    /// The knob's name.
    pub fn knob(self) -> &'static str {
        match self {
            Limit::Max => "memory.max",
            Limit::High => "memory.high",
        }
    }
}

/// A cgroup in use by the run.
pub struct Cgroup {
    pub path: PathBuf,
    created: bool,
    /// `memory.max` and `memory.high` as they were in a joined cgroup.
    old: Option<(String, String)>,
}

impl Cgroup {
    /// Creates or joins `name` (absolute, or relative to the cgroup2 mount),
    /// with the limit `bytes` on `limit` and `memory.swap.max = max`.
    pub fn setup(name: &str, bytes: u64, limit: Limit) -> Result<Cgroup, Error> {
        let root = mount_point()?;
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            root.join(name)
        };
        if !path.starts_with(&root) || path == root {
            return Err(Error::new(format!(
                "cgroup {} is not below the cgroup2 mount {}",
                path.display(),
                root.display()
            )));
        }
        // Enable the memory controller on every ancestor's children.
        let rel = path.strip_prefix(&root).unwrap_or(Path::new(""));
        let mut dir = root.clone();
        let mut created = false;
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let ctl = dir.join("cgroup.subtree_control");
            let cur = read(&ctl)?;
            if !cur.split_whitespace().any(|x| x == "memory") {
                let avail = read(dir.join("cgroup.controllers"))?;
                if !avail.split_whitespace().any(|x| x == "memory") {
                    return Err(Error::new(format!(
                        "the memory controller is not available in {} (CONFIG_MEMCG?)",
                        dir.display()
                    )));
                }
                write(&ctl, "+memory")?;
            }
            dir = dir.join(c);
            match fs::create_dir(&dir) {
                Ok(()) => created = i + 1 == comps.len(),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::new(format!("mkdir {}: {e}", dir.display())));
                }
            }
        }
        let mut cg = Cgroup {
            path,
            created,
            old: None,
        };
        if !cg.created {
            let get = |f: &str| -> Result<String, Error> {
                Ok(read(cg.path.join(f))?.trim().to_string())
            };
            cg.old = Some((get("memory.max")?, get("memory.high")?));
        }
        if !cg.path.join("memory.swap.max").exists() {
            return Err(Error::new(format!(
                "{} has no memory.swap.max (swap accounting off?)",
                cg.path.display()
            )));
        }
        write(&cg.path.join("memory.swap.max"), "max")?;
        match limit {
            Limit::Max => cg.set_limits("max", &bytes.to_string())?,
            Limit::High => cg.set_limits(
                &bytes.to_string(),
                &bytes.saturating_mul(HIGH_BACKSTOP).to_string(),
            )?,
        }
        Ok(cg)
    }

    /// Sets `memory.high` and `memory.max`.
    fn set_limits(&self, high: &str, max: &str) -> Result<(), Error> {
        write(&self.path.join("memory.high"), high)?;
        write(&self.path.join("memory.max"), max)
    }

    /// Lifts the limit (`memory.high` and `memory.max`).
    pub fn lift(&self) -> Result<(), Error> {
        self.set_limits("max", "max")
    }

    /// Moves the calling process into the cgroup.
    pub fn join(&self) -> Result<(), Error> {
        write(
            &self.path.join("cgroup.procs"),
            &std::process::id().to_string(),
        )
    }

    /// A field of `memory.events` (e.g. "oom_kill").
    pub fn event(&self, name: &str) -> u64 {
        fs::read_to_string(self.path.join("memory.events"))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == name).then(|| v.trim().parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    /// Removes the cgroup if this run created it (after its processes have
    /// exited; the kernel may need a moment), else restores its limits.
    pub fn cleanup(&self) -> Result<(), Error> {
        if let Some((max, high)) = &self.old {
            return self.set_limits(high, max);
        }
        if !self.created {
            return Ok(());
        }
        let start = Instant::now();
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(Error::new(format!("rmdir {}: {e}", self.path.display())));
                }
            }
        }
    }
}

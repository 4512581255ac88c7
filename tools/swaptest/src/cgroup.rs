// SPDX-License-Identifier: GPL-2.0

//! The cgroup v2 the workers run in: created (or joined), with the memory
//! controller enabled on the way down from the root, `memory.max` set and
//! `memory.swap.max` unlimited; removed at the end if this run created it.

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

/// A cgroup in use by the run.
pub struct Cgroup {
    pub path: PathBuf,
    created: bool,
    old_max: Option<String>,
}

impl Cgroup {
    /// Creates or joins `name` (absolute, or relative to the cgroup2 mount),
    /// with `memory.max = max_bytes` and `memory.swap.max = max`.
    pub fn setup(name: &str, max_bytes: u64) -> Result<Cgroup, Error> {
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
        let cg = Cgroup {
            path,
            created,
            old_max: None,
        };
        let mut cg = cg;
        if !cg.created {
            cg.old_max = Some(read(cg.path.join("memory.max"))?.trim().to_string());
        }
        if !cg.path.join("memory.swap.max").exists() {
            return Err(Error::new(format!(
                "{} has no memory.swap.max (swap accounting off?)",
                cg.path.display()
            )));
        }
        write(&cg.path.join("memory.swap.max"), "max")?;
        cg.set_max(&max_bytes.to_string())?;
        Ok(cg)
    }

    /// Sets `memory.max` ("max" lifts it).
    pub fn set_max(&self, v: &str) -> Result<(), Error> {
        write(&self.path.join("memory.max"), v)
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
    /// exited; the kernel may need a moment), else restores `memory.max`.
    pub fn cleanup(&self) -> Result<(), Error> {
        if let Some(old) = &self.old_max {
            return self.set_max(old);
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

// SPDX-License-Identifier: GPL-2.0

//! The few system calls std does not offer: anonymous mappings and madvise,
//! fork/wait/kill, pipes, rusage. Each wrapped once, with errno in the error.

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;

use crate::Error;

fn errno(what: &str) -> Error {
    Error::new(format!("{what}: {}", io::Error::last_os_error()))
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as usize
    } else {
        4096
    }
}

/// How a region asks for transparent huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thp {
    /// MADV_HUGEPAGE.
    Huge,
    /// MADV_NOHUGEPAGE: small folios only, whatever the system default.
    NoHuge,
    /// No advice (the kernel has no madvise: CONFIG_ADVISE_SYSCALLS off).
    None,
}

/// Whether madvise(2) exists (tinyconfig kernels leave it out: ENOSYS).
pub fn have_madvise() -> bool {
    // SAFETY: advice on no memory at all; only the errno matters.
    let r = unsafe { libc::madvise(std::ptr::null_mut(), 0, libc::MADV_NORMAL) };
    !(r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// A private anonymous mapping, aligned to 2 MiB so that PMD-sized folios
/// are possible.
pub struct Region {
    ptr: *mut u8,
    len: usize,
}

const ALIGN: usize = 2 << 20;

impl Region {
    pub fn new(len: usize, thp: Thp) -> Result<Region, Error> {
        let map_len = len
            .checked_add(ALIGN)
            .ok_or_else(|| Error::new("region size overflows"))?;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(errno(&format!("mmap of {map_len} bytes")));
        }
        let base = p as usize;
        let start = (base + ALIGN - 1) & !(ALIGN - 1);
        // SAFETY: both ranges are inside the mapping just made and unused.
        unsafe {
            if start > base {
                libc::munmap(p, start - base);
            }
            let end = start + len;
            let map_end = base + map_len;
            if map_end > end {
                libc::munmap(end as *mut libc::c_void, map_end - end);
            }
        }
        let r = Region {
            ptr: start as *mut u8,
            len,
        };
        match thp {
            Thp::Huge => r.madvise(libc::MADV_HUGEPAGE, 0, len)?,
            Thp::NoHuge => r.madvise(libc::MADV_NOHUGEPAGE, 0, len)?,
            Thp::None => {}
        }
        Ok(r)
    }

    pub fn madvise(&self, advice: libc::c_int, off: usize, len: usize) -> Result<(), Error> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Error::new("madvise outside the region"));
        }
        // SAFETY: the range is inside our mapping.
        let r = unsafe { libc::madvise(self.ptr.add(off).cast(), len, advice) };
        if r != 0 {
            return Err(errno(&format!("madvise({advice})")));
        }
        Ok(())
    }

    /// Page `i` as words (`page` bytes per page).
    ///
    /// # Safety
    /// `(i + 1) * page <= len`, and no other reference to that page lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn page(&self, i: usize, page: usize) -> &mut [u64] {
        std::slice::from_raw_parts_mut(self.ptr.add(i * page).cast::<u64>(), page / 8)
    }

    /// A pointer to word 0 of page `i`, for single-word accesses.
    pub fn word_ptr(&self, i: usize, page: usize) -> *mut u64 {
        debug_assert!((i + 1) * page <= self.len);
        self.ptr.wrapping_add(i * page).cast()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// A pipe: (read end, write end).
pub fn pipe() -> Result<(File, File), Error> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(errno("pipe2"));
    }
    // SAFETY: both descriptors are fresh and owned here.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2). The caller must be single-threaded.
pub fn fork() -> Result<Forked, Error> {
    // SAFETY: the program never starts threads, so the child is consistent.
    match unsafe { libc::fork() } {
        -1 => Err(errno("fork")),
        0 => {
            // Die with the parent rather than linger in the cgroup.
            // SAFETY: plain prctl.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent(pid)),
    }
}

/// How a child ended.
pub fn wait(pid: libc::pid_t) -> Result<String, Error> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(errno(&format!("waitpid {pid}")));
    }
    Ok(if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => String::new(),
            c => format!("exited with status {c}"),
        }
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        format!(
            "killed by signal {sig}{}",
            if sig == libc::SIGKILL {
                " (SIGKILL: the OOM killer?)"
            } else {
                ""
            }
        )
    } else {
        format!("ended with wait status {status:#x}")
    })
}

pub fn kill(pid: libc::pid_t) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

pub fn exit(code: i32) -> ! {
    // SAFETY: _exit skips the parent's atexit handlers and buffers, which is
    // what a forked child wants.
    unsafe { libc::_exit(code) }
}

/// User and system CPU seconds of the calling process.
pub fn rusage_self() -> (f64, f64) {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

pub fn uname_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

// SPDX-License-Identifier: GPL-2.0

//! fsck on fuzzed images: it must always end with an fsck(8) exit code
//! (0 clean, 4 problems, 8 operational error), never panic or abort.

use std::io::Write;
use std::panic;
use std::path::Path;
use std::process::Command;

use swapfs_image::Image;

use crate::mutate::Case;

/// Runs the checker in-process on a case's bytes: its exit code, or the
/// panic message.
pub fn in_process(bytes: &[u8]) -> Result<u8, String> {
    let bytes = bytes.to_vec();
    let res = panic::catch_unwind(move || {
        let img = Image::from_vec(bytes);
        match swapfs_fsck::check(&img) {
            Ok(r) => r.exit_code(),
            Err(_) => swapfs_fsck::exit::OPERATIONAL,
        }
    });
    res.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// Whether `code` is one fsck.swapfs may return on an image.
pub fn is_fsck_code(code: i32) -> bool {
    matches!(code, 0 | 4 | 8)
}

/// Writes the case to `tmp` and runs the `fsck.swapfs -n` binary on it:
/// its exit code, or a description of how it died.
pub fn binary(fsck: &Path, case: &Case, tmp: &Path) -> Result<i32, String> {
    let mut f = std::fs::File::create(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(&case.bytes)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    drop(f);
    let out = Command::new(fsck)
        .arg("-n")
        .arg(tmp)
        .output()
        .map_err(|e| format!("{}: {e}", fsck.display()))?;
    match out.status.code() {
        Some(c) if is_fsck_code(c) => Ok(c),
        Some(c) => Err(format!(
            "exit status {c}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        None => Err(format!(
            "killed by a signal ({:?}): {}",
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

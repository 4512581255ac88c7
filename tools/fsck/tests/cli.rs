// SPDX-License-Identifier: GPL-2.0

//! The `fsck.swapfs` binary end to end: exit codes, output, and that it
//! never writes.

mod util;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use util::sample;

const BIN: &str = env!("CARGO_BIN_EXE_fsck-swapfs");

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fsck-cli-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes the sample image to `dir/img`, corrupted by `f`.
fn image(dir: &Path, f: impl FnOnce(&mut swapfs_image::builder::Editor)) -> String {
    let mut ed = sample(10);
    f(&mut ed);
    let path = dir.join("img");
    fs::write(&path, ed.into_vec().unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn clean_image_exits_0_and_never_changes() {
    let dir = scratch("clean");
    let img = image(&dir, |_| ());
    let before = fs::read(&img).unwrap();
    let mtime = fs::metadata(&img).unwrap().modified().unwrap();
    for args in [&["-n"][..], &["-f", "-v"], &[], &["-nfv"]] {
        let o = run(&[args, &[img.as_str()]].concat());
        assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&format!("swapfs: {img}: 318/1024 inodes, ")),
            "{out}"
        );
        assert!(out.contains(&format!("{img}: clean")), "{out}");
    }
    assert_eq!(fs::read(&img).unwrap(), before);
    assert_eq!(fs::metadata(&img).unwrap().modified().unwrap(), mtime);
}

#[test]
fn problems_exit_4_one_line_each_and_nothing_is_written() {
    let dir = scratch("problems");
    let mut target = 0;
    let img = image(&dir, |ed| {
        target = ed.lookup("file").unwrap();
        ed.modify_inode(target, |i| i.nlink = 7).unwrap();
        ed.modify_superblock(|sb| sb.free_inodes -= 1).unwrap();
    });
    let before = fs::read(&img).unwrap();
    for args in [&["-n"][..], &["-y"], &["-p"], &["-a", "-f"]] {
        let o = run(&[args, &[img.as_str()]].concat());
        assert_eq!(code(&o), 4, "{args:?}");
        let out = stdout(&o);
        assert!(
            out.contains(&format!("inode {target}: link count is 7, expected 2\n")),
            "{out}"
        );
        assert!(out.contains("superblock: free inode count is"), "{out}");
        assert!(
            out.contains(&format!("{img}: 2 problems (not corrected)")),
            "{out}"
        );
        let repair_notes = out.matches("repair is not implemented").count();
        assert_eq!(repair_notes, usize::from(args[0] != "-n"), "{out}");
    }
    assert_eq!(fs::read(&img).unwrap(), before);
}

#[test]
fn operational_errors_exit_8() {
    let dir = scratch("operational");
    let missing = dir.join("missing");
    let o = run(&["-n", missing.to_str().unwrap()]);
    assert_eq!(code(&o), 8);
    assert!(stderr(&o).contains("cannot open"), "{}", stderr(&o));
    let o = run(&["-n", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 8);
    let garbage = dir.join("garbage");
    fs::write(&garbage, vec![0x5a; 1 << 20]).unwrap();
    let o = run(&["-n", garbage.to_str().unwrap()]);
    assert_eq!(code(&o), 8);
    assert!(
        stderr(&o).contains("not a swapfs filesystem"),
        "{}",
        stderr(&o)
    );
    let empty = dir.join("empty");
    fs::write(&empty, b"").unwrap();
    assert_eq!(code(&run(&[empty.to_str().unwrap()])), 8);
}

#[test]
fn usage_errors_exit_16() {
    for args in [
        &[][..],
        &["-x", "img"],
        &["-n", "-y", "img"],
        &["-p", "-y", "img"],
        &["img", "img2"],
        &["-C", "0", "img"],
    ] {
        let o = run(args);
        assert_eq!(code(&o), 16, "{args:?}");
        assert!(stderr(&o).contains("Usage: fsck.swapfs"), "{}", stderr(&o));
    }
}

#[test]
fn util_linux_fsck_finds_the_helper() {
    let Some(fsck) = ["/usr/sbin/fsck", "/sbin/fsck", "/usr/bin/fsck"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("no util-linux fsck: skipped");
        return;
    };
    let dir = scratch("util-linux");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(BIN, bin.join("fsck.swapfs")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let img = image(&dir, |_| ());
    let o = Command::new(fsck)
        .args(["-t", "swapfs", "-n", &img])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("clean"), "{}", stdout(&o));
    let img = image(&dir, |ed| {
        let f = ed.lookup("file").unwrap();
        ed.set_inode_bit(f, false).unwrap();
    });
    let before = fs::read(&img).unwrap();
    let o = Command::new(fsck)
        .args(["-t", "swapfs", "-n", &img])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(fs::read(&img).unwrap(), before);
}

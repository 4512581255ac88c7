// SPDX-License-Identifier: GPL-2.0

//! The `mkfs.swapfs` binary end to end.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use swapfs_common::format::Superblock;
use swapfs_fsck::check;
use swapfs_image::builder::Editor;
use swapfs_image::{Access, Image};

const BIN: &str = env!("CARGO_BIN_EXE_mkfs-swapfs");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mkfs-cli-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A sparse file of `size` bytes.
fn sparse(dir: &Path, name: &str, size: u64) -> String {
    let path = dir.join(name);
    File::create(&path).unwrap().set_len(size).unwrap();
    path.to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks the image with the fsck library and returns its superblock.
fn fsck_clean(img: &str) -> Superblock {
    let image = Image::open(Path::new(img), Access::ReadOnly).unwrap();
    let r = check(&image).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    *Editor::open(image).unwrap().superblock()
}

#[test]
fn defaults() {
    let dir = scratch("defaults");
    let img = sparse(&dir, "img", 64 << 20);
    let o = run(&["-q", &img]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", text(&o));
    assert_eq!(fs::metadata(&img).unwrap().len(), 64 << 20);
    let sb = fsck_clean(&img);
    assert_eq!(sb.block_size(), 4096);
    assert_eq!(sb.block_count, 16384);
    assert_eq!(sb.inode_count, (64 << 20) / 16384);
    assert_eq!(sb.journal_blocks, 1024);
    assert_eq!(sb.uuid[6] >> 4, 4, "version 4 UUID");
    assert_eq!(sb.label_str(), "");
}

#[test]
fn every_option() {
    let dir = scratch("options");
    let img = sparse(&dir, "img", 64 << 20);
    let o = run(&[
        "-b",
        "1024",
        "-L",
        "swap space",
        "-N",
        "100",
        "-J",
        "2000",
        "-U",
        "0123abcd-89ab-4def-8123-456789abcdef",
        &img,
        "20000",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("20000 blocks of 1024 bytes"), "{out}");
    assert!(
        out.contains("UUID 0123abcd-89ab-4def-8123-456789abcdef"),
        "{out}"
    );
    let sb = fsck_clean(&img);
    assert_eq!((sb.block_size(), sb.block_count), (1024, 20000));
    assert_eq!((sb.inode_count, sb.journal_blocks), (100, 2000));
    assert_eq!(sb.label_str(), "swap space");
    assert_eq!(sb.uuid[..4], [0x01, 0x23, 0xab, 0xcd]);
    assert_eq!(fs::metadata(&img).unwrap().len(), 64 << 20);
}

#[test]
fn every_block_size_and_size_suffixes() {
    let dir = scratch("sizes");
    for (bs, size, blocks) in [
        ("1024", "8M", 8192),
        ("2048", "3000", 3000),
        ("4096", "40M", 10240),
    ] {
        let img = sparse(&dir, &format!("img-{bs}"), (48 << 20) + 1000);
        let o = run(&["-q", "-b", bs, &img, size]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        assert_eq!(fsck_clean(&img).block_count, blocks);
    }
}

#[test]
fn existing_signatures_need_force() {
    let dir = scratch("force");
    let img = sparse(&dir, "img", 16 << 20);
    assert_eq!(code(&run(&["-q", &img])), 0);
    let o = run(&["-q", &img]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o).contains("appears to contain a swapfs filesystem; use -f"),
        "{}",
        text(&o)
    );
    let first = fsck_clean(&img).uuid;
    let o = run(&["-q", "-f", &img]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_ne!(fsck_clean(&img).uuid, first, "a new random UUID");
    let swap = sparse(&dir, "swap", 16 << 20);
    let mut img = Image::open(Path::new(&swap), Access::ReadWrite).unwrap();
    img.write_at(4096 - 10, b"SWAPSPACE2").unwrap();
    drop(img);
    let o = run(&["-q", &swap]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("swap space"), "{}", text(&o));
}

#[test]
fn refusals_exit_1() {
    let dir = scratch("refusals");
    let small = sparse(&dir, "small", 1 << 20);
    let o = run(&["-q", &small]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o).contains("cannot make a filesystem of 256 blocks"),
        "{}",
        text(&o)
    );
    let img = sparse(&dir, "img", 8 << 20);
    let o = run(&["-q", &img, "4096"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o).contains("does not fit the device (2048 blocks"),
        "{}",
        text(&o)
    );
    let o = run(&["-q", "-J", "4096", &img]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let o = run(&["-q", dir.join("missing").to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("cannot open"), "{}", text(&o));
    let o = run(&["-q", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    // Nothing was written by any refusal.
    assert!(fs::read(&img).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn usage_errors_exit_1() {
    for args in [
        &[][..],
        &["-b", "512", "img"],
        &["-b"],
        &["-x", "img"],
        &["-N", "0", "img"],
        &["-J", "100", "img"],
        &["-U", "nope", "img"],
        &["img", "0"],
        &["img", "1", "2"],
    ] {
        let o = run(args);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(text(&o).contains("Usage: mkfs.swapfs"), "{}", text(&o));
    }
}

#[test]
fn version() {
    let o = run(&["-V"]);
    assert_eq!(code(&o), 0);
    assert!(text(&o).starts_with("mkfs.swapfs "), "{}", text(&o));
}

#[test]
fn util_linux_mkfs_finds_the_helper() {
    let Some(mkfs) = ["/usr/sbin/mkfs", "/sbin/mkfs", "/usr/bin/mkfs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("no util-linux mkfs: skipped");
        return;
    };
    let dir = scratch("util-linux");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(BIN, bin.join("mkfs.swapfs")).unwrap();
    let img = sparse(&dir, "img", 32 << 20);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(mkfs)
        .args(["-t", "swapfs", "-L", "viamkfs", &img])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(fsck_clean(&img).label_str(), "viamkfs");
}

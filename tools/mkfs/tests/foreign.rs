// SPDX-License-Identifier: GPL-2.0

//! `mkfs.swapfs` without `-f` refuses what the other mkfs programs make,
//! as fstests generic/740 checks: each test makes one with the real program
//! and is skipped (saying why) where that program is not installed or
//! cannot make it here. `blkid -p`, where installed, says what libblkid
//! sees, for the log.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mkfs-swapfs");

/// One foreign signature, made by `prog` with `args` on a sparse image of
/// `mib` MiB. In `args`, `{img}` is the image, `{dir}` a directory with a
/// few files (for the image builders) and `{key}` a key file.
struct Case {
    prog: &'static str,
    args: &'static [&'static str],
    /// Fed to the program's standard input (empty: none).
    stdin: &'static str,
    mib: u64,
    /// What mkfs.swapfs is to say the image appears to contain.
    expect: &'static str,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file());
    found
}

/// The first and last MiB of the image, to see that a refusal wrote
/// nothing.
fn ends(img: &Path) -> Vec<u8> {
    let mut f = File::open(img).unwrap();
    let len = f.metadata().unwrap().len();
    let mut out = vec![0u8; 1 << 20];
    f.read_exact(&mut out).unwrap();
    let mut tail = vec![0u8; 1 << 20];
    f.seek(SeekFrom::Start(len - (1 << 20))).unwrap();
    f.read_exact(&mut tail).unwrap();
    out.extend(tail);
    out
}

fn check(name: &str, case: &Case) {
    let Some(prog) = find_program(case.prog) else {
        eprintln!("{name}: {} is not installed: skipped", case.prog);
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mkfs-foreign-{name}"));
    let _ = fs::remove_dir_all(&dir);
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("hello"), "hello, world\n").unwrap();
    fs::write(tree.join("sub/data"), vec![0x5au8; 10000]).unwrap();
    let key = dir.join("key");
    fs::write(&key, "not a secret").unwrap();
    let img = dir.join("img");
    let size = case.mib << 20;
    File::create(&img).unwrap().set_len(size).unwrap();
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| {
            a.replace("{img}", img.to_str().unwrap())
                .replace("{dir}", tree.to_str().unwrap())
                .replace("{key}", key.to_str().unwrap())
        })
        .collect();
    let mut child = Command::new(&prog)
        .args(&args)
        .stdin(if case.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(case.stdin.as_bytes()).unwrap();
    }
    let made = child.wait_with_output().unwrap();
    if !made.status.success() {
        eprintln!(
            "{name}: {} {args:?} failed here ({}): skipped\n{}{}",
            case.prog,
            made.status,
            String::from_utf8_lossy(&made.stdout),
            String::from_utf8_lossy(&made.stderr)
        );
        return;
    }
    // The image builders write a file of their own size; on a device the
    // image would be followed by the rest of it.
    if fs::metadata(&img).unwrap().len() < size {
        fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(size)
            .unwrap();
    }
    if let Some(blkid) = find_program("blkid") {
        let o = Command::new(blkid)
            .args(["-p", "-o", "export"])
            .arg(&img)
            .output()
            .unwrap();
        let seen: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("TYPE=") || l.starts_with("PTTYPE="))
            .map(String::from)
            .collect();
        eprintln!("{name}: blkid -p sees {seen:?}");
    }
    let before = ends(&img);
    let o = Command::new(BIN).arg("-q").arg(&img).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{name}: {stderr}");
    let want = format!("{} appears to contain {}", img.display(), case.expect);
    assert!(
        stderr.contains(&want) && stderr.contains("; use -f to overwrite it"),
        "{name}: wanted \"{want}\", got: {stderr}"
    );
    assert!(
        ends(&img) == before,
        "{name}: the refusal wrote to the image"
    );
    eprintln!("{name}: refused: {}", stderr.trim_end());
    let _ = fs::remove_dir_all(&dir);
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), &$case);
            }
        )*
    };
}

const fn case(
    prog: &'static str,
    args: &'static [&'static str],
    mib: u64,
    expect: &'static str,
) -> Case {
    Case {
        prog,
        args,
        stdin: "",
        mib,
        expect,
    }
}

cases! {
    bfs: case("mkfs.bfs", &["{img}"], 64, "a bfs filesystem");
    cramfs: case("mkfs.cramfs", &["{dir}", "{img}"], 64, "a cramfs filesystem");
    cramfs_padded: case("mkfs.cramfs", &["-p", "{dir}", "{img}"], 64, "a cramfs filesystem");
    minix_v1: case("mkfs.minix", &["-1", "{img}", "2000"], 64, "a minix filesystem (version 1)");
    minix_v2: case("mkfs.minix", &["-2", "{img}", "2000"], 64, "a minix filesystem (version 2)");
    minix_v3: case("mkfs.minix", &["-3", "{img}", "2000"], 64, "a minix filesystem (version 3)");
    msdos: case("mkfs.msdos", &["{img}", "2000"], 64, "a FAT12 filesystem");
    vfat: case("mkfs.vfat", &["{img}"], 64, "a FAT");
    fat32: case("mkfs.fat", &["-F", "32", "{img}"], 64, "a FAT32 filesystem");
    exfat: case("mkfs.exfat", &["{img}"], 64, "an exFAT filesystem");
    ntfs: case("mkfs.ntfs", &["-q", "-Q", "-F", "{img}"], 64, "an NTFS filesystem");
    f2fs: case("mkfs.f2fs", &["-q", "{img}"], 256, "an F2FS filesystem");
    ext2: case("mkfs.ext2", &["-q", "-F", "{img}"], 64, "an ext2/ext3/ext4 filesystem");
    ext3: case("mkfs.ext3", &["-q", "-F", "{img}"], 64, "an ext2/ext3/ext4 filesystem");
    ext4: case("mkfs.ext4", &["-q", "-F", "{img}"], 64, "an ext2/ext3/ext4 filesystem");
    xfs: case("mkfs.xfs", &["-q", "{img}"], 512, "an XFS filesystem");
    btrfs: case("mkfs.btrfs", &["-q", "{img}"], 256, "a btrfs filesystem");
    jfs: case("mkfs.jfs", &["-q", "{img}"], 64, "a JFS filesystem");
    reiserfs: case("mkfs.reiserfs", &["-q", "-f", "-f", "{img}"], 64, "a ReiserFS filesystem");
    nilfs2: case("mkfs.nilfs2", &["-q", "{img}"], 256, "a NILFS2 filesystem");
    udf: case("mkfs.udf", &["{img}"], 64, "a UDF filesystem");
    swap: case("mkswap", &["{img}"], 64, "swap space");
    squashfs: case("mksquashfs", &["{dir}", "{img}", "-noappend", "-no-progress"], 64, "a squashfs filesystem");
    iso9660: case("genisoimage", &["-quiet", "-o", "{img}", "{dir}"], 64, "an ISO 9660 filesystem");
    erofs: case("mkfs.erofs", &["{img}", "{dir}"], 64, "an EROFS filesystem");
    luks1: case(
        "cryptsetup",
        &["luksFormat", "-q", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-file", "{key}", "{img}"],
        64,
        "a LUKS encrypted volume"
    );
    luks2: case(
        "cryptsetup",
        &["luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "{key}", "{img}"],
        64,
        "a LUKS encrypted volume"
    );
    gfs2: case("mkfs.gfs2", &["-O", "-p", "lock_nolock", "-j", "1", "{img}"], 256, "a GFS/GFS2 filesystem");
    ocfs2: case("mkfs.ocfs2", &["-q", "-F", "{img}"], 256, "an OCFS2 filesystem");
    reiser4: case("mkfs.reiser4", &["-y", "-f", "{img}"], 64, "a Reiser4 filesystem");
    dos_partition_table: Case {
        stdin: "label: dos\n,10M,L\n",
        ..case("sfdisk", &["-q", "{img}"], 64, "a partition table (dos)")
    };
    gpt_partition_table: Case {
        stdin: "label: gpt\n,10M,L\n",
        ..case("sfdisk", &["-q", "{img}"], 64, "a partition table (gpt)")
    };
}

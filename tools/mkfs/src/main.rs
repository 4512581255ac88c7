// SPDX-License-Identifier: GPL-2.0

//! `mkfs.swapfs`: see [`swapfs_mkfs`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = swapfs_mkfs::main(std::env::args_os().skip(1));
    ExitCode::from(code)
}

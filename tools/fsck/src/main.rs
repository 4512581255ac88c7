// SPDX-License-Identifier: GPL-2.0

//! `fsck.swapfs`: see [`swapfs_fsck`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = swapfs_fsck::main(std::env::args_os().skip(1));
    ExitCode::from(code)
}

// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the swap map test files (`swapmap.rs`,
//! `swapmap_cases.rs`).

use core::convert::Infallible;
use swapfs_common::swapmap::{build, BuildError, FileExtent, Refusal, Run, Summary, SwapParams};

/// Runs the builder over `xs`, collecting the runs (the sink cannot fail).
pub fn run(p: &SwapParams, xs: &[FileExtent]) -> Result<(Summary, Vec<Run>), Refusal> {
    let mut runs = Vec::new();
    let s = build(p, xs.iter().copied(), |r| {
        runs.push(r);
        Ok::<(), Infallible>(())
    })
    .map_err(|e| match e {
        BuildError::Refused(r) => r,
        BuildError::Sink(never) => match never {},
    })?;
    Ok((s, runs))
}

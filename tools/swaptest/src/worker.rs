// SPDX-License-Identifier: GPL-2.0

//! A worker process: joins the cgroup, maps its region, then runs the
//! commands the parent sends, one line each, answering one line each:
//!
//! ```text
//! fill <gen> <order>               write every page (verify mode)
//! verify <gen> <order> <newgen|->  check every page, optionally rewrite it
//! pageout                          MADV_PAGEOUT over the whole region
//! out <order>                      throughput: write one word per page
//! in <order>                       throughput: read it back, check it
//! exit
//! ```
//!
//! Answers: `ready`, then per command `ok <bad pages> <secs> <user> <sys>`
//! (seconds of this phase), or `err <message>`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use crate::cgroup::Cgroup;
use crate::pattern::{self, PageId};
use crate::sys::{self, Region, Thp};
use crate::Error;

/// Read-back / write order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Seq,
    Random,
}

impl Order {
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "seq" | "sequential" => Some(Order::Seq),
            "random" | "rand" => Some(Order::Random),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::Seq => "seq",
            Order::Random => "random",
        }
    }
}

/// What a worker needs to know.
pub struct Config {
    pub worker: u32,
    pub pages: usize,
    pub page_size: usize,
    pub seed: u64,
    pub thp: Thp,
    /// Mismatches reported in detail per phase.
    pub max_reports: usize,
}

/// The worker's side of its two pipes.
pub struct Pipes {
    pub commands: File,
    pub answers: File,
}

/// Runs a worker until `exit` or EOF; never returns.
pub fn run(cfg: Config, cg: &Cgroup, pipes: Pipes) -> ! {
    let mut answers = pipes.answers;
    let code = match serve(&cfg, cg, pipes.commands, &mut answers) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(answers, "err {e}");
            1
        }
    };
    sys::exit(code)
}

fn serve(cfg: &Config, cg: &Cgroup, commands: File, answers: &mut File) -> Result<(), Error> {
    cg.join()?;
    let len = cfg
        .pages
        .checked_mul(cfg.page_size)
        .ok_or_else(|| Error::new("region size overflows"))?;
    let region = Region::new(len, cfg.thp)?;
    let pid = std::process::id();
    let mut w = Worker {
        cfg,
        region,
        pid,
        phase: 0,
    };
    send(answers, "ready")?;
    for line in BufReader::new(commands).lines() {
        let line = line.map_err(|e| Error::new(format!("reading a command: {e}")))?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let t0 = Instant::now();
        let (u0, s0) = sys::rusage_self();
        w.phase += 1;
        let bad = match f.as_slice() {
            ["fill", gen, order] => {
                w.fill(num(gen)?, order_arg(order)?);
                0
            }
            ["verify", gen, order, newgen] => {
                let newgen = if *newgen == "-" {
                    None
                } else {
                    Some(num(newgen)?)
                };
                w.verify(num(gen)?, order_arg(order)?, newgen)
            }
            ["pageout"] => {
                w.region.madvise(libc::MADV_PAGEOUT, 0, len)?;
                0
            }
            ["out", order] => {
                w.out(order_arg(order)?);
                0
            }
            ["in", order] => w.input(order_arg(order)?),
            ["exit"] => return Ok(()),
            _ => return Err(Error::new(format!("unknown command {line:?}"))),
        };
        let (u1, s1) = sys::rusage_self();
        send(
            answers,
            &format!(
                "ok {bad} {:.6} {:.6} {:.6}",
                t0.elapsed().as_secs_f64(),
                u1 - u0,
                s1 - s0
            ),
        )?;
    }
    Ok(())
}

fn send(f: &mut File, s: &str) -> Result<(), Error> {
    writeln!(f, "{s}").map_err(|e| Error::new(format!("answering the parent: {e}")))
}

fn num(s: &str) -> Result<u64, Error> {
    s.parse()
        .map_err(|_| Error::new(format!("bad number {s:?} in a command")))
}

fn order_arg(s: &str) -> Result<Order, Error> {
    Order::parse(s).ok_or_else(|| Error::new(format!("bad order {s:?}")))
}

struct Worker<'a> {
    cfg: &'a Config,
    region: Region,
    pid: u32,
    phase: u64,
}

impl Worker<'_> {
    /// The page indices in `order` (a new permutation each phase).
    fn indices(&self, order: Order) -> Box<dyn Iterator<Item = usize>> {
        match order {
            Order::Seq => Box::new(0..self.cfg.pages),
            Order::Random => {
                let seed = self.cfg.seed
                    ^ (u64::from(self.cfg.worker) << 32)
                    ^ self.phase.wrapping_mul(0x9e37_79b9);
                Box::new(
                    pattern::permutation(self.cfg.pages, seed)
                        .into_iter()
                        .map(|i| i as usize),
                )
            }
        }
    }

    fn id(&self, index: usize, gen: u64) -> PageId {
        PageId {
            seed: self.cfg.seed,
            pid: self.pid,
            worker: self.cfg.worker,
            index: index as u64,
            gen,
        }
    }

    fn fill(&mut self, gen: u64, order: Order) {
        for i in self.indices(order) {
            // SAFETY: i < pages; one page reference at a time.
            let page = unsafe { self.region.page(i, self.cfg.page_size) };
            pattern::fill(page, &self.id(i, gen));
        }
    }

    fn verify(&mut self, gen: u64, order: Order, newgen: Option<u64>) -> u64 {
        let mut bad = 0u64;
        for i in self.indices(order) {
            // SAFETY: as in fill.
            let page = unsafe { self.region.page(i, self.cfg.page_size) };
            if let Err(m) = pattern::verify(page, &self.id(i, gen)) {
                if (bad as usize) < self.cfg.max_reports {
                    eprintln!(
                        "swapfs-swaptest: worker {} (pid {}): page {} (offset {:#x}, generation {}): {}",
                        self.cfg.worker,
                        self.pid,
                        i,
                        i * self.cfg.page_size,
                        gen,
                        m
                    );
                }
                bad += 1;
            }
            if let Some(g) = newgen {
                pattern::fill(page, &self.id(i, g));
            }
        }
        bad
    }

    fn out(&mut self, order: Order) {
        for i in self.indices(order) {
            let p = self.region.word_ptr(i, self.cfg.page_size);
            // SAFETY: inside the region; volatile so that every page is
            // really touched.
            unsafe { p.write_volatile(pattern::tag(self.cfg.seed, self.cfg.worker, i as u64)) };
        }
    }

    fn input(&mut self, order: Order) -> u64 {
        let mut bad = 0u64;
        for i in self.indices(order) {
            let p = self.region.word_ptr(i, self.cfg.page_size);
            // SAFETY: as in out.
            let v = unsafe { p.read_volatile() };
            if v != pattern::tag(self.cfg.seed, self.cfg.worker, i as u64) {
                if (bad as usize) < self.cfg.max_reports {
                    eprintln!(
                        "swapfs-swaptest: worker {} (pid {}): page {}: read {v:#018x}, wrote {:#018x}",
                        self.cfg.worker,
                        self.pid,
                        i,
                        pattern::tag(self.cfg.seed, self.cfg.worker, i as u64)
                    );
                }
                bad += 1;
            }
        }
        bad
    }
}

# SPDX-License-Identifier: GPL-2.0
#
# swapfs: the two commands of the README are the contract.
#
#   make demo     build what is needed and show swapfs doing its job
#   make check    run every test layer on every test kernel
#
# Other targets:
#   make                      build swapfs.ko against every test kernel
#   make KDIR=/path/to/tree   build swapfs.ko against your own kernel tree,
#                             in place (make -C $KDIR M=$PWD LLVM=1)
#   make CLIPPY=1             the same, linted with clippy
#   make kdir K=7.3           print the cached build directory of a kernel
#   make vm K=7.3             an interactive shell on a test kernel
#   make setup                install the host tools, build the test kernels
#   make tools                build the host tools (mkfs.swapfs, fsck.swapfs, ...)
#   make fmt                  rustfmt the Rust sources (check: make fmt-check)
#   make bench                the benchmark (Documentation/benchmarks.md); K=7.2 for 7.2,
#                             BENCH_ARGS="--rounds 3 --no-cost" etc. (scripts/bench -h)
#   make stress               the swap kselftest at its larger size, both kernels
#   make crash                power cuts during a metadata-heavy workload, then
#                             replay and checks, both kernels; CUTS=21 per
#                             kernel, CRASH_ARGS="--seed S ..." (scripts/crashtest -h);
#                             then the write-reordering test: POINTS=170 replay
#                             points per kernel and block size, REORDER_ARGS
#                             (scripts/reordertest -h)
#   make fstests              fstests (kdave/xfstests) on swapfs in test VMs: XFSTESTS=
#                             a checkout or tarball (default: the snapshot in
#                             ../shared/third_party), FSTESTS_ARGS (-g quick),
#                             K (7.3), FSTESTS_BS (4096), FSTESTS_JOBS (2 VMs);
#                             scripts/fstests -h
#   make fuzz                 hostile images: fsck.swapfs on the host and mount +
#                             exercise in the VM, FUZZ_COUNT (10000) seeds from
#                             FUZZ_START (0) on kernel K (7.3), e.g.
#                             make fuzz K=7.3-debug FUZZ_COUNT=2000 (scripts/fuzz -h)
#
# Kernel series are pinned in scripts/versions.mk; K= picks one, KERNELS=
# narrows `make check` (e.g. make check KERNELS=7.3).

SHELL := /bin/bash
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include $(TOP)/scripts/versions.mk
KERNELS ?= $(subst ",,$(SWAPFS_KERNELS))
K ?= $(firstword $(KERNELS))
export KERNELS

.PHONY: all module setup kdir vm demo check bench stress crash fstests fuzz tools fmt fmt-check clean

ifdef KDIR
all module:
	$(MAKE) -C $(KDIR) M=$(TOP) LLVM=1 $(if $(CLIPPY),CLIPPY=1)
clean:
	$(MAKE) -C $(KDIR) M=$(TOP) LLVM=1 clean
else
all module:
	@set -e; for k in $(KERNELS); do \
		$(TOP)/scripts/build-module $$k $(if $(CLIPPY),CLIPPY=1); done
clean:
	rm -rf $(TOP)/tools/target
endif

setup:
	$(TOP)/scripts/setup

kdir:
	@$(TOP)/scripts/setup $(K)

vm:
	$(TOP)/scripts/vm --disk scratch0=1G --disk scratch1=1G $(K)

demo:
	$(TOP)/scripts/demo

check:
	$(TOP)/scripts/check

bench:
	$(TOP)/scripts/bench --kernel $(K) $(BENCH_ARGS)

stress:
	SWAPFS_SWAP_STRESS=1 SWAPFS_TESTS=swapfs_swap.sh SWAPFS_KSFT_TIMEOUT=5400 DEBUG_KERNELS= \
		SWAPFS_BLOCK_SIZES="$${SWAPFS_BLOCK_SIZES:-4096 2048 1024}" \
		CHECK_TIMEOUT=$${CHECK_TIMEOUT:-7200} $(TOP)/scripts/check

crash:
	$(TOP)/scripts/crashtest --cuts $(or $(CUTS),21) $(CRASH_ARGS)
	$(TOP)/scripts/reordertest --points $(or $(POINTS),170) $(REORDER_ARGS)

fstests:
	$(TOP)/scripts/fstests --kernel $(K)

fuzz:
	$(TOP)/scripts/fuzz --kernel $(K) --start $(or $(FUZZ_START),0) \
		--count $(or $(FUZZ_COUNT),10000) $(FUZZ_ARGS)

tools:
	@. $(TOP)/scripts/lib.sh && tools_build

fmt:
	rustfmt $(TOP)/rust/swapfs.rs
	cd $(TOP)/tools && cargo fmt

fmt-check:
	rustfmt --check $(TOP)/rust/swapfs.rs
	cd $(TOP)/tools && cargo fmt --check

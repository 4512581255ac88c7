#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of the swapfs kselftests: KTAP output, module handling,
# and a per-test check of the kernel log for splats.
#
# A test sources this file, declares its plan with ktap_plan, reports each
# check with ok/fail, and ends with ktap_done (which adds one last check:
# the kernel logged no oops, BUG, WARNING, KASAN or lockdep report while the
# test ran).

SELFTESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SWAPFS_TOP=${SWAPFS_TOP:-$(cd "$SELFTESTS/.." && pwd)}
SWAPFS_KO=${SWAPFS_KO:-}

# KTAP through the kernel's own helpers (ktap_helpers.sh, beside lib.mk in
# the kselftest tree the Makefile names as KSFT).
KSFT=${KSFT:-}
if [ -z "$KSFT" ] || [ ! -r "$KSFT/kselftest/ktap_helpers.sh" ]; then
	echo "Bail out! ktap_helpers.sh not found: set KSFT to a kernel tree's tools/testing/selftests"
	exit 1
fi
# shellcheck source=/dev/null
. "$KSFT/kselftest/ktap_helpers.sh"

ktap_plan() {
	ktap_print_header
	ktap_set_plan $(($1 + 1)) # + the final splat check
	DMESG_START=$(dmesg | wc -l)
}

# ktap_helpers.sh prints descriptions unquoted: no globbing of them here.
ok() { # description
	local -
	set -f
	ktap_test_pass "$*"
}

fail() { # description [details...]
	local -
	set -f
	ktap_test_fail "$1"
	shift
	local arg line
	# Every line of every detail as a KTAP diagnostic, so that a command's
	# multi-line output cannot be mistaken for a result line.
	for arg in "$@"; do
		while IFS= read -r line; do echo "# $line"; done <<<"$arg"
	done
	# The kernel's last words, now: later tests may fill the log buffer
	# before anyone reads it (an OOM kill's report, an IO error).
	dmesg 2>/dev/null | tail -n 50 | while IFS= read -r line; do echo "# kernel: $line"; done
}

skip() { # description reason
	local -
	set -f
	ktap_print_msg "$1: skipped: $2"
	ktap_test_skip "$1"
}

# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		fail "$desc" "command: $*" "$out"
	fi
}

# check_fails DESCRIPTION PATTERN COMMAND...: ok if the command fails and
# its output matches the extended regular expression PATTERN (e.g. the
# strerror text of the expected errno).
check_fails() {
	local desc=$1 want=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		fail "$desc" "command succeeded but should fail: $*" "$out"
	elif ! grep -qE -- "$want" <<<"$out"; then
		fail "$desc" "command: $*" "expected /$want/, got: $out"
	else
		ok "$desc"
	fi
}

# dmesg lines logged since the test started.
dmesg_since_start() {
	dmesg | tail -n +$((DMESG_START + 1))
}

ktap_done() {
	local splats
	if splats=$(dmesg_since_start | "$SWAPFS_TOP/scripts/splats"); then
		mapfile -t lines <<<"$splats"
		fail "no kernel splat during the test" "${lines[@]}"
	else
		ok "no kernel splat during the test"
	fi
	ktap_print_msg "$((KTAP_TESTNO - 1)) of $KSFT_NUM_TESTS planned checks in ${SECONDS} s"
	ktap_finished
}

require_module_file() {
	if [ -z "$SWAPFS_KO" ] || [ ! -f "$SWAPFS_KO" ]; then
		echo "1..0 # SKIP SWAPFS_KO does not name a built swapfs.ko"
		exit 4
	fi
}

module_loaded() {
	grep -q '^swapfs ' /proc/modules
}

load_module() {
	module_loaded || insmod "$SWAPFS_KO" "$@"
}

unload_module() {
	if module_loaded; then rmmod swapfs; fi
}

# The swap hook the running kernel offers: 7.3 replaced a_ops->swap_rw
# with struct swap_ops.
kernel_swap_hook() {
	local v
	v=$(uname -r | cut -d. -f1,2)
	if [ "$(printf '%s\n7.3\n' "$v" | sort -V | head -n1)" = 7.3 ]; then
		echo swap_ops
	else
		echo swap_rw
	fi
}

DEBUGFS=/sys/kernel/debug
mount_debugfs() {
	mountpoint -q "$DEBUGFS" || mount -t debugfs none "$DEBUGFS"
}

# The host tools (mkfs.swapfs, fsck.swapfs, test programs), built by
# `make check` on the host and visible in the guest through the shared root.
TOOLS_BIN=$SWAPFS_TOP/tools/target/release
export PATH="$TOOLS_BIN:$PATH"

# The helpers (*.py) need only the standard library. Start them with the
# distribution's interpreter and without site-packages (-S): under TCG a
# python3 found first on PATH (a venv, a pyenv shim) takes 1.4 s to start
# and /usr/bin/python3 -S 0.15 s, and the suites start one hundreds of
# times (the extent suite spent 170 of its 173 s per block size on it).
if [ -x /usr/bin/python3 ]; then
	python3() { /usr/bin/python3 -S "$@"; }
	export -f python3
fi

require_tools() {
	if [ ! -x "$TOOLS_BIN/mkfs.swapfs" ] || [ ! -x "$TOOLS_BIN/fsck.swapfs" ]; then
		echo "1..0 # SKIP the host tools are not built (make tools)"
		exit 4
	fi
}

skip_all() {
	ktap_skip_all "$*"
	exit "$KSFT_SKIP"
}

# The block device of scratch disk N (scripts/vm --disk scratchN=SIZE);
# fails if there is none: dev=$(scratch_dev 0) || skip_all "..."
scratch_dev() {
	local link=/dev/disk/by-id/virtio-scratch$1
	[ -e "$link" ] && readlink -f "$link"
}

# The block sizes a test covers: all three unless SWAPFS_BLOCK_SIZES
# narrows them (the debug kernel runs 4096 only).
BLOCK_SIZES=${SWAPFS_BLOCK_SIZES:-4096 2048 1024}
NR_BLOCK_SIZES=$(wc -w <<<"$BLOCK_SIZES")

MNT=/tmp/swapfs-mnt
mkdir -p "$MNT"
# Leave nothing mounted behind, whatever happens.
cleanup_mounts() {
	while mountpoint -q "$MNT" 2>/dev/null; do umount "$MNT" 2>/dev/null || umount -l "$MNT"; done
}
trap cleanup_mounts EXIT

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Swap IO through swapfs, at each block size: swapfiles written with dd and
# preallocated with fallocate, swapfs-swaptest filling a memcg several times
# over (every page checked after swap-in, /proc/vmstat and the per-swapfile
# counters compared), swapoff while pages are out, two swapfiles with
# priorities, swapon --discard, then a clean fsck.
#
# SWAPFS_SWAP_STRESS=1 selects the larger variant (`make stress`);
# SWAPFS_SWAP_LIGHT=1 a lighter one for the debug kernel (make check): every
# step, with one sweep per run and less memory swapped, and without the
# benchmark's workload (a figure for make bench, which runs on 7.3 and 7.2).
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
command -v swapfs-swaptest >/dev/null || skip_all "swapfs-swaptest is not built (make tools)"
load_module
mount_debugfs
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup ||
	skip_all "cannot mount cgroup2 on /sys/fs/cgroup"
[ "$(tail -n +2 /proc/swaps | wc -l)" = 0 ] || skip_all "other swap is active (see /proc/swaps)"
devname=$(basename "$dev")
dbg=$DEBUGFS/swapfs/$devname/swapfiles
hold=/tmp/swapfs-swaptest.hold
cg=swapfs-selftest

if [ -n "${SWAPFS_SWAP_STRESS:-}" ]; then
	# 256 MiB of anonymous memory over 4 processes under a 64 MiB limit.
	mem=64M procs=4 ratio=4 swap_mb=384 hi_mb=128 small_ratio=1.5 spill_ratio=5
	sweeps=seq,random,seq fa_sweeps=random,seq bench=1
elif [ -n "${SWAPFS_SWAP_LIGHT:-}" ]; then
	# 16 MiB over 2 processes under an 8 MiB limit, one sweep per run.
	mem=8M procs=2 ratio=2 swap_mb=40 hi_mb=16 small_ratio=1.5 spill_ratio=4
	sweeps=random fa_sweeps=random bench=0
else
	# 24 MiB over 2 processes under an 8 MiB limit: a few seconds each.
	mem=8M procs=2 ratio=3 swap_mb=40 hi_mb=16 small_ratio=1.5 spill_ratio=4
	sweeps=seq,random fa_sweeps=random,seq bench=1
fi
# The limit is memory.high, not memory.max: under a hard limit this small
# the memcg OOM killer fires whenever every charged page is under swap
# writeback at once, which a one-CPU TCG guest reaches now and then with
# mm's own swap paths as with swapfs (measured, the spill load below, 22
# runs each: raw partition 1 OOM kill, ext4 swapfile 0, swapfs 2; the same
# write latency and merges on all three). Past memory.high the workers are
# reclaimed and throttled instead; the swap IO is the same.
st() { # swapfs-swaptest with the common options
	swapfs-swaptest -q --cgroup "$cg" --memory-high "$mem" --swapfs-debugfs "$dbg" "$@"
}

# The workload of `make bench` (swapfs-swaptest throughput, random order,
# one process) on the active swapfile: it passes its own checks (every page
# read back, no OOM kill, the swapfile's counters equal to vmstat) and
# reports what scripts/bench-report reads; where mm counts its swap IOs
# (7.3), swapfs submitted at least one bio for each.
bench_workload() {
	local out k ios bios
	out=$(swapfs-swaptest throughput -q --cgroup "$cg" --memory-high "$mem" \
		--swapfs-debugfs "$dbg" --swapfile "$MNT/swap" --blkstat "$devname" \
		--order random --procs 1 --ratio 2 2>&1) || { echo "$out"; return 1; }
	for k in out.swap_mib_s out.worker_secs out.secs in.swap_mib_s \
		out.swapfs.pages_per_bio "out.blk.$devname.write_kib_per_io" \
		"in.blk.$devname.read_kib_per_io"; do
		grep -q "^$k=" <<<"$out" || { echo "no $k in the report:"; echo "$out"; return 1; }
	done
	grep -q '^nrswpout ' /proc/vmstat || return 0
	ios=$(sed -n 's/^out\.mm_swap_ios=//p' <<<"$out")
	bios=$(sed -n 's/^out\.swapfs\.bios=//p' <<<"$out")
	[ "${ios:-0}" -gt 0 ] && [ "${bios:-0}" -ge "$ios" ] ||
		{ echo "mm swap IOs '$ios', swapfs bios '$bios':"; echo "$out"; return 1; }
}

swapoff_ours() {
	local f
	for f in $(tail -n +2 /proc/swaps | awk '{print $1}'); do
		case $f in "$MNT"/*) swapoff "$f" 2>/dev/null ;; esac
	done
}
cleanup() {
	rm -f "$hold"
	[ -n "${bgpid:-}" ] && kill -9 "$bgpid" 2>/dev/null
	swapoff_ours
	rmdir "/sys/fs/cgroup/$cg" 2>/dev/null
	cleanup_mounts
}
trap cleanup EXIT

# field FILE KEY: a counter of one active swapfile from debugfs (empty if
# the swapfile is not active).
field() {
	awk -v f="$1" -v k="$2" '$1 == f { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' "$dbg"
}

# swapon_logged ARGS...: swapon; on failure, swapfs' reason from dmesg.
swapon_logged() {
	local out
	if ! out=$(swapon "$@" 2>&1); then
		echo "$out"
		dmesg | grep 'swapfs: swapon' | tail -n 2
		return 1
	fi
}

# mkswapfile NAME MB: a dd-written swapfile, mkswap'ed.
mkswapfile() {
	dd if=/dev/zero of="$MNT/$1" bs=1M count="$2" conv=fsync status=none &&
		chmod 600 "$MNT/$1" && mkswap "$MNT/$1" >/dev/null
}

# blk_discards: discard requests completed on the scratch disk so far.
blk_discards() {
	awk '{print $12}' "/sys/class/block/$devname/stat"
}

ktap_plan $((NR_BLOCK_SIZES * (17 + bench)))

for bs in $BLOCK_SIZES; do
	t="[$bs]"
	pages_per_page=$((4096 / bs))

	# 1. The plain recipe: a fresh filesystem and one dd of the whole file.
	# With blocks smaller than a page, swapon needs every page physically
	# contiguous and page-aligned on the device.
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	mkswapfile swap "$swap_mb"
	check "$t swapon of a swapfile dd-written on a fresh filesystem" swapon_logged "$MNT/swap"

	# 2. If that was refused, find the pad that makes the data page-aligned
	# (the refusal above is the finding; the IO tests below still need a
	# swapfile at this block size).
	pad=0
	while ! grep -q "^$MNT/swap " /proc/swaps && [ $pad -lt $((pages_per_page - 1)) ]; do
		pad=$((pad + 1))
		umount "$MNT"
		mkfs.swapfs -f -q -b "$bs" "$dev"
		mount -t swapfs "$dev" "$MNT"
		head -c $((pad * bs)) /dev/zero >"$MNT/pad" && sync
		mkswapfile swap "$swap_mb"
		swapon "$MNT/swap" 2>/dev/null
	done
	check "$t a page-aligned dd swapfile is active (pad: $pad blocks)" grep -q "^$MNT/swap " /proc/swaps
	head -c 1048576 /dev/urandom >/tmp/swapfs-canary
	cp /tmp/swapfs-canary "$MNT/canary"

	# 3. The integrity test, every page checked in each order, rewritten
	# between sweeps; counters equal to vmstat.
	check "$t swapfs-swaptest: $procs procs, ${ratio}x memory.high $mem, sweeps $sweeps with rewrite" \
		st --procs "$procs" --ratio "$ratio" --order "$sweeps" --rewrite --swapfile "$MNT/swap"
	check "$t the swapfile's counters show the IO, no error, no transaction from swap IO, every IO marked" \
		bash -c "$(declare -f field); dbg=$dbg
			[ \$(field $MNT/swap pages_out) -gt 0 ] && [ \$(field $MNT/swap pages_in) -gt 0 ] &&
			[ \$(field $MNT/swap bios) -gt 0 ] && [ \$(field $MNT/swap write_errors) = 0 ] &&
			[ \$(field $MNT/swap read_errors) = 0 ] && [ \$(field $MNT/swap tx_from_swap_io) = 0 ] &&
			[ \$(field $MNT/swap unmarked_io) = 0 ]"
	[ $bench = 0 ] ||
		check "$t the benchmark's workload (swapfs-swaptest throughput) passes and reports its figures" \
			bench_workload

	# 4. swapoff while the pages are out: swapoff reads every one of them
	# back through swapfs, the processes then check them all. Large folios
	# where the kernel makes them (mm splits them before a swapfile).
	rm -f "$hold" /tmp/swapfs-hold.out
	st --procs "$procs" --ratio "$ratio" --order random --thp --mthp all \
		--swapfile "$MNT/swap" --hold "$hold" >/tmp/swapfs-hold.out 2>&1 &
	bgpid=$!
	for _ in $(seq 600); do [ -e "$hold" ] || ! kill -0 $bgpid 2>/dev/null && break; sleep 0.2; done
	used=$(awk -v f="$MNT/swap" '$1 == f {print $4}' /proc/swaps)
	check "$t swapoff while ${used:-?} KiB are swapped out" \
		bash -c "[ -e $hold ] && [ ${used:-0} -gt 0 ] && swapoff $MNT/swap"
	rm -f "$hold"
	wait $bgpid
	rc=$?
	bgpid=
	if [ $rc = 0 ]; then
		ok "$t after swapoff, every page verifies (swapoff read them back through swapfs)"
	else
		fail "$t after swapoff, every page verifies (swapoff read them back through swapfs)" \
			"swapfs-swaptest exited with $rc" "$(cat /tmp/swapfs-hold.out)"
	fi
	grep -E '^thp\.(fault_alloc|swpout|swpout_fallback)=' /tmp/swapfs-hold.out | sed 's/^/# large folios: /'
	check "$t the swapfile left debugfs at swapoff (table unpinned)" \
		bash -c "! grep -q '^$MNT/swap ' $dbg"

	# 5. A preallocated (unwritten) swapfile.
	if out=$(fallocate -l "${swap_mb}M" "$MNT/swap-fa" 2>&1); then
		chmod 600 "$MNT/swap-fa"
		mkswap "$MNT/swap-fa" >/dev/null
		check "$t swapon of a fallocated (unwritten) swapfile" swapon_logged "$MNT/swap-fa"
		check "$t swapfs-swaptest on the fallocated swapfile: 1 proc, sweeps $fa_sweeps" \
			st --procs 1 --ratio "$ratio" --order "$fa_sweeps" --rewrite --swapfile "$MNT/swap-fa"
		swapoff "$MNT/swap-fa" 2>/dev/null
		# Swap IO bypasses the extent tree: the blocks past the header
		# are still unwritten (and read back as zeroes through the file).
		check "$t swap IO converted none of its unwritten extents" \
			bash -c "python3 $SELFTESTS/extents.py expect-fiemap $MNT/swap-fa \
				'0 4096 -' '4096 $((swap_mb * 1048576)) last,unwritten' &&
				cmp -s -i 4096 -n $((swap_mb * 1048576 - 4096)) $MNT/swap-fa /dev/zero"
		rm -f "$MNT/swap-fa"
	else
		fail "$t swapon of a fallocated (unwritten) swapfile" "fallocate: $out"
		skip "$t swapfs-swaptest on the fallocated swapfile" "no fallocate"
		skip "$t swap IO converted none of its unwritten extents" "no fallocate"
	fi

	# 6. Two swapfiles with priorities: mm fills the higher one first.
	mkswapfile swap-hi "$hi_mb"
	check "$t swapon -p 10 (${hi_mb} MiB) and -p 5 (${swap_mb} MiB)" \
		bash -c "$(declare -f swapon_logged); swapon_logged -p 10 $MNT/swap-hi && swapon_logged -p 5 $MNT/swap"
	lo0=$(field "$MNT/swap" pages_out)
	hi0=$(field "$MNT/swap-hi" pages_out)
	# A load whose excess over the limit fits the higher-priority file.
	check "$t a load that fits the higher-priority swapfile goes there only" \
		bash -c "$(declare -f st field); cg=$cg mem=$mem dbg=$dbg
			st --procs 1 --ratio $small_ratio --order seq &&
			[ \$(field $MNT/swap pages_out) = ${lo0:-x} ] && [ \$(field $MNT/swap-hi pages_out) -gt ${hi0:-0} ]"
	# One sweep whose excess over the limit ((spill_ratio - 1) x mem: 24 MiB,
	# or 256 MiB under stress) is larger than the higher-priority file.
	lo0=$(field "$MNT/swap" pages_out)
	check "$t a larger load spills into the lower-priority swapfile, all verified" \
		bash -c "$(declare -f st field); cg=$cg mem=$mem dbg=$dbg
			st --procs $procs --ratio $spill_ratio --order seq --no-free-swap-check &&
			[ \$(field $MNT/swap pages_out) -gt ${lo0:-0} ]"
	swapoff "$MNT/swap-hi" 2>/dev/null
	swapoff "$MNT/swap" 2>/dev/null

	# 7. swapon --discard: the discards go to the swapfile's own blocks (the
	# real extents swapfs registered), never to the rest of the filesystem.
	d0=$(blk_discards)
	check "$t swapon -d issues discards" \
		bash -c "$(declare -f swapon_logged blk_discards); devname=$devname
			swapon_logged -d $MNT/swap && [ \$(blk_discards) -gt $d0 ]"
	check "$t swapfs-swaptest with discard on" \
		st --procs "$procs" --ratio "$ratio" --order random --swapfile "$MNT/swap"
	check "$t swapoff; other files are intact after the discards" \
		bash -c "swapoff $MNT/swap && cmp /tmp/swapfs-canary $MNT/canary"

	# 8. The filesystem is consistent afterwards.
	check "$t umount, fsck clean, canary intact after remount" \
		bash -c "umount $MNT && fsck.swapfs -n $dev && mount -t swapfs $dev $MNT &&
			cmp /tmp/swapfs-canary $MNT/canary && umount $MNT"
	cleanup_mounts
done

ktap_done

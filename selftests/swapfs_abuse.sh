#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Concurrent abuse of an active, swapping swapfile, at each block size:
# while swapfs-swaptest keeps a memory cgroup swapping through it (every
# page checked when read back), threads attempt to write, truncate,
# fallocate, reflink, dedupe, copy into, map, unlink and rename it, swapon
# it again, unmount the filesystem and unload the module, and other
# swapfiles are swapped on and off in a loop (abuse.py). Each attempt must be
# refused with the kernel's errno, every swapon/swapoff of the others must
# succeed, the swapped data must come back intact, and afterwards the
# swapfile, a file next to it and the filesystem must be as they were.
#
# SWAPFS_ABUSE_SECONDS sets how long the attempts last (default 15).
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
command -v swapfs-swaptest >/dev/null || skip_all "swapfs-swaptest is not built (make tools)"
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup ||
	skip_all "cannot mount cgroup2 on /sys/fs/cgroup"
[ "$(tail -n +2 /proc/swaps | wc -l)" = 0 ] || skip_all "other swap is active (see /proc/swaps)"
secs=${SWAPFS_ABUSE_SECONDS:-15}
cg=swapfs-abuse

cleanup() {
	[ -n "${bgpid:-}" ] && kill -9 "$bgpid" 2>/dev/null
	for f in $(tail -n +2 /proc/swaps | awk '{print $1}'); do
		case $f in "$MNT"/*) swapoff "$f" 2>/dev/null ;; esac
	done
	rmdir "/sys/fs/cgroup/$cg" 2>/dev/null
	cleanup_mounts
}
trap cleanup EXIT

# mkswapfile NAME MB: a dd-written swapfile, mkswap'ed.
mkswapfile() {
	dd if=/dev/zero of="$MNT/$1" bs=1M count="$2" conv=fsync status=none &&
		chmod 600 "$MNT/$1" && mkswap -q "$MNT/$1" >/dev/null
}

ktap_plan $((NR_BLOCK_SIZES * 7))

for bs in $BLOCK_SIZES; do
	t="[$bs]"
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	mkswapfile active 48 && mkswapfile spare1 8 && mkswapfile spare2 8
	dd if=/dev/urandom of="$MNT/data" bs=64K count=16 status=none
	sum_data=$(sha256sum <"$MNT/data")
	swapon "$MNT/active"

	# Memory pressure: 3 x 12 MiB under a 12 MiB limit, read back and
	# rewritten in seq and random sweeps for as long as the attempts run
	# (until $stop exists), then read back once more.
	out=/tmp/swapfs-abuse.swaptest stop=/tmp/swapfs-abuse.stop
	rm -f "$stop"
	swapfs-swaptest -q --cgroup "$cg" --memory-high 12M --procs 3 --ratio 3 \
		--order seq,random --rewrite --until "$stop" >"$out" 2>&1 &
	bgpid=$!
	res=$(python3 "$SELFTESTS/abuse.py" "$secs" "$MNT" "$MNT/active" \
		"$MNT/spare1" "$MNT/spare2" 2>&1)
	rc=$?
	touch "$stop"
	if [ $rc = 0 ]; then
		ok "$t every attempt on the active swapfile was refused with the right errno; spares swapped on and off"
		while IFS= read -r line; do echo "# $line"; done <<<"$res"
	else
		fail "$t every attempt on the active swapfile was refused with the right errno; spares swapped on and off" "$res"
	fi
	wait "$bgpid"
	rc=$?
	bgpid=
	check "$t the swapped data came back intact under the abuse (swapfs-swaptest: status $rc)" \
		bash -c "[ $rc = 0 ] || { cat $out; false; }"
	sed -n 's/^PASS swapfs-swaptest /# swapfs-swaptest: /p' "$out"
	check "$t only the active swapfile is still in use" \
		bash -c "[ \"\$(tail -n +2 /proc/swaps | awk '{print \$1}')\" = '$MNT/active' ]"
	check "$t swapoff" swapoff "$MNT/active"
	# swap IO wrote the swap area; the header page (mkswap's) must be intact,
	# and the data next to it untouched.
	check "$t the swap header is intact" bash -c \
		"[ \"\$(dd if=$MNT/active bs=1 skip=4086 count=10 status=none)\" = SWAPSPACE2 ]"
	check "$t the file next to it is intact, the swapfile is its old size" bash -c \
		"[ \"\$(sha256sum <$MNT/data)\" = '$sum_data' ] && [ \$(stat -c %s $MNT/active) = $((48 << 20)) ]"
	umount "$MNT"
	check "$t fsck is clean" fsck.swapfs -n "$dev"
done

ktap_done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A mixed random workload on swapfs, mirrored on tmpfs, compared byte for
# byte; then unmount, fsck, remount, compare again. At each block size.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
ref=/tmp/swapfs-ref
ops=${SWAPFS_WORKLOAD_OPS:-600}

ktap_plan $((NR_BLOCK_SIZES * 5))
for bs in $BLOCK_SIZES; do
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	rm -rf "$ref" && mkdir -p "$ref"
	seed=$((bs + 17))
	check "[$bs] $ops random operations give the same outcome as on tmpfs (seed $seed)" \
		python3 "$SELFTESTS/workload.py" run "$MNT" "$ref" "$seed" "$ops"
	check "[$bs] the trees are identical" python3 "$SELFTESTS/workload.py" compare "$MNT" "$ref"
	check "[$bs] umount" umount "$MNT"
	check "[$bs] fsck is clean" fsck.swapfs -n "$dev"
	mount -t swapfs "$dev" "$MNT"
	check "[$bs] identical after remount" python3 "$SELFTESTS/workload.py" compare "$MNT" "$ref"
	umount "$MNT"
done
ktap_done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module life cycle: load, parameters, filesystem registration, the swap
# hook probe, unload refused while in use, unload, reload.
. "$(dirname "$0")/lib.sh"
require_module_file
mount_debugfs
unload_module

ktap_plan 13

check "modinfo: license is GPL" \
	bash -c "modinfo -F license '$SWAPFS_KO' | grep -qx GPL"
check "modinfo: bio_reserve parameter is described" \
	bash -c "modinfo -F parm '$SWAPFS_KO' | grep -q '^bio_reserve:'"
want=$(kernel_swap_hook)
check "modinfo: swap hook is $want for kernel $(uname -r)" \
	bash -c "modinfo -F swap_hook '$SWAPFS_KO' | grep -qx '$want'"

check_fails "insmod bio_reserve=0 is refused with EINVAL" "Invalid" \
	insmod "$SWAPFS_KO" bio_reserve=0
check "a refused load leaves no module behind" bash -c '! grep -q "^swapfs " /proc/modules'
check "dmesg says why bio_reserve=0 is refused" \
	bash -c "dmesg | tail -n 5 | grep -q 'swapfs: bio_reserve=0: at least one bio'"

check "insmod swapfs.ko" insmod "$SWAPFS_KO" bio_reserve=32
check "swapfs is listed in /proc/filesystems" grep -qw swapfs /proc/filesystems
check "debugfs reports the swap hook and the parameter" \
	bash -c "grep -qx 'swap_hook: $want' $DEBUGFS/swapfs/features &&
		grep -qx 'bio_reserve: 32' $DEBUGFS/swapfs/features"

# A file of the module held open pins it.
exec 3<"$DEBUGFS/swapfs/features"
check_fails "rmmod is refused while a swapfs file is open" "in use" rmmod swapfs
exec 3<&-

check "rmmod swapfs once nothing uses it" rmmod swapfs
check "swapfs is gone from /proc/filesystems" bash -c '! grep -qw swapfs /proc/filesystems'
check "the module loads again" bash -c "insmod '$SWAPFS_KO' && rmmod swapfs"

ktap_done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# FS_IOC_SHUTDOWN (xfs_io's "shutdown", fstests' godown): after a shutdown
# every operation fails with EIO and nothing more reaches the disk; the next
# mount replays the journal. Each flag keeps what it promises: DEFAULT
# writes everything first, LOGFLUSH commits the journal (metadata) but no
# file data, NOLOGFLUSH writes nothing. An active swapfile keeps working
# (swap IO never enters the filesystem) and swapoff works.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"

# shutdown PATH FLAGS: the ioctl as root (prints the errno name on failure).
shutdown_fs() {
	python3 - "$1" "$2" <<'EOF'
import errno, fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0x8004587D, struct.pack("I", int(sys.argv[2])))
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
EOF
}

# expect_eio DESCRIPTION COMMAND...: the command fails with EIO.
expect_eio() {
	local desc=$1
	shift
	check_fails "$desc" "Input/output error|EIO" "$@"
}

ktap_plan $((NR_BLOCK_SIZES * 20 + 5))

for bs in $BLOCK_SIZES; do
	# NOLOGFLUSH: what was fsynced survives, everything fails with EIO.
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	mkdir "$MNT/d"
	head -c 200000 /dev/urandom >"$MNT/d/kept"
	sync "$MNT/d/kept" && sync "$MNT/d"
	sum=$(md5sum <"$MNT/d/kept")
	exec 7>"$MNT/open"
	check "[$bs] shutdown -f 2 (NOLOGFLUSH)" shutdown_fs "$MNT" 2
	expect_eio "[$bs] stat fails with EIO after shutdown" stat "$MNT/d/kept"
	expect_eio "[$bs] reading fails with EIO" cat "$MNT/d/kept"
	expect_eio "[$bs] creating a file fails with EIO" touch "$MNT/new"
	expect_eio "[$bs] listing a directory fails with EIO" ls "$MNT/d"
	expect_eio "[$bs] writing to an open file fails with EIO" \
		bash -c "echo data >&7"
	expect_eio "[$bs] syncfs fails with EIO" python3 -c "
import os; fd = os.open('$MNT', os.O_RDONLY); os.syncfs(fd) if hasattr(os, 'syncfs') else os.fsync(fd)"
	check "[$bs] a second shutdown succeeds and changes nothing" shutdown_fs "$MNT" 0
	exec 7>&-
	check "[$bs] umount after shutdown" umount "$MNT"
	check "[$bs] mount replays the journal" mount -t swapfs "$dev" "$MNT"
	check "[$bs] the fsynced file survived NOLOGFLUSH" \
		bash -c "[ \"\$(md5sum <'$MNT/d/kept')\" = '$sum' ]"
	check "[$bs] a shutdown is not an error: the mount does not mark the filesystem" \
		bash -c "dmesg | tail -n 5 | grep -q 'recovering the journal' &&
			! dmesg | tail -n 5 | grep -qE 'marked as having had errors|errors were detected'"
	umount "$MNT"
	check "[$bs] fsck is clean after NOLOGFLUSH and replay" fsck.swapfs -n "$dev"

	# LOGFLUSH: metadata of the running transaction is committed.
	mount -t swapfs "$dev" "$MNT"
	mkdir "$MNT/logged"
	check "[$bs] shutdown 1 (LOGFLUSH)" shutdown_fs "$MNT" 1
	umount "$MNT"
	mount -t swapfs "$dev" "$MNT"
	check "[$bs] a directory made just before LOGFLUSH exists after replay" test -d "$MNT/logged"
	umount "$MNT"
	check "[$bs] fsck is clean after LOGFLUSH and replay" fsck.swapfs -n "$dev"

	# DEFAULT: data written without fsync reaches the disk.
	mount -t swapfs "$dev" "$MNT"
	head -c 100000 /dev/urandom >"$MNT/unsynced"
	sum=$(md5sum <"$MNT/unsynced")
	check "[$bs] shutdown 0 (DEFAULT)" shutdown_fs "$MNT" 0
	expect_eio "[$bs] writes fail after DEFAULT too" touch "$MNT/after"
	umount "$MNT"
	mount -t swapfs "$dev" "$MNT"
	check "[$bs] data written before DEFAULT survived without fsync" \
		bash -c "[ \"\$(md5sum <'$MNT/unsynced')\" = '$sum' ]"
	umount "$MNT"
	check "[$bs] fsck is clean after DEFAULT" fsck.swapfs -n "$dev"
done

mkfs.swapfs -f -q "$dev"
mount -t swapfs "$dev" "$MNT"
check_fails "an unknown shutdown flag is refused (EINVAL)" EINVAL shutdown_fs "$MNT" 3
check_fails "shutdown needs CAP_SYS_ADMIN (EPERM)" EPERM \
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	/usr/bin/python3 -S -c "
import errno, fcntl, os, struct, sys
try:
    fcntl.ioctl(os.open('$MNT', os.O_RDONLY), 0x8004587D, struct.pack('I', 2))
except OSError as e:
    print(errno.errorcode[e.errno]); sys.exit(1)"
check_fails "other ioctls are refused with ENOTTY" "ENOTTY|Inappropriate ioctl" python3 -c "
import errno, fcntl, os, sys
try:
    fcntl.ioctl(os.open('$MNT', os.O_RDONLY), 0x5401)
except OSError as e:
    print(errno.errorcode[e.errno]); sys.exit(1)"

# An active swapfile goes on working after a shutdown; swapoff works.
dd if=/dev/zero of="$MNT/swap" bs=1M count=16 status=none && chmod 600 "$MNT/swap"
mkswap -q "$MNT/swap" >/dev/null && swapon "$MNT/swap"
shutdown_fs "$MNT" 2 >/dev/null
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
check "swap IO to an active swapfile works after shutdown (every page read back)" \
	swapfs-swaptest -q --memory-high 8M --procs 1 --ratio 2 --order seq
check "swapoff after shutdown" swapoff "$MNT/swap"
umount "$MNT"

ktap_done

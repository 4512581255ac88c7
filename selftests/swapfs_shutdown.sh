#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# FS_IOC_SHUTDOWN (xfs_io's "shutdown", fstests' godown): after a shutdown
# every operation fails with EIO and nothing more reaches the disk; the next
# mount replays the journal. Each flag keeps what it promises: DEFAULT
# writes everything first, LOGFLUSH commits the journal (metadata) but no
# file data, NOLOGFLUSH writes nothing. An active swapfile keeps working
# (swap IO never enters the filesystem) and swapoff works. fsck.swapfs on a
# log left to recover: -n checks the filesystem as the kernel will replay
# it, -y replays it as the kernel would (the same files as a kernel replay).
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

# tree_sums DIR: every name under DIR with its type, link count, size and
# symlink target, and the checksum of every regular file.
tree_sums() {
	(cd "$1" && find . -printf '%p %y %n %s %l\n' | sort &&
		find . -type f -exec md5sum {} + | sort)
}

ktap_plan $((NR_BLOCK_SIZES * 29 + 7))

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

# fsck.swapfs on a log that needs recovery (what fstests' dm-log-writes,
# dm-thin and dm-error tests leave): -n checks the filesystem as the
# kernel will replay it (exit 0: needing recovery is no problem), -y
# replays it to disk (exit 1). A copy replayed by fsck and one replayed by
# the kernel (a read-only mount, which replays and writes nothing else)
# hold the same blocks outside the journal, and the same files.
dev1=$(scratch_dev 1) || dev1=""
for bs in $BLOCK_SIZES; do
	if [ -z "$dev1" ]; then
		for what in "shutdown -f" "fsck -n" "fsck -y" "fsck -n after -y" \
			"kernel replay" "same blocks" "fsynced file" "same files" \
			"fsck after kernel replay"; do
			skip "[$bs] fsck and a log to recover: $what" "no scratch disk 1 (scripts/vm --disk scratch1=SIZE)"
		done
		continue
	fi
	# 64 MiB: the copy is quick.
	blocks=$((64 * 1048576 / bs))
	mkfs.swapfs -f -q -b "$bs" "$dev" "$blocks"
	jblocks=$(fsck.swapfs -nv "$dev" | sed -n 's/^note: journal: \([0-9]*\) blocks.*/\1/p')
	mount -t swapfs "$dev" "$MNT"
	mkdir -p "$MNT/d/e/f"
	head -c 300000 /dev/urandom >"$MNT/d/synced"
	sync "$MNT/d/synced"
	sum=$(md5sum <"$MNT/d/synced")
	for i in 1 2 3 4 5; do echo "file $i" >"$MNT/d/small$i"; done
	head -c 70000 /dev/urandom >"$MNT/unsynced"
	ln "$MNT/d/small1" "$MNT/d/e/hard"
	ln -s ../small2 "$MNT/d/e/sym"
	rm "$MNT/d/small3"
	mv "$MNT/d/small4" "$MNT/d/e/f/moved"
	check "[$bs] xfs_io shutdown -f (LOGFLUSH) with a log to recover" \
		xfs_io -x -c "shutdown -f" "$MNT"
	umount "$MNT"
	check "[$bs] fsck -n exits 0 and checks the log as replayed" bash -c "
		out=\$(fsck.swapfs -n '$dev') || { echo \"\$out\"; exit 1; }
		echo \"\$out\"
		grep -qE '^journal: needs recovery, [1-9][0-9]* transactions? \\(tids? [0-9-]+\\), [1-9][0-9]* blocks?; checked as replayed\$' <<<\"\$out\""
	dd if="$dev" of="$dev1" bs=1M count=64 conv=fsync status=none
	check "[$bs] fsck -y replays the log (exit 1)" bash -c "
		out=\$(fsck.swapfs -y '$dev1'); rc=\$?; echo \"\$out\"; [ \$rc = 1 ] &&
		grep -qE '^journal: replayed [1-9][0-9]* transactions?, [1-9][0-9]* blocks?\$' <<<\"\$out\""
	check "[$bs] fsck -n after fsck -y: clean, nothing to recover" bash -c "
		out=\$(fsck.swapfs -n '$dev1') || { echo \"\$out\"; exit 1; }
		echo \"\$out\"; ! grep -q 'needs recovery' <<<\"\$out\""
	check "[$bs] the kernel replays the other copy (read-only mount)" bash -c "
		mount -t swapfs -o ro '$dev' '$MNT' && dmesg | tail -n 5 | grep -q 'recovering the journal' &&
		umount '$MNT'"
	check "[$bs] fsck's replay wrote what the kernel's did (blocks outside the journal)" bash -c "
		cmp <(dd if='$dev' bs=$bs count=1 status=none) <(dd if='$dev1' bs=$bs count=1 status=none) &&
		cmp <(dd if='$dev' bs=$bs skip=$((1 + jblocks)) count=$((blocks - 1 - jblocks)) status=none) \
			<(dd if='$dev1' bs=$bs skip=$((1 + jblocks)) count=$((blocks - 1 - jblocks)) status=none)"
	mount -t swapfs "$dev" "$MNT"
	tree_sums "$MNT" >/tmp/swapfs-sums.kernel
	umount "$MNT"
	mount -t swapfs "$dev1" "$MNT"
	check "[$bs] the fsynced file survived in the copy fsck replayed" \
		bash -c "[ \"\$(md5sum <'$MNT/d/synced')\" = '$sum' ]"
	tree_sums "$MNT" >/tmp/swapfs-sums.fsck
	umount "$MNT"
	check "[$bs] fsck's replay and the kernel's hold the same files" \
		diff /tmp/swapfs-sums.kernel /tmp/swapfs-sums.fsck
	check "[$bs] fsck is clean after the kernel's replay" fsck.swapfs -n "$dev"
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

# O_DSYNC promises a direct write's data and what is needed to read it
# back. On a disk without a volatile write cache (or with FUA), iomap ends
# a direct write to written blocks without a sync unless the mapping is
# dirty (IOMAP_F_DIRTY): blocks that writeback converted, and the size it
# raised, in a transaction not yet committed, must count as dirty. The
# flusher (not fsync or sync) writes the file back, which leaves its inode
# clean to the VFS (I_DIRTY_DATASYNC, what swapfs used to test); NOLOGFLUSH
# then drops the running transaction, as a power cut would. (Until the
# direct path stopped syncing a second time in write_iter, that second
# sync hid the flaw, at the cost of a second cache flush per write.)
umount "$MNT"
wc=/sys/block/$(basename "$dev")/queue/write_cache
old_wc=$(cat "$wc")
echo "write through" >"$wc"
mount -t swapfs -o commit=3600 "$dev" "$MNT"
touch "$MNT/dsync" && sync
head -c 65536 /dev/urandom >"$MNT/dsync"
old_expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
old_wb=$(cat /proc/sys/vm/dirty_writeback_centisecs)
echo 1 >/proc/sys/vm/dirty_expire_centisecs
echo 10 >/proc/sys/vm/dirty_writeback_centisecs
# Written back: the blocks write() allocated unwritten are converted.
for _ in $(seq 100); do
	filefrag -v "$MNT/dsync" | grep -q unwritten || break
	sleep 0.1
done
sleep 1
echo "$old_expire" >/proc/sys/vm/dirty_expire_centisecs
echo "$old_wb" >/proc/sys/vm/dirty_writeback_centisecs
check "the flusher wrote the file back (no unwritten extent left)" \
	bash -c "filefrag -v $MNT/dsync | grep -q 'eof' && ! filefrag -v $MNT/dsync | grep -q unwritten"
head -c 4096 /dev/urandom >/tmp/swapfs-dsync
python3 - "$MNT/dsync" /tmp/swapfs-dsync <<'EOF'
import mmap, os, sys
buf = mmap.mmap(-1, 4096)
buf.write(open(sys.argv[2], "rb").read())
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
assert os.pwritev(fd, [buf], 0) == 4096
EOF
shutdown_fs "$MNT" 2 >/dev/null
umount "$MNT"
echo "$old_wc" >"$wc"
mount -t swapfs "$dev" "$MNT"
check "an O_DSYNC direct overwrite of blocks writeback allocated survives a power cut (write-through disk)" \
	cmp -n 4096 /tmp/swapfs-dsync "$MNT/dsync"
umount "$MNT"
mkfs.swapfs -f -q "$dev"
mount -t swapfs "$dev" "$MNT"

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

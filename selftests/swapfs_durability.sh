#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What must hold at any instant a crash could take, checked on copies of the
# device taken while the filesystem is mounted (an O_DIRECT copy holds what
# reached the disk: what the journal committed, and data written around it).
#
# - Blocks freed by a transaction are not reused before that transaction
#   commits: a file deleted and not yet committed still owns its blocks on
#   disk, so data written into them by another file would appear in it
#   after a crash (and a freed extent-tree block reused as a new one
#   aborts the journal).
# - A frozen filesystem (fsfreeze -f) is clean on the device: a copy needs
#   no journal replay and holds every file written before the freeze; and
#   nothing changes it until the thaw, not even the freeing of an unlinked
#   file whose last user goes away meanwhile.
# - Truncate: once a new size is on disk, so are the zeroes past it in its
#   last block (a later extension must not show the old bytes); a truncate
#   interrupted by a crash (here a shutdown) is finished by the next mount
#   (the inode is on the orphan list meanwhile), leaving no block past the
#   end of the file.
# - A file's size on disk covers only data on disk: data written past the
#   end and not yet written back when the system stops leaves the file at
#   its old size, never longer and full of zeroes (fstests generic/635).
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
copy=$(scratch_dev 1) || skip_all "no scratch disk 1 (scripts/vm --disk scratch1=SIZE)"
command -v xfs_io >/dev/null || skip_all "xfs_io not found (xfsprogs)"

ktap_plan $((NR_BLOCK_SIZES * 21))

# shutdown_logflush MNT: FS_IOC_SHUTDOWN with LOGFLUSH: the journal
# commits, file data still in the page cache does not reach the disk.
shutdown_logflush() {
	python3 - "$1" <<'EOF2'
import fcntl, os, struct, sys
fcntl.ioctl(os.open(sys.argv[1], os.O_RDONLY), 0x8004587D, struct.pack("I", 1))
EOF2
}

# Every filesystem here is at most 64 MiB, so that a crash copy (of the
# whole filesystem, not of the whole scratch disk) is quick.
size=64M

# crash_copy: the device as a crash now would leave it.
crash_copy() {
	dd if="$dev" of="$copy" bs=1M count=64 iflag=direct status=none conv=fsync
}

for bs in $BLOCK_SIZES; do
	# A small filesystem, a long commit interval: nothing commits unless
	# the filesystem asks.
	mkfs.swapfs -f -q -b "$bs" "$dev" 32M
	mount -t swapfs -o commit=600 "$dev" "$MNT"
	xfs_io -f -c "pwrite -q -S 0x41 0 1M" -c fsync "$MNT/old"
	# Fill the rest: only the blocks of "old" will be free after it goes.
	xfs_io -f -c "falloc 0 64M" "$MNT/fill" 2>/dev/null
	sync
	rm "$MNT/old"
	# Direct IO writes its data before the allocation commits.
	check "[$bs] a direct write after a delete succeeds" \
		xfs_io -d -f -c "pwrite -q -S 0x42 0 1M" "$MNT/new"
	crash_copy
	umount "$MNT"
	check "[$bs] the crashed copy mounts" mount -t swapfs "$copy" "$MNT"
	check "[$bs] no file of the crashed copy holds the new file's data in blocks it owned before" \
		bash -c "! { [ -f '$MNT/old' ] && od -An -tx1 '$MNT/old' | grep -q 42; }"
	umount "$MNT"
	check "[$bs] fsck is clean on the crashed copy after replay" fsck.swapfs -n "$copy"

	# Freeze: written, not synced, then frozen.
	mkfs.swapfs -f -q -b "$bs" "$dev" "$size"
	mount -t swapfs "$dev" "$MNT"
	mkdir "$MNT/d" && head -c 300000 /dev/urandom >"$MNT/d/f" && ln -s d/f "$MNT/l"
	sum=$(md5sum <"$MNT/d/f")
	head -c 100000 /dev/urandom >"$MNT/unlinked"
	sleep 1000 <"$MNT/unlinked" &
	holder=$!
	rm "$MNT/unlinked"
	check "[$bs] fsfreeze -f" fsfreeze -f "$MNT"
	crash_copy
	check "[$bs] the frozen device needs no journal replay and is clean (fsck -n)" \
		fsck.swapfs -n "$copy"
	# The last user of the unlinked file goes away while frozen: freeing
	# it must wait for the thaw (past a periodic commit, 5 s).
	kill "$holder"
	sleep 7
	crash_copy
	check "[$bs] freeing an unlinked file waits for the thaw (still clean after 7 s)" \
		fsck.swapfs -n "$copy"
	touch "$MNT/new" &
	writer=$!
	sleep 2
	check "[$bs] a write waits while frozen" kill -0 "$writer"
	check "[$bs] fsfreeze -u" fsfreeze -u "$MNT"
	wait "$holder" 2>/dev/null
	wait "$writer"
	check "[$bs] the write goes on after the thaw (status $?)" test -e "$MNT/new"
	umount "$MNT"
	n=$(dmesg | wc -l)
	check "[$bs] the frozen copy mounts and holds the files" \
		bash -c "mount -t swapfs '$copy' '$MNT' && [ \"\$(md5sum <'$MNT/l')\" = '$sum' ]"
	check "[$bs] ... without a journal replay" \
		bash -c "! dmesg | tail -n +$((n + 1)) | grep -q 'recovering the journal'"
	umount "$MNT"
	check "[$bs] fsck is clean after the thaw and unmount" fsck.swapfs -n "$dev"

	# Truncate down to an unaligned size, committed (a periodic commit,
	# 5 s) before writeback would write the page (30 s).
	mkfs.swapfs -f -q -b "$bs" "$dev" "$size"
	mount -t swapfs "$dev" "$MNT"
	xfs_io -f -c "pwrite -q -S 0xaa 0 64k" -c fsync "$MNT/t" >/dev/null
	# The device byte of file byte 0 (xfs_io fiemap: 512-byte units).
	phys=$(xfs_io -c "fiemap" "$MNT/t" | sed -n 's/^[[:space:]]*0: \[[0-9]*\.\.[0-9]*\]: \([0-9]*\)\.\..*/\1/p')
	phys=$((${phys:-0} * 512))
	truncate -s 5000 "$MNT/t"
	sleep 7
	crash_copy
	tail=$((((5000 + bs - 1) / bs) * bs - 5000))
	check "[$bs] after a truncate to 5000 commits, the rest of its last block is zeroes on disk" \
		python3 -c "
import sys
assert $phys > 0, 'no extent found'
with open('$copy', 'rb') as f:
    f.seek($phys + 5000)
    d = f.read($tail)
sys.exit(0 if len(d) == $tail and not any(d) else 1)"
	umount "$MNT"

	# A long truncate (a file of a few thousand extents) cut by a shutdown
	# that commits what is done (LOGFLUSH).
	mkfs.swapfs -f -q -b "$bs" "$dev" "$size"
	mount -t swapfs "$dev" "$MNT"
	cmds=()
	for i in $(seq 0 2 7999); do cmds+=(-c "pwrite -q $((i * bs)) $bs"); done
	xfs_io -f "${cmds[@]}" -c fsync "$MNT/frag" >/dev/null
	check "[$bs] a file of 4000 extents" bash -c "[ \$(xfs_io -c 'fiemap' $MNT/frag | grep -vc hole) -gt 4000 ]"
	truncate -s $((3 * bs)) "$MNT/frag" &
	trunc=$!
	sleep 0.3
	shutdown_logflush "$MNT"
	wait "$trunc"
	umount "$MNT"
	check "[$bs] mount after the cut" mount -t swapfs "$dev" "$MNT"
	check "[$bs] the interrupted truncate is finished: no block past the end" \
		bash -c "[ \$(stat -c %s $MNT/frag) = $((3 * bs)) ] &&
			[ \$(stat -c %b $MNT/frag) -le $((3 * bs / 512)) ]"
	umount "$MNT"
	check "[$bs] fsck is clean after the interrupted truncate" fsck.swapfs -n "$dev"

	# Sizes past the written data: a new file and an append, written (and
	# their inodes journaled by a later change) but not written back.
	mkfs.swapfs -f -q -b "$bs" "$dev" "$size"
	mount -t swapfs -o commit=600 "$dev" "$MNT"
	printf old >"$MNT/app"
	sync "$MNT/app"
	printf new-data >"$MNT/new"
	printf -- -more >>"$MNT/app"
	chmod 600 "$MNT/new" "$MNT/app"
	check "[$bs] LOGFLUSH shutdown with unwritten appends" shutdown_logflush "$MNT"
	umount "$MNT"
	mount -t swapfs "$dev" "$MNT"
	check "[$bs] after the cut each file holds its old or its new content, no zeroes" \
		bash -c "n=\$(od -An -c $MNT/new | tr -d ' \n'); a=\$(od -An -c $MNT/app | tr -d ' \n');
			[ \"\$n\" = '' ] || [ \"\$n\" = new-data ] || { echo new: \$n; exit 1; }
			[ \"\$a\" = old ] || [ \"\$a\" = old-more ] || { echo app: \$a; exit 1; }"
	umount "$MNT"
	check "[$bs] fsck is clean after the cut" fsck.swapfs -n "$dev"
done

ktap_done

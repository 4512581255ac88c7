#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mkfs, mount, statfs, mount options, read-only and remount, unmount, fsck,
# for every block size; and images that must be refused cleanly.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"

ktap_plan $((NR_BLOCK_SIZES * 6 + 26))

for bs in $BLOCK_SIZES; do
	check "mkfs.swapfs -b $bs" mkfs.swapfs -f -q -b "$bs" -L "t$bs" "$dev"
	check "mount ($bs-byte blocks)" mount -t swapfs "$dev" "$MNT"
	check "statfs reports swapfs with $bs-byte blocks" \
		bash -c "[ \"\$(stat -f -c '%T %S' '$MNT')\" = 'swapfs $bs' ] ||
			[ \"\$(stat -f -c '%t %S' '$MNT')\" = '53465753 $bs' ]"
	check "the root is an empty directory with 2 links" \
		bash -c "[ -z \"\$(ls -A '$MNT')\" ] && [ \"\$(stat -c %h '$MNT')\" = 2 ]"
	check "umount ($bs)" umount "$MNT"
	check "fsck -t swapfs -n is clean after mount+umount ($bs)" fsck -t swapfs -n "$dev"
done

mkfs.swapfs -f -q "$dev"
check_fails "an unknown mount option is refused" "wrong fs type|bad option|Invalid argument" \
	mount -t swapfs -o no_such_option "$dev" "$MNT"
check "the refusal names the option in dmesg" \
	bash -c "dmesg | tail -n 20 | grep -q \"swapfs: Unknown parameter 'no_such_option'\""
check_fails "commit above 3600 seconds is refused" "wrong fs type|bad option|Invalid argument" \
	mount -t swapfs -o commit=3601 "$dev" "$MNT"
check "the refusal names the limit" \
	bash -c "{ mount -t swapfs -o commit=3601 $dev $MNT 2>&1; dmesg | tail -n 20; } | grep -q 'commit=3601: at most 3600 seconds'"
check "mount -o commit=5,errors=continue,swap_unshare" \
	mount -t swapfs -o commit=5,errors=continue,swap_unshare "$dev" "$MNT"
check "/proc/mounts shows the options" \
	bash -c "grep \"^$dev $MNT swapfs\" /proc/mounts | grep -q 'commit=5,errors=continue,swap_unshare'"
check "remount read-only" mount -o remount,ro "$MNT"
check "a remount keeps the options it does not name" \
	bash -c "grep \"^$dev $MNT swapfs\" /proc/mounts | grep -q 'ro,.*commit=5,errors=continue,swap_unshare'"
check_fails "a read-only swapfs refuses to create files" "Read-only" touch "$MNT/x"
check "remount read-write" mount -o remount,rw "$MNT"
check "a file can be created after remount,rw" touch "$MNT/x"
check "umount" umount "$MNT"
check "fsck is clean after remounts" fsck.swapfs -n "$dev"

# util-linux front ends find the helpers on PATH.
# (64 MiB: the crash copy below is quick.)
check "mkfs -t swapfs works" mkfs -t swapfs -f -q "$dev" 64M

# Journal replay: a copy of the device taken while the filesystem is
# mounted, after a commit but before the checkpoint, is a crashed image.
# The copy reads the disk with O_DIRECT: jbd2 writes the logged blocks
# around the block device's page cache, so a buffered read can return
# what an earlier read cached there (udev probing the disk after mkfs,
# say, when load delays it), and the journal then fails its checksums
# (EBADMSG), as it would on ext4.
if copy=$(scratch_dev 1); then
	mount -t swapfs "$dev" "$MNT"
	mkdir "$MNT/dir" && echo replayed >"$MNT/dir/file" && ln -s dir/file "$MNT/link"
	sync
	dd if="$dev" of="$copy" bs=1M count=64 iflag=direct status=none conv=fsync
	umount "$MNT"
	check "fsck -n: the crashed copy needs recovery and is clean as replayed" \
		bash -c "out=\$(fsck.swapfs -n $copy) && grep -q '^journal: needs recovery' <<<\"\$out\""
	check "mounting it replays the journal" mount -t swapfs "$copy" "$MNT"
	check "after replay every file is there" \
		bash -c "[ \"\$(cat $MNT/link)\" = replayed ] && [ -d $MNT/dir ]"
	umount "$MNT"
	check "fsck is clean after replay" fsck.swapfs -n "$copy"
else
	for i in 1 2 3 4; do skip "journal replay" "no scratch disk 1"; done
fi

# Bad images: a clean error, never an oops (the splat check at the end).
dd if=/dev/zero of="$dev" bs=4096 count=1 conv=notrunc status=none
check_fails "a device without a swapfs superblock is refused (EINVAL)" \
	"wrong fs type|Invalid argument" mount -t swapfs "$dev" "$MNT"
mkfs.swapfs -f -q "$dev"
printf '\x01' | dd of="$dev" bs=1 seek=100 conv=notrunc status=none
check_fails "a superblock with a bad checksum is refused (EUCLEAN)" \
	"Structure needs cleaning" mount -t swapfs "$dev" "$MNT"
check "dmesg says why" bash -c "dmesg | tail -n 5 | grep -q 'swapfs: $(basename "$dev"): .*checksum'"
check_fails "fsck reports the same corruption (exit 4)" "checksum" fsck.swapfs -n "$dev"

# A journal aborted before (its superblock's s_errno, at byte 32 of block 1,
# big-endian; a new journal has no checksum): the mount reports the errno
# once, clears it and marks the filesystem as having had errors. A value
# that is not an errno is reported as EIO.
jerrno() { # VALUE: the 4 bytes of s_errno, as printf escapes
	mkfs.swapfs -f -q -b 4096 "$dev" && printf "$1" | dd of="$dev" bs=1 seek=$((4096 + 32)) conv=notrunc status=none
}
name=$(basename "$dev")
jerrno '\xff\xff\xff\xe4' # -28, ENOSPC
# mount_says PATTERN: mounts and unmounts; whether the mount logged PATTERN.
mount_says() {
	local n r
	n=$(dmesg | wc -l)
	mount -t swapfs "$dev" "$MNT" || return 2
	dmesg | tail -n +$((n + 1)) | grep -q "$1"
	r=$?
	umount "$MNT"
	return $r
}
check "a journal aborted before mounts; dmesg names its errno" \
	mount_says "$name: the journal had been aborted (error 28)"
# mount_quiet PATTERN: the mount works and does not log PATTERN.
mount_quiet() {
	mount_says "$1"
	[ $? = 1 ]
}
check "the error is cleared: the next mount says nothing" \
	mount_quiet "had been aborted"
check "fsck reports the filesystem's error state" bash -c \
	"fsck.swapfs -n $dev | grep -q 'ERROR state bit'"
jerrno '\x80\x00\x00\x00' # INT_MIN: not an errno
check "a journal error that is not an errno is reported as EIO" \
	mount_says "$name: the journal had been aborted (error 5)"

ktap_done

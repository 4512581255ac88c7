#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Swap activation: what swapon accepts, what it refuses (errno and the
# dmesg line naming the file range), the pinned table in debugfs, and the
# guards on an active swapfile. At each block size.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
mount_debugfs
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
py="python3 $SELFTESTS/fsops.py"
X="python3 $SELFTESTS/extents.py"
dbg() { cat "$DEBUGFS/swapfs/$(basename "$dev")/swapfiles"; }
# The last line swapfs logged about a swapon.
last_swapon_msg() { dmesg | grep 'swapfs: swapon' | tail -n 1; }
# The size in KiB /proc/swaps shows for a swap area.
swaps_size() { awk -v f="$1" '$1 == f { print $3 }' /proc/swaps; }

ktap_plan $((NR_BLOCK_SIZES * 35))

for bs in $BLOCK_SIZES; do
	t="[$bs]"
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	sw=$MNT/swap

	# A written file: accepted.
	dd if=/dev/zero of="$sw" bs=1M count=16 status=none && chmod 600 "$sw"
	mkswap -q "$sw" >/dev/null
	check "$t swapon of a dd-written swapfile" swapon "$sw"
	check "$t /proc/swaps lists it with all its pages" [ "$(swaps_size "$sw")" = 16380 ]
	check "$t debugfs lists it: one run (contiguous file), 4095 usable pages, 24 bytes pinned" \
		bash -c "dbg() { cat $DEBUGFS/swapfs/$(basename "$dev")/swapfiles; }; dbg | grep -q '^$sw .*runs=1 pages=4095 table_bytes=24 '"
	check_fails "$t a second swapon is EBUSY" "Device or resource busy|EBUSY" swapon "$sw"

	# Guards while active.
	check_fails "$t write is ETXTBSY" "Text file busy" bash -c "echo x >> $sw"
	check_fails "$t pwrite is ETXTBSY" "Text file busy" $py pwrite "$sw" 8192 x
	check_fails "$t O_DIRECT write is ETXTBSY" "Text file busy" \
		dd if=/dev/zero of="$sw" bs=4096 count=1 seek=3 oflag=direct conv=notrunc status=none
	check_fails "$t a writable shared mapping is ETXTBSY" "Text file busy" \
		python3 -c "import mmap,os; fd=os.open('$sw', os.O_RDWR); mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_WRITE|mmap.PROT_READ)"
	check_fails "$t truncate is ETXTBSY" "Text file busy" truncate -s 1M "$sw"
	check_fails "$t unlink is EPERM" "Operation not permitted" rm -f "$sw"
	check_fails "$t rename is EPERM" "Operation not permitted" mv "$sw" "$MNT/moved"
	check "$t swapoff" swapoff "$sw"
	check "$t debugfs no longer lists it" bash -c "! grep -q '^$sw ' $DEBUGFS/swapfs/$(basename "$dev")/swapfiles"

	# A writable mapping made before swapon faults with SIGBUS when used
	# after it, instead of writing into the swap area.
	rm -f /tmp/ready /tmp/go
	$py mmap-hold "$sw" /tmp/ready /tmp/go >/dev/null 2>&1 &
	holder=$!
	for _ in $(seq 100); do [ -e /tmp/ready ] && break; sleep 0.1; done
	swapon "$sw"
	touch /tmp/go
	wait $holder
	rc=$?
	check "$t a mapping from before swapon gets SIGBUS on write (status $rc)" [ "$rc" -eq $((128 + 7)) ]
	swapoff "$sw"

	# A hole in the swap area: refused, with the range in dmesg. (util-linux
	# swapon already skips files whose st_blocks look sparse; swapon(2) is
	# what the kernel must refuse.)
	rm -f "$sw"
	truncate -s 16M "$sw" && chmod 600 "$sw"
	mkswap -q "$sw" >/dev/null
	check_fails "$t swapon(2) of a sparse swapfile is EINVAL" "EINVAL" $py swapon "$sw"
	check "$t dmesg names the hole: [4096, 16777216)" \
		bash -c "dmesg | grep 'swapfs: swapon' | tail -n 1 | grep -qF 'swapon $sw: hole at file offset [4096, 16777216)'"
	check_fails "$t util-linux swapon refuses it too" "holes|Invalid argument" swapon "$sw"

	# A hole in the middle.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=1M count=4 status=none
	dd if=/dev/zero of="$sw" bs=1M count=4 seek=8 conv=notrunc status=none
	chmod 600 "$sw"
	mkswap -q "$sw" >/dev/null
	check_fails "$t a hole in the middle is refused (EINVAL)" "EINVAL" $py swapon "$sw"
	check "$t dmesg names it: [4194304, 8388608)" \
		bash -c "dmesg | grep 'swapfs: swapon' | tail -n 1 | grep -qF 'hole at file offset [4194304, 8388608)'"

	# Header smaller than the file: only the declared pages are used.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=1M count=8 status=none && chmod 600 "$sw"
	mkswap -q "$sw" 4096 >/dev/null    # 4096 KiB of the 8 MiB
	swapon "$sw"
	check "$t a file longer than its header is fine (only 1023 pages used)" [ "$(swaps_size "$sw")" = 4092 ]
	swapoff "$sw"

	# A size that is not a page multiple.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=1000 count=8200 status=none && chmod 600 "$sw"
	mkswap -q "$sw" >/dev/null
	check "$t a size that is not a page multiple is fine" bash -c "swapon $sw && swapoff $sw"

	# A header declaring more pages than the file has.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=1M count=8 status=none && chmod 600 "$sw"
	mkswap -q "$sw" >/dev/null
	truncate -s 4M "$sw"
	check_fails "$t a file shorter than its header is refused (EINVAL)" "EINVAL" $py swapon "$sw"
	check "$t dmesg says why" bash -c "dmesg | grep 'swapfs: swapon' | tail -n 1 | grep -q 'swapon $sw: '"

	# A preallocated (unwritten) swapfile: accepted, and activation
	# converts nothing (swap IO never goes through the extent tree).
	rm -f "$sw"
	fallocate -l 16M "$sw" && chmod 600 "$sw" && mkswap -q "$sw" >/dev/null
	check "$t swapon(2) of a fallocated swapfile (unwritten extents)" $X swapon "$sw"
	check "$t its extents past the header stay unwritten while active" \
		bash -c "grep -q '^$sw ' /proc/swaps && $X expect-fiemap $sw '0 4096 -' '4096 16777216 last,unwritten'"
	swapoff "$sw"
	mount -o remount,swap_unwritten=refuse "$MNT"
	check_fails "$t with -o swap_unwritten=refuse it is refused (EINVAL)" "Invalid argument" $X swapon "$sw"
	check "$t dmesg names the unwritten range: [4096, 16777216)" \
		bash -c "$(declare -f last_swapon_msg); last_swapon_msg | grep -qF 'swapon $sw: unwritten extent at file offset [4096, 16777216)'"
	mount -o remount,swap_unwritten=allow "$MNT"

	# A reflinked swapfile: its blocks are shared, so refused; once the
	# clone is gone the references are dropped at once and swapon works.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=1M count=16 status=none && chmod 600 "$sw" && mkswap -q "$sw" >/dev/null
	cp --reflink=always "$sw" "$MNT/clone"
	check_fails "$t swapon(2) of a reflinked swapfile is refused (EINVAL)" "Invalid argument" $X swapon "$sw"
	check "$t dmesg names the shared range, from offset 0" \
		bash -c "$(declare -f last_swapon_msg); last_swapon_msg | grep -qF 'swapon $sw: shared extent at file offset [0, '"
	rm "$MNT/clone"
	check "$t once the clone is deleted, swapon works at once" bash -c "swapon $sw && swapoff $sw"

	# -o swap_unshare: swapon copies the shared blocks first.
	cp --reflink=always "$sw" "$MNT/clone"
	mount -o remount,swap_unshare "$MNT"
	check "$t with -o swap_unshare a reflinked swapfile is unshared and activated" \
		bash -c "swapon $sw && dmesg | tail -n 20 | grep -qF 'swapon $sw: copying shared extents' &&
			! $X fiemap $sw | grep -q shared && swapoff $sw"
	check "$t swap_unshare left both files intact and private" \
		bash -c "cmp $sw $MNT/clone && ! $X fiemap $MNT/clone | grep -q shared"
	rm -f "$sw" "$MNT/clone"
	fallocate -l 16M "$sw" && chmod 600 "$sw" && mkswap -q "$sw" >/dev/null
	cp --reflink=always "$sw" "$MNT/clone"
	check "$t swap_unshare also gives a shared preallocated swapfile its own blocks" \
		bash -c "$X fiemap $sw | grep -q 'unwritten,shared' && swapon $sw &&
			! $X fiemap $sw | grep -q shared && swapoff $sw && cmp $sw $MNT/clone"
	mount -o remount,noswap_unshare "$MNT"
	rm -f "$sw" "$MNT/clone"

	# Header only.
	rm -f "$sw"
	dd if=/dev/zero of="$sw" bs=4096 count=1 status=none && chmod 600 "$sw"
	python3 - "$sw" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1024); f.write(struct.pack("<III", 1, 0, 0))   # version 1, last_page 0
    f.seek(4086); f.write(b"SWAPSPACE2")
PY
	check_fails "$t a header-only swapfile is refused (EINVAL)" "EINVAL" $py swapon "$sw"

	umount "$MNT"
	check "$t fsck is clean after all of it" fsck.swapfs -n "$dev"
done

ktap_done

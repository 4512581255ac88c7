#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extent features, at every block size, with the standard tools: FIEMAP
# (filefrag -v, xfs_io fiemap, and the raw ioctl), SEEK_DATA/SEEK_HOLE,
# fallocate in every mode (util-linux fallocate, xfs_io fpunch/fzero/
# fcollapse/finsert/funshare) and its refusals, reflink and copy-on-write
# (cp --reflink=always, xfs_io reflink/dedupe, copy_file_range, buffered,
# mmap and direct writes into shared blocks) and the guards on an active
# swapfile (what swapon accepts and refuses is swapfs_swapon.sh's). Contents
# are compared with a byte-level reference built the same way outside
# swapfs (extents.py ref); fsck (which verifies every reference count) is
# clean at the end.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
command -v xfs_io >/dev/null || skip_all "xfs_io (xfsprogs) is not installed"
command -v filefrag >/dev/null || skip_all "filefrag (e2fsprogs) is not installed"

X="python3 $SELFTESTS/extents.py"
R=/tmp/swapfs-extref
K=1024
M=$((1024 * 1024))

ktap_plan $((NR_BLOCK_SIZES * 64))

# seekx FILE -d|-h OFFSET: what xfs_io's seek answers.
seekx() { xfs_io -c "seek $2 $3" "$1" | awk '/^(DATA|HOLE)/ { print $2 }'; }
# blocks FILE: st_blocks (512-byte units).
blocks() { stat -c %b "$1"; }
# fiemap_tail FILE: the last FIEMAP line.
fiemap_tail() { $X fiemap "$1" | tail -n 1; }
# free_blocks: free blocks of the mounted filesystem.
free_blocks() { sync; stat -f -c %f "$MNT"; }
# xio ARGS...: xfs_io, which exits 0 even when its command fails; fail when
# it reports an error.
xio() {
	local out
	out=$(xfs_io "$@" 2>&1)
	printf '%s\n' "$out"
	! grep -qE 'busy|did not match|Invalid argument|not supported|No space|[Ee]rror|denied' <<<"$out"
}
export -f seekx blocks fiemap_tail free_blocks xio
export X MNT

for bs in $BLOCK_SIZES; do
	t="[$bs]"
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	rm -rf "$R" && mkdir -p "$R"
	B=$bs

	# ---- FIEMAP and seek -----------------------------------------------
	$X pwrite "$MNT/a" 0 $M 1 && $X ref "$R/a" pwrite 0 $M 1
	check "$t FIEMAP: a 1 MiB file written at once is one extent, flagged last" \
		$X expect-fiemap-raw "$MNT/a" "0 $M last"
	check "$t filefrag -v works (no FIBMAP/FIEMAP unsupported) and shows last,eof" \
		bash -c "out=\$(filefrag -v $MNT/a 2>&1) && ! grep -q unsupported <<<\"\$out\" &&
			grep -q 'last,eof' <<<\"\$out\" && grep -q '1 extent found' <<<\"\$out\""
	check "$t xfs_io fiemap -v reports the extent with the last flag (0x1)" \
		bash -c "xfs_io -c 'fiemap -v' $MNT/a | awk 'NR == 3 { exit !(\$5 == \"0x1\") }'"
	$X pwrite "$MNT/s" 0 $B 2 && $X pwrite "$MNT/s" $M $B 3
	check "$t FIEMAP skips holes: two extents, the second last" \
		$X expect-fiemap "$MNT/s" "0 $B -" "$M $((M + B)) last"
	check "$t SEEK_DATA/SEEK_HOLE around a hole (xfs_io seek)" \
		bash -c "[ \$(seekx $MNT/s -d 0) = 0 ] && [ \$(seekx $MNT/s -h 0) = $B ] &&
			[ \$(seekx $MNT/s -d $B) = $M ] && [ \$(seekx $MNT/s -h $M) = $((M + B)) ]"
	fallocate -l $((256 * K)) "$MNT/u" && $X pwrite "$MNT/u" $((64 * K)) $B 4
	echo 3 >/proc/sys/vm/drop_caches
	check "$t SEEK_DATA skips unwritten (preallocated) blocks, SEEK_HOLE stops at them" \
		bash -c "[ \$(seekx $MNT/u -d 0) = $((64 * K)) ] && [ \$(seekx $MNT/u -h $((64 * K))) = $((64 * K + B)) ]"

	# ---- fallocate ---------------------------------------------------------
	fallocate -l $M "$MNT/p" && $X ref "$R/p" alloc 0 $M 0
	check "$t fallocate: unwritten extent, size set, blocks counted" \
		bash -c "$X expect-fiemap $MNT/p '0 $M last,unwritten' && [ \$(stat -c %s $MNT/p) = $M ] &&
			[ \$(blocks $MNT/p) = $((M / 512)) ]"
	check "$t fallocate: filefrag -v says unwritten" bash -c "filefrag -v $MNT/p | grep -q 'last,unwritten'"
	check "$t fallocate: the preallocated file reads as zeroes" cmp "$MNT/p" "$R/p"
	$X pwrite "$MNT/p" $((3 * B)) $((2 * B)) 5 && $X ref "$R/p" pwrite $((3 * B)) $((2 * B)) 5
	check "$t a write converts exactly the written blocks" \
		$X expect-fiemap "$MNT/p" "0 $((3 * B)) unwritten" "$((3 * B)) $((5 * B)) -" "$((5 * B)) $M last,unwritten"
	check "$t contents after writing into preallocated blocks" cmp "$MNT/p" "$R/p"
	fallocate -n -o $M -l $((256 * K)) "$MNT/p" && $X ref "$R/p" alloc $M $((256 * K)) 1
	check "$t FALLOC_FL_KEEP_SIZE: size unchanged, blocks past EOF preallocated" \
		bash -c "[ \$(stat -c %s $MNT/p) = $M ] && [ \$(blocks $MNT/p) = $((M / 512 + 512)) ] &&
			[[ \"\$(fiemap_tail $MNT/p)\" == *' $((M + 256 * K)) last,unwritten' ]]"
	$X pwrite "$MNT/p" $((M + B)) $B 6 && $X ref "$R/p" pwrite $((M + B)) $B 6
	check "$t a write into the preallocation past EOF extends the file" \
		bash -c "[ \$(stat -c %s $MNT/p) = $((M + 2 * B)) ] && cmp $MNT/p $R/p"
	check_fails "$t PUNCH_HOLE without KEEP_SIZE is EOPNOTSUPP" "not supported" $X fallocate "$MNT/p" 0x02 0 $B
	check_fails "$t NO_HIDE_STALE is EOPNOTSUPP" "not supported" $X fallocate "$MNT/p" 0x07 0 $B
	check_fails "$t WRITE_ZEROES is EOPNOTSUPP" "not supported" $X fallocate "$MNT/p" 0x80 0 $B
	check_fails "$t COLLAPSE_RANGE with KEEP_SIZE is EOPNOTSUPP" "not supported" $X fallocate "$MNT/p" 0x09 0 $B
	check_fails "$t PUNCH_HOLE with ZERO_RANGE is EOPNOTSUPP" "not supported" $X fallocate "$MNT/p" 0x13 0 $B

	$X pwrite "$MNT/q" 0 $((256 * K)) 7 && $X ref "$R/q" pwrite 0 $((256 * K)) 7
	xio -c "fpunch 5000 30000" "$MNT/q" && $X ref "$R/q" punch 5000 30000
	f=$(((5000 + B - 1) / B * B)) l=$((35000 / B * B))
	check "$t punch (unaligned): contents, the whole blocks become a hole" \
		bash -c "cmp $MNT/q $R/q && $X expect-fiemap $MNT/q '0 $f -' '$l $((256 * K)) last' &&
			[ \$(blocks $MNT/q) = $(((256 * K - (l - f)) / 512)) ]"
	xio -c "fzero -k 70000 20000" "$MNT/q" && $X ref "$R/q" zero 70000 20000 1
	z1=$(((70000 + B - 1) / B * B)) z2=$((90000 / B * B))
	check "$t zero range (unaligned, keep size): contents, whole blocks unwritten" \
		bash -c "cmp $MNT/q $R/q && $X expect-fiemap $MNT/q '0 $f -' '$l $z1 -' '$z1 $z2 unwritten' '$z2 $((256 * K)) last'"
	xio -c "fzero 300000 10000" "$MNT/q" && $X ref "$R/q" zero 300000 10000 0
	check "$t zero range past EOF grows the file with unwritten blocks" \
		bash -c "cmp $MNT/q $R/q && [ \$(stat -c %s $MNT/q) = 310000 ] &&
			[ \"\$(fiemap_tail $MNT/q)\" = '$((300000 / B * B)) $(((310000 + B - 1) / B * B)) last,unwritten' ]"

	xio -f -c "falloc -k 0 $((256 * K))" -c "pwrite -q 0 $((64 * K))" -c "truncate $((64 * K))" \
		"$MNT/k" >/dev/null
	check "$t truncate to the current size trims blocks preallocated past it (fstests generic/092)" \
		bash -c "[ \$(stat -c %s $MNT/k) = $((64 * K)) ] && $X expect-fiemap $MNT/k '0 $((64 * K)) last' &&
			[ \$(blocks $MNT/k) = $((64 * K / 512)) ] && rm $MNT/k"

	$X pwrite "$MNT/c" 0 $((512 * K)) 8 && $X ref "$R/c" pwrite 0 $((512 * K)) 8
	xio -c "fcollapse $((64 * K)) $((64 * K))" "$MNT/c" && $X ref "$R/c" collapse $((64 * K)) $((64 * K))
	check "$t collapse range: contents, size and extents" \
		bash -c "cmp $MNT/c $R/c && [ \$(stat -c %s $MNT/c) = $((448 * K)) ] &&
			$X expect-fiemap $MNT/c '0 $((448 * K)) last'"
	check_fails "$t collapse range not aligned to the block size is EINVAL" "Invalid argument" \
		fallocate -c -o $((B / 2)) -l $B "$MNT/c"
	check_fails "$t collapse range reaching EOF is EINVAL" "Invalid argument" \
		fallocate -c -o $((64 * K)) -l $((384 * K)) "$MNT/c"
	xio -c "finsert $((128 * K)) $((64 * K))" "$MNT/c" && $X ref "$R/c" insert $((128 * K)) $((64 * K))
	check "$t insert range: contents, size, a hole where it was inserted" \
		bash -c "cmp $MNT/c $R/c && [ \$(stat -c %s $MNT/c) = $((512 * K)) ] &&
			$X expect-fiemap $MNT/c '0 $((128 * K)) -' '$((192 * K)) $((512 * K)) last'"
	# The size grows before the shift, zeroing the old EOF block's tail
	# through the page cache: that cached block must not stay where the
	# data moved from (fsx, generic/075 and 112, found it).
	$X pwrite "$MNT/ie" 0 $((3 * B + 100)) 20 && $X ref "$R/ie" pwrite 0 $((3 * B + 100)) 20
	xio -c "finsert $B $B" "$MNT/ie" && $X ref "$R/ie" insert $B $B
	check "$t insert range into a file whose last block is partial" cmp "$MNT/ie" "$R/ie"
	check_fails "$t insert range not aligned to the block size is EINVAL" "Invalid argument" \
		fallocate -i -o $B -l $((B + 512)) "$MNT/c"
	check_fails "$t insert range at or past EOF is EINVAL" "Invalid argument" \
		fallocate -i -o $((512 * K)) -l $B "$MNT/c"

	check "$t a 256 MiB fallocate runs in bounded transactions" \
		bash -c "fallocate -l 256M $MNT/big && [ \$(blocks $MNT/big) = $((256 * 2048)) ] &&
			[[ \"\$(fiemap_tail $MNT/big)\" == *' $((256 * M)) last,unwritten' ]] && rm $MNT/big"
	check_fails "$t fallocate beyond the free space is ENOSPC" "No space left" \
		fallocate -l $(($(stat -f -c '%f * %S' "$MNT") + 16 * M)) "$MNT/nospc"
	check "$t after ENOSPC the filesystem stays writable and space comes back" \
		bash -c "rm -f $MNT/nospc && echo ok > $MNT/after && rm $MNT/after && [ \$(free_blocks) -gt 1000 ]"
	# The extent-tree blocks a fragmented file needs come out of the same
	# space (freed blocks wait for their commit, so the space left here
	# is fragmented): the file gets every available block, as data or as
	# its tree.
	check "$t statfs available space is what a file can take: fallocating all of it takes all of it, a block more is ENOSPC" \
		bash -c "a=\$(stat -f -c %a $MNT) && [ \$a -lt \$(stat -f -c %f $MNT) ] &&
			{ fallocate -l \$((a * $B)) $MNT/avail; [ \$((\$(blocks $MNT/avail) * 512 / $B)) = \$a ]; } &&
			! fallocate -o \$((a * $B)) -l $B $MNT/avail && rm $MNT/avail"

	# ---- reflink and copy-on-write ----------------------------------------
	$X pwrite "$MNT/r" 0 $M 9 && $X ref "$R/r" pwrite 0 $M 9
	before=$(free_blocks)
	cp --reflink=always "$MNT/r" "$MNT/r2" && cp "$R/r" "$R/r2"
	check "$t cp --reflink=always: same contents, both extents shared, no space used" \
		bash -c "cmp $MNT/r $MNT/r2 && $X expect-fiemap $MNT/r '0 $M last,shared' &&
			$X expect-fiemap $MNT/r2 '0 $M last,shared' && [ \$(free_blocks) = $before ]"
	check "$t filefrag -v shows shared" bash -c "filefrag -v $MNT/r2 | grep -q 'last,shared,eof'"
	$X pwrite "$MNT/r2" 10000 100 10 && $X ref "$R/r2" pwrite 10000 100 10
	k=$((10000 / B * B))
	check "$t a buffered write into a clone copies the block (the original unchanged)" \
		bash -c "cmp $MNT/r2 $R/r2 && cmp $MNT/r $R/r"
	check "$t after copy-on-write the block is private in both files" \
		bash -c "$X expect-fiemap $MNT/r2 '0 $k shared' '$k $((k + B)) -' '$((k + B)) $M last,shared' &&
			$X expect-fiemap $MNT/r '0 $k shared' '$k $((k + B)) -' '$((k + B)) $M last,shared'"
	$X mmap-pwrite "$MNT/r2" 300000 5000 11 && $X ref "$R/r2" pwrite 300000 5000 11
	check "$t an mmap write into a clone (page_mkwrite) copies on write" \
		bash -c "cmp $MNT/r2 $R/r2 && cmp $MNT/r $R/r"
	$X direct-pwrite "$MNT/r2" $((512 * K)) $((64 * K)) 12 && $X ref "$R/r2" pwrite $((512 * K)) $((64 * K)) 12
	check "$t an O_DIRECT write into a clone copies on write" \
		bash -c "cmp $MNT/r2 $R/r2 && cmp $MNT/r $R/r &&
			$X fiemap $MNT/r2 | grep -q '^$((512 * K)) $((576 * K)) -$'"
	$X direct-pwrite "$MNT/r2" 700416 512 13 && $X ref "$R/r2" pwrite 700416 512 13
	check "$t a sub-block O_DIRECT write into a clone falls back to buffered" \
		bash -c "cmp $MNT/r2 $R/r2 && cmp $MNT/r $R/r"
	$X pwrite "$MNT/r3" 0 $((256 * K)) 14 && $X ref "$R/r3" pwrite 0 $((256 * K)) 14
	xio -c "reflink $MNT/r $((64 * K)) $((128 * K)) $((64 * K))" "$MNT/r3" >/dev/null &&
		$X ref "$R/r3" clone "$R/r" $((64 * K)) $((128 * K)) $((64 * K))
	check "$t FICLONERANGE (xfs_io reflink) into the middle of a file" \
		bash -c "cmp $MNT/r3 $R/r3 && $X fiemap $MNT/r3 | grep -q '^$((128 * K)) $((192 * K)) shared$'"
	xio -c "reflink $MNT/r 0 $((512 * K)) $((64 * K))" "$MNT/r3" >/dev/null &&
		$X ref "$R/r3" clone "$R/r" 0 $((512 * K)) $((64 * K))
	check "$t FICLONERANGE past EOF extends the destination (zeroes between)" \
		bash -c "cmp $MNT/r3 $R/r3 && [ \$(stat -c %s $MNT/r3) = $((576 * K)) ]"
	$X pwrite "$MNT/d1" 0 $((192 * K)) 15 && $X pwrite "$MNT/d2" 0 $((192 * K)) 15
	check "$t FIDEDUPERANGE (xfs_io dedupe) of identical files shares them" \
		bash -c "xio -c 'dedupe $MNT/d1 0 0 $((192 * K))' $MNT/d2 >/dev/null && cmp $MNT/d1 $MNT/d2 &&
			$X expect-fiemap $MNT/d1 '0 $((192 * K)) last,shared' && $X expect-fiemap $MNT/d2 '0 $((192 * K)) last,shared'"
	check_fails "$t FIDEDUPERANGE of different contents is refused" "did not match|differ" \
		xio -c "dedupe $MNT/r 0 0 $((64 * K))" "$MNT/d2"
	$X copy-range "$MNT/r" 0 "$MNT/cp" 0 $M
	check "$t copy_file_range of whole blocks shares them (through remap)" \
		bash -c "cmp $MNT/cp $R/r && $X expect-fiemap $MNT/cp '0 $M last,shared'"
	$X copy-range "$MNT/r" 100 "$MNT/cp2" 0 5000 && $X ref "$R/cp2" clone "$R/r" 100 0 5000
	check "$t copy_file_range of an unaligned range copies it" cmp "$MNT/cp2" "$R/cp2"
	xio -c "funshare 0 $((576 * K))" "$MNT/r3" >/dev/null
	check "$t FALLOC_FL_UNSHARE_RANGE (xfs_io funshare) makes a clone private" \
		bash -c "cmp $MNT/r3 $R/r3 && ! $X fiemap $MNT/r3 | grep -q shared"
	rm "$MNT/r2" "$MNT/cp" "$MNT/d1"
	check "$t once the last clone is deleted the file is no longer shared" \
		bash -c "cmp $MNT/r $R/r && ! $X fiemap $MNT/r | grep -q shared && ! $X fiemap $MNT/d2 | grep -q shared"
	check "$t deleting clones frees only unshared blocks (statfs)" \
		bash -c "b=\$(free_blocks) && rm $MNT/r3 && a=\$(free_blocks) && [ \$a -gt \$b ]"
	rm -f "$R/r3" && $X pwrite "$MNT/r3" 0 $((128 * K)) 16 && $X ref "$R/r3" pwrite 0 $((128 * K)) 16

	# ---- an active swapfile -------------------------------------------------
	head -c $((4 * M)) /dev/zero >"$MNT/sw" && chmod 600 "$MNT/sw" && mkswap -q "$MNT/sw" >/dev/null
	cp "$MNT/sw" "$R/sw"
	check "$t swapon a swapfile" swapon "$MNT/sw"
	check_fails "$t fallocate on an active swapfile is ETXTBSY" "Text file busy" \
		fallocate -n -o 0 -l $B "$MNT/sw"
	check_fails "$t punching an active swapfile is ETXTBSY" "Text file busy" \
		xio -c "fpunch 0 $B" "$MNT/sw"
	check_fails "$t reflink into an active swapfile is ETXTBSY" "Text file busy" \
		xio -c "reflink $MNT/r 0 0 $B" "$MNT/sw"
	check_fails "$t reflink out of an active swapfile is ETXTBSY" "Text file busy" \
		cp --reflink=always "$MNT/sw" "$MNT/swcopy"
	check_fails "$t dedupe with an active swapfile is ETXTBSY" "Text file busy" \
		xio -c "dedupe $MNT/sw 0 0 $B" "$MNT/r"
	check_fails "$t copy_file_range into an active swapfile is ETXTBSY" "Text file busy" \
		$X copy-range "$MNT/r" 0 "$MNT/sw" 0 $B
	check_fails "$t copy_file_range out of an active swapfile is ETXTBSY" "Text file busy" \
		$X copy-range "$MNT/sw" 0 "$MNT/swcopy" 0 $B
	check "$t swapoff" swapoff "$MNT/sw"
	rm -f "$MNT/sw" "$MNT/swcopy"

	# ---- persistence and fsck -----------------------------------------------
	umount "$MNT"
	check "$t fsck is clean (bitmaps, reference counts, extents)" fsck.swapfs -n "$dev"
	mount -t swapfs "$dev" "$MNT"
	check "$t every file matches its reference after remount" \
		bash -c "for f in a p q c r r3 cp2; do cmp $MNT/\$f $R/\$f || exit 1; done"
	check "$t extents and flags survive remount" \
		bash -c "$X expect-fiemap $MNT/a '0 $M last' && $X fiemap $MNT/d2 | grep -q '^0 $((192 * K)) last$'"

	# A short write into a clone (the source buffer ends early): the
	# blocks staged for what it did not write go back to the free space
	# (iomap_end), which a recount at mount would not hide.
	$X pwrite "$MNT/s" 0 $((256 * K)) 16 && cp --reflink=always "$MNT/s" "$MNT/s2" &&
		cp "$MNT/s" "$R/s2" && $X ref "$R/s2" pwrite 0 8192 17
	check "$t a short buffered write into a clone writes what it could" \
		bash -c "$X short-pwrite $MNT/s2 0 $((64 * K)) 8192 17 && cmp $MNT/s2 $R/s2"
	f1=$(free_blocks)
	umount "$MNT" && mount -t swapfs "$dev" "$MNT"
	check "$t the blocks staged for the rest of it are free again (statfs equal across a remount)" \
		[ "$(free_blocks)" = "$f1" ]
	umount "$MNT"
	check "$t fsck is clean after it" fsck.swapfs -n "$dev"
done

ktap_done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every namespace and data operation of swapfs, then persistence across
# unmount/remount and a clean fsck; run at each block size.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
ref=/tmp/swapfs-ref
py="python3 $SELFTESTS/fsops.py"

# A process in a child cgroup dirties a file; a process of the root group
# fsyncs it: the writeback is charged to the child's io.stat, as on ext4 and
# xfs (cgroup writeback; fstests generic/563).
cgroup_writeback() { # file
	local root=/sys/fs/cgroup cg=/sys/fs/cgroup/swapfs-wb dev w c
	for c in io memory; do
		grep -qw $c $root/cgroup.controllers || { echo "no $c controller"; return 1; }
		grep -qw $c $root/cgroup.subtree_control || echo +$c >$root/cgroup.subtree_control || return 1
	done
	dev=$(findmnt -n -o MAJ:MIN --target "${1%/*}") && [ -n "$dev" ] || { echo "no mount at ${1%/*}"; return 1; }
	mkdir -p $cg || return 1
	sh -c "echo \$\$ > $cg/cgroup.procs && exec dd if=/dev/zero of=$1 bs=64k count=256 status=none" || return 1
	sync "$1"
	w=$(awk -v d="${dev// /}" '$1 == d { for (i = 2; i <= NF; i++) if (sub(/^wbytes=/, "", $i)) print $i }' $cg/io.stat)
	rm -f "$1"
	rmdir $cg
	[ "${w:-0}" -ge 16777216 ] || { echo "child cgroup charged ${w:-0} bytes written, expected >= 16777216"; return 1; }
}

ktap_plan $((NR_BLOCK_SIZES * 42))

for bs in $BLOCK_SIZES; do
	t="[$bs]"
	mkfs.swapfs -f -q -b "$bs" "$dev"
	mount -t swapfs "$dev" "$MNT"
	rm -rf "$ref"; mkdir -p "$ref"

	# Namespace.
	check "$t create, mkdir, nested mkdir" bash -c "touch $MNT/f && mkdir -p $MNT/d/e/g"
	check "$t mkdir counts links (parent 3, leaf 2)" \
		bash -c "[ \$(stat -c %h $MNT/d) = 3 ] && [ \$(stat -c %h $MNT/d/e/g) = 2 ] && [ \$(stat -c %h $MNT) = 3 ]"
	check "$t readdir lists entries, . and .." \
		bash -c "[ \"\$(ls -a $MNT | tr '\n' ' ')\" = '. .. d f ' ]"
	check_fails "$t mkdir over an existing name is EEXIST" "File exists" mkdir "$MNT/d"
	check_fails "$t rmdir of a non-empty directory is ENOTEMPTY" "not empty" rmdir "$MNT/d/e"
	check "$t rmdir of an empty directory" bash -c "rmdir $MNT/d/e/g && [ \$(stat -c %h $MNT/d/e) = 2 ]"
	check "$t hard link shares the inode and counts links" \
		bash -c "ln $MNT/f $MNT/d/f2 && [ \$(stat -c %h $MNT/f) = 2 ] && [ \$(stat -c %i $MNT/f) = \$(stat -c %i $MNT/d/f2) ]"
	check "$t unlink drops a link" bash -c "rm $MNT/d/f2 && [ \$(stat -c %h $MNT/f) = 1 ]"
	long=$(printf 'x%.0s' $(seq $((bs - 16))))
	check "$t symlink (short and block-sized-minus-16)" \
		bash -c "ln -s /some/target $MNT/s && [ \"\$(readlink $MNT/s)\" = /some/target ] &&
			ln -s $long $MNT/sl && [ \"\$(readlink $MNT/sl)\" = $long ]"
	check_fails "$t a symlink longer than a block is ENAMETOOLONG" "too long" \
		ln -s "${long}yyyyyyyyyyyyyyyyy" "$MNT/sx"
	name256=$(printf 'n%.0s' $(seq 256))
	check_fails "$t looking up a 256-byte name is ENAMETOOLONG" "too long" stat "$MNT/$name256"
	check_fails "$t creating a 256-byte name is ENAMETOOLONG" "too long" touch "$MNT/$name256"
	check "$t statfs says names are up to 255 bytes" [ "$(stat -f -c %l "$MNT")" = 255 ]
	check "$t a 255-byte name is created and found" \
		bash -c "touch $MNT/${name256%n} && [ -f $MNT/${name256%n} ] && rm $MNT/${name256%n}"
	check "$t mknod fifo and char device" \
		bash -c "mkfifo $MNT/p && mknod $MNT/c c 1 3 && [ -p $MNT/p ] && [ \"\$(stat -c %t:%T $MNT/c)\" = 1:3 ]"
	check "$t rename within a directory" bash -c "mv $MNT/f $MNT/g && [ -f $MNT/g ] && [ ! -e $MNT/f ]"
	check "$t rename a directory across parents updates .." \
		bash -c "mkdir $MNT/dd && mv $MNT/d/e $MNT/dd/ && [ \$(stat -c %i $MNT/dd/e/..) = \$(stat -c %i $MNT/dd) ] &&
			[ \$(stat -c %h $MNT/d) = 2 ] && [ \$(stat -c %h $MNT/dd) = 3 ]"
	check "$t rename over an existing file replaces it" \
		bash -c "echo one > $MNT/r1 && echo two > $MNT/r2 && mv $MNT/r1 $MNT/r2 && [ \"\$(cat $MNT/r2)\" = one ]"
	check_fails "$t RENAME_NOREPLACE refuses an existing target" "File exists" \
		$py rename-noreplace "$MNT/g" "$MNT/r2"
	check_fails "$t RENAME_EXCHANGE is EINVAL (not supported)" "Invalid argument" \
		$py rename-exchange "$MNT/g" "$MNT/r2"
	check "$t chmod, chown, utimes" \
		bash -c "chmod 640 $MNT/g && chown 12:34 $MNT/g && touch -d '2001-02-03 04:05:06.5' $MNT/g &&
			[ \"\$(stat -c '%a %u %g %Y' $MNT/g)\" = \"640 12 34 \$(date -d '2001-02-03 04:05:06' +%s)\" ]"
	check "$t 300 files in one directory (several directory blocks)" \
		bash -c "mkdir $MNT/many && for i in \$(seq 300); do echo \$i > $MNT/many/file-with-a-long-name-\$i; done &&
			[ \$(ls $MNT/many | wc -l) = 300 ] && [ \"\$(cat $MNT/many/file-with-a-long-name-217)\" = 217 ]"
	check "$t remove half of them, readdir stays exact" \
		bash -c "for i in \$(seq 1 2 300); do rm $MNT/many/file-with-a-long-name-\$i; done && [ \$(ls $MNT/many | wc -l) = 150 ]"

	# Data.
	check "$t buffered write and read back (1 MiB random)" \
		bash -c "head -c 1048576 /dev/urandom > $ref/a && cp $ref/a $MNT/a && cmp $ref/a $MNT/a"
	check "$t overwrite in the middle" \
		bash -c "$py pwrite $MNT/a 5000 hello && $py pwrite $ref/a 5000 hello && cmp $ref/a $MNT/a"
	check "$t sparse file: holes read as zeros, size and blocks" \
		bash -c "$py pwrite $MNT/sp 10000000 tail && $py pwrite $ref/sp 10000000 tail && cmp $ref/sp $MNT/sp &&
			[ \$(stat -c %s $MNT/sp) = 10000004 ] && [ \$(stat -c %b $MNT/sp) -lt 64 ]"
	check "$t SEEK_DATA / SEEK_HOLE find the data" \
		bash -c "[ \"\$($py seek $MNT/sp)\" = \"data=\$((10000000 / $bs * $bs)) hole=10000004\" ]"
	check "$t mmap write and read" \
		bash -c "$py mmap-write $MNT/mm 65536 && $py mmap-write $ref/mm 65536 && cmp $ref/mm $MNT/mm"
	check "$t O_DIRECT write and read" \
		bash -c "$py direct $MNT/dio 262144 && $py pattern $ref/dio 262144 && cmp $ref/dio $MNT/dio"
	check "$t truncate down and up (zeroes the tail)" \
		bash -c "for f in $MNT/a $ref/a; do truncate -s 3000 \$f && truncate -s 9000 \$f; done && cmp $ref/a $MNT/a"
	check "$t truncate to 0 frees the blocks" \
		bash -c "truncate -s 0 $MNT/dio && [ \$(stat -c %b $MNT/dio) = 0 ]"
	# The block is allocated and written by the first sync: the append
	# allocates nothing, only the size grows (checked after remount below).
	check "$t append into the last, partial block" \
		bash -c "for d in $MNT $ref; do printf 0123456789 > \$d/ap && sync && printf abcdefghij >> \$d/ap; done &&
			cmp $ref/ap $MNT/ap"
	check "$t fsync and sync succeed" bash -c "$py fsync $MNT/a && sync"
	check "$t statfs free space goes down with data and back up after delete" \
		bash -c "b=\$(stat -f -c %f $MNT) && head -c 4194304 /dev/zero > $MNT/big && sync &&
			m=\$(stat -f -c %f $MNT) && rm $MNT/big && sync && e=\$(stat -f -c %f $MNT) &&
			[ \$m -lt \$b ] && [ \$e = \$b ]"
	check "$t an open unlinked file keeps its data until closed" \
		bash -c "$py open-unlinked $MNT/ou"
	# fallocate that grows a file obeys RLIMIT_FSIZE as a write does (EFBIG,
	# nothing allocated), and stays allowed below it (fstests generic/228).
	check_fails "$t fallocate past RLIMIT_FSIZE is EFBIG and allocates nothing" "File too large" \
		bash -c "(trap '' XFSZ; ulimit -f 1024; fallocate -l 2M $MNT/fz) ||
			{ r=\$?; [ \$(stat -c %s%b $MNT/fz) = 00 ] && exit \$r; echo 'size or blocks changed'; exit 0; }"
	check "$t writeback is charged to the cgroup that dirtied the pages" cgroup_writeback "$MNT/cgw"
	check "$t fallocate under RLIMIT_FSIZE succeeds" \
		bash -c "(trap '' XFSZ; ulimit -f 1024; fallocate -l 512K $MNT/fz) && [ \$(stat -c %s $MNT/fz) = 524288 ] && rm $MNT/fz"
	# A refused fallocate (collapsing a range that is not block-aligned:
	# EINVAL, which only the filesystem can tell) leaves the file as it
	# was, its times included (as xfs).
	check "$t a refused fallocate does not touch the file's times" \
		bash -c "head -c 8192 /dev/urandom > $MNT/fm && touch -d @1000000000 $MNT/fm &&
			python3 -c 'import errno, os, sys; sys.path.insert(0, \"$SELFTESTS\"); import syscalls
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    syscalls.fallocate(fd, 8, 1000, 4096)  # FALLOC_FL_COLLAPSE_RANGE
    sys.exit(\"an unaligned collapse succeeded\")
except OSError as e:
    assert e.errno == errno.EINVAL, e' $MNT/fm &&
			[ \$(stat -c %Y $MNT/fm) = 1000000000 ] && rm $MNT/fm"

	# Persistence.
	snapshot() { (cd "$1" && find . -printf '%p %y %m %s %n %l\n' | sort && find . -type f -exec md5sum {} + | sort); }
	snapshot "$MNT" >/tmp/swapfs-before
	umount "$MNT"
	check "$t fsck is clean after the operations" fsck.swapfs -n "$dev"
	mount -t swapfs "$dev" "$MNT"
	check "$t every name, type, mode, size, link count and byte survives remount" \
		bash -c "snapshot() { (cd \$1 && find . -printf '%p %y %m %s %n %l\n' | sort && find . -type f -exec md5sum {} + | sort); };
			snapshot $MNT | cmp - /tmp/swapfs-before"
	check "$t umount after remount" umount "$MNT"
done

ktap_done

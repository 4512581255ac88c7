#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# IO errors (debug kernel: CONFIG_FAIL_MAKE_REQUEST). Failed swap-outs leave
# the pages dirty in memory and nothing is lost; a failed swap-in kills the
# faulting process with SIGBUS; both are counted by swapfs; with the fault
# removed, swapoff succeeds and fsck is clean. A failed metadata write aborts
# the journal and the filesystem turns read-only, cleanly.
. "$(dirname "$0")/lib.sh"
require_module_file
require_tools
mount_debugfs
fail=$DEBUGFS/fail_make_request
[ -d "$fail" ] || skip_all "needs CONFIG_FAIL_MAKE_REQUEST (the debug kernel)"
load_module
dev=$(scratch_dev 0) || skip_all "no scratch disk 0 (scripts/vm --disk scratch0=SIZE)"
name=$(basename "$dev")
stats=$DEBUGFS/swapfs/$name/swapfiles
counter() { grep -o " $1=[0-9]*" "$stats" | cut -d= -f2; }

# inject N: the next N bios to the disk fail (N=0 stops injecting).
inject() {
	echo 0 >"$fail/verbose"
	echo 1 >"$fail/interval"
	echo 100 >"$fail/probability"
	echo "$1" >"$fail/times"
	echo $(( $1 > 0 ? 1 : 0 )) >"/sys/block/$name/make-it-fail"
}

cg=/sys/fs/cgroup
mountpoint -q $cg || { mkdir -p $cg; mount -t cgroup2 none $cg; }
echo +memory >$cg/cgroup.subtree_control
mkdir -p $cg/ioerr
echo 24M >$cg/ioerr/memory.max

# A process in the cgroup that fills N MiB of checksummed pages, waits for
# the file $2 to exist, then checks every page; exits 0 if all are intact.
hold() { # MiB go-file
	sh -c "echo \$\$ >$cg/ioerr/cgroup.procs; exec python3 -c '
import hashlib, os, sys, time
n = $1 * 256
sig = lambda i: hashlib.sha256(str(i).encode()).digest() * 128
pages = [bytearray(sig(i)) for i in range(n)]
open(\"/tmp/filled\", \"w\").close()
while not os.path.exists(\"$2\"):
    time.sleep(0.1)
bad = sum(1 for i in range(n) if pages[i] != sig(i))
print(bad, \"bad pages\")
sys.exit(1 if bad else 0)
'"
}

ktap_plan 14

mkfs.swapfs -f -q "$dev"
mount -t swapfs "$dev" "$MNT"
dd if=/dev/zero of="$MNT/swap" bs=1M count=64 status=none
chmod 600 "$MNT/swap"
mkswap -q "$MNT/swap" >/dev/null
swapon "$MNT/swap"
sync

# Swap-out errors: the first 200 swap writes fail.
rm -f /tmp/filled /tmp/go
inject 200
hold 48 /tmp/go >/tmp/hold.out 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e /tmp/filled ] && break; sleep 0.1; done
inject 0
touch /tmp/go
wait $pid
check "failed swap-outs lose nothing: every page intact ($(cat /tmp/hold.out))" [ $? -eq 0 ]
check "swapfs counted the failed writes (write_errors=$(counter write_errors))" [ "$(counter write_errors)" -gt 0 ]
check "and no read error" [ "$(counter read_errors)" -eq 0 ]

# Swap-in errors: pages are out, then reads fail: the process dies of SIGBUS.
rm -f /tmp/filled /tmp/go
hold 48 /tmp/go >/tmp/hold.out 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e /tmp/filled ] && break; sleep 0.1; done
inject 100000
touch /tmp/go
wait $pid
rc=$?
inject 0
check "a failed swap-in kills the process with SIGBUS (status $rc)" [ "$rc" -eq $((128 + 7)) ]
check "swapfs counted the failed reads (read_errors=$(counter read_errors))" [ "$(counter read_errors)" -gt 0 ]
check "no transaction was started from swap IO" [ "$(counter tx_from_swap_io)" -eq 0 ]
check "with the fault removed, swapoff succeeds" swapoff "$MNT/swap"
check "umount" umount "$MNT"
check "fsck is clean after the swap IO errors" fsck.swapfs -n "$dev"

# Metadata IO errors: the journal aborts, the filesystem turns read-only.
mount -t swapfs "$dev" "$MNT"
inject 100000
for i in $(seq 20); do mkdir "$MNT/d$i" 2>/dev/null; done
sync 2>/dev/null
sleep 1
check_fails "after a failed metadata write, changes are refused" "Read-only|Input/output" \
	bash -c "for i in \$(seq 50); do touch $MNT/f\$i || exit 1; sync; done"
inject 0
check "unmount works after the abort" umount "$MNT"
# jbd2 says so when its commit fails, swapfs when a transaction is refused
# or, at the latest, at unmount.
check "dmesg says the journal was aborted (jbd2 and swapfs)" bash -c \
	"dmesg | grep -q 'Aborting journal on device $name' && dmesg | grep -q 'swapfs: $name: the journal was aborted'"
check "with the fault removed, the image mounts again (journal replay)" \
	bash -c "mount -t swapfs $dev $MNT && umount $MNT"
# Replay made it consistent. The abort is recorded on disk (the journal
# superblock's errno, then the superblock's ERROR bit at this mount) only if
# a write got through after it; with every write failing, none did.
fsck.swapfs -n "$dev" >/tmp/fsck.out 2>&1
check "fsck finds nothing but, at most, the recorded error state" \
	bash -c "grep -q ': clean' /tmp/fsck.out || { grep -q '1 problem' /tmp/fsck.out && grep -q 'ERROR state bit' /tmp/fsck.out; }"

ktap_done

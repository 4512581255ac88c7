# Pinned versions: the one place to change them. Sourced by scripts/lib.sh
# (as shell) and included by the top-level Makefile (as make), so keep the
# syntax to plain NAME=value lines (the Makefile strips the quotes).

# Debian linux-source packages (trixie-backports). SWAPFS_KERNELS lists the
# series the test bed builds (KERNELS="7.3" in the environment narrows it);
# each series names its pinned package version.
SWAPFS_KERNELS="7.3 7.2"
KVER_7_3=7.3.4-1~bpo13+1
KVER_7_2=7.2.12-1~bpo13+1
# The suite they come from; the mirror is the machine's own (scripts/lib.sh,
# debian_mirror), or DEBIAN_MIRROR from the environment.
DEBIAN_SUITE=trixie-backports

# Host tools.
LLVM_VERSION=19
BINDGEN_VERSION=0.72.1
VIRTME_NG_VERSION=1.42

# SPDX-License-Identifier: GPL-2.0
# Shared setup helpers for scripts/setup, scripts/vm and scripts/check.
# Source it; it defines functions and variables only.

SWAPFS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.mk
. "$SWAPFS_TOP/scripts/versions.mk"
KERNELS=${KERNELS:-$SWAPFS_KERNELS}

# Everything fetched or built lives here, outside the checkout.
SWAPFS_CACHE=${SWAPFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swapfs}
LLVM_BIN=/usr/lib/llvm-$LLVM_VERSION/bin
TOOLS_ROOT=$SWAPFS_CACHE/tools
VENV=$SWAPFS_CACHE/venv-virtme-ng-$VIRTME_NG_VERSION
export PATH="$LLVM_BIN:$TOOLS_ROOT/bin:$VENV/bin:$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VERSION/lib

log() { printf '[swapfs] %s\n' "$*" >&2; }
die() { printf '[swapfs] error: %s\n' "$*" >&2; exit 1; }

# with_lock FILE COMMAND...: run COMMAND holding an exclusive lock on FILE,
# so concurrent make invocations wait for each other instead of colliding.
with_lock() {
	local lock=$1; shift
	mkdir -p "$(dirname "$lock")"
	(
		flock 9
		"$@"
	) 9>"$lock"
}

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# A kernel is named by its series and an optional flavour: "7.3" is the
# test kernel, "7.3-debug" the same source with scripts/kernel-debug.config
# on top (lockdep, KASAN, fault injection).
kernel_series() { printf '%s\n' "${1%%-*}"; }

# The config fragments of a kernel, in the order they are applied.
kernel_fragments() {
	printf '%s\n' "$SWAPFS_TOP/scripts/kernel.config" "$SWAPFS_TOP/selftests/config"
	case $1 in
	*-debug) printf '%s\n' "$SWAPFS_TOP/scripts/kernel-debug.config" ;;
	*-*) die "unknown kernel flavour in '$1' (only -debug exists)" ;;
	esac
}

# The Debian package version pinned for a kernel series ("7.3").
kernel_pkgver() {
	local series
	series=$(kernel_series "$1")
	local var="KVER_${series//./_}"
	[ -n "${!var:-}" ] || die "no pinned package for kernel series '$series' (scripts/versions.mk)"
	printf '%s\n' "${!var}"
}

HOST_PACKAGES="clang-$LLVM_VERSION lld-$LLVM_VERSION llvm-$LLVM_VERSION libclang-$LLVM_VERSION-dev
 flex bison bc make libelf-dev libssl-dev dwarves python3-venv qemu-system-x86 cpio
 util-linux e2fsprogs xfsprogs udev kmod rsync busybox-static"

setup_packages() {
	local missing=() p
	for p in $HOST_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing Debian packages: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

setup_rust() {
	command -v rustc >/dev/null || die "rustc not found (rustup toolchain expected)"
	local src
	src="$(rustc --print sysroot)/lib/rustlib/src/rust/library/core"
	if [ ! -d "$src" ]; then
		log "rustup component add rust-src"
		rustup component add rust-src >/dev/null
	fi
	if [ "$("$TOOLS_ROOT/bin/bindgen" --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
		log "cargo install bindgen-cli $BINDGEN_VERSION into $TOOLS_ROOT"
		cargo install --quiet --locked --root "$TOOLS_ROOT" \
			"bindgen-cli@$BINDGEN_VERSION" >/dev/null
	fi
}

setup_virtme() {
	if [ "$("$VENV/bin/vng" --version 2>/dev/null | awk '{print $2}')" != "$VIRTME_NG_VERSION" ]; then
		log "installing virtme-ng $VIRTME_NG_VERSION into $VENV"
		rm -rf "$VENV"
		python3 -m venv "$VENV"
		"$VENV/bin/pip" install -q --disable-pip-version-check \
			"virtme-ng==$VIRTME_NG_VERSION"
	fi
}

# setup_host [KERNEL...]: the host tools; the named kernels' sources are
# downloaded and unpacked meanwhile (minutes on a cold cache, mostly
# network and xz, while bindgen compiles).
setup_host() {
	local fetch="" rc=0
	if [ $# -gt 0 ]; then
		(for s in $(for k in "$@"; do kernel_series "$k"; done | sort -u); do
			kernel_source "$s" >/dev/null || exit 1
		done) &
		fetch=$!
	fi
	setup_packages && setup_rust && setup_virtme || rc=1
	if [ -n "$fetch" ]; then wait "$fetch" || rc=1; fi
	return $rc
}

# Private apt configuration: its own sources list, state and cache, so the
# machine's sources and installed packages stay untouched.
APT_DIR=$SWAPFS_CACHE/apt
apt_private() {
	local cmd=$1; shift
	"$cmd" -o Dir::Etc::SourceList="$APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::Etc::Preferences=/dev/null \
		-o Dir::Etc::PreferencesParts=/dev/null \
		-o Dir::State="$APT_DIR/state" \
		-o Dir::State::status=/dev/null \
		-o Dir::Cache="$APT_DIR/cache" \
		-o APT::Architecture=amd64 \
		-o APT::Sandbox::User=root \
		-o Debug::NoLocking=1 "$@"
}

# The Debian mirror the kernel sources come from: DEBIAN_MIRROR, else the
# one this machine's apt configuration uses for its own release's main
# archive (a machine behind a proxy or a local mirror keeps using it).
debian_mirror() {
	local release
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		printf '%s\n' "$DEBIAN_MIRROR"
		return
	fi
	release=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	# shellcheck disable=SC2016 # apt's own $(...) placeholders
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(TARGET_OF) $(IDENTIFIER)' 2>/dev/null |
		awk -v r="$release" '$2 == r && $3 == "deb" && $4 == "Packages" { print $1; exit }' | grep . ||
		die "no Debian mirror in this machine's apt configuration for '${release:-its release}'; set DEBIAN_MIRROR (for example http://deb.debian.org/debian)"
}

# Unpack the pinned linux-source package of a series; prints the tree.
kernel_source() {
	local series
	series=$(kernel_series "$1")
	with_lock "$SWAPFS_CACHE/locks/src-$series" kernel_source_locked "$series"
}
kernel_source_locked() {
	local series=$1 pkgver src deb mirror
	pkgver=$(kernel_pkgver "$series")
	src=$SWAPFS_CACHE/src/linux-source-$series-$pkgver
	if [ ! -f "$src/.swapfs-unpacked" ]; then
		mkdir -p "$APT_DIR/state/lists/partial" "$APT_DIR/cache/archives/partial" \
			"$SWAPFS_CACHE/debs"
		deb=$(ls "$SWAPFS_CACHE/debs/linux-source-${series}_${pkgver//:/%3a}_all.deb" 2>/dev/null || true)
		if [ -z "$deb" ]; then
			mirror=$(debian_mirror) || exit 1
			echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $DEBIAN_SUITE main" \
				>"$APT_DIR/sources.list"
			log "downloading linux-source-$series=$pkgver from $mirror $DEBIAN_SUITE"
			apt_private apt-get update -qq >/dev/null
			(cd "$SWAPFS_CACHE/debs" &&
				apt_private apt-get download -qq "linux-source-$series=$pkgver" >/dev/null) ||
				die "linux-source-$series=$pkgver is not available from $DEBIAN_SUITE; update scripts/versions.mk"
			deb=$(ls "$SWAPFS_CACHE/debs/linux-source-${series}_"*"_all.deb")
		fi
		log "unpacking $(basename "$deb")"
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		dpkg -x "$deb" "$src.tmp/pkg"
		tar -xf "$src.tmp/pkg/usr/src/linux-source-$series.tar.xz" -C "$src.tmp"
		mv "$src.tmp/linux-source-$series" "$src"
		rm -rf "$src.tmp"
		touch "$src/.swapfs-unpacked"
	fi
	printf '%s\n' "$src"
}

# Key of a kernel build: package version, config fragments, toolchain.
kernel_key() {
	local series=$1
	{
		kernel_pkgver "$series"
		kernel_fragments "$series" | xargs cat
		rustc --version
		"$LLVM_BIN/clang" --version | head -n1
		echo "bindgen $BINDGEN_VERSION"
	} | sha256sum | cut -c1-12
}

kernel_builddir() {
	printf '%s\n' "$SWAPFS_CACHE/kernels/$1-$(kernel_key "$1")"
}

KMAKE_ARGS="LLVM=1"

# Check that every option the fragments ask for made it into .config.
kernel_config_verify() {
	local config=$1 series=$2 frag line sym want bad=0
	for frag in $(kernel_fragments "$series"); do
		while IFS= read -r line; do
			case $line in CONFIG_*=*) ;; *) continue ;; esac
			sym=${line%%=*}
			want=${line#*=}
			if [ "$want" = n ]; then
				if grep -q "^$sym=" "$config"; then
					log "config: $sym is set but $(basename "$frag") wants it off"
					bad=1
				fi
			elif ! grep -qx "$sym=$want" "$config"; then
				log "config: $(basename "$frag") wants $line, got: $(grep "^$sym=\|$sym is not set" "$config" || echo unset)"
				bad=1
			fi
		done <"$frag"
	done
	return $bad
}

# Configure and build a test kernel of a series (cached); prints the build dir.
kernel_build() {
	# One lock per build directory: kernels of other configurations build
	# (and are used) independently.
	with_lock "$SWAPFS_CACHE/locks/kernel-$(basename "$(kernel_builddir "$1")")" kernel_build_locked "$1"
}
kernel_build_locked() {
	local series=$1 src out jobs
	out=$(kernel_builddir "$series")
	if [ -f "$out/.swapfs-built" ]; then
		printf '%s\n' "$out"
		return 0
	fi
	src=$(kernel_source "$series")
	jobs=$(nproc)
	mkdir -p "$out"
	log "configuring $series in $out"
	make -s -C "$src" O="$out" $KMAKE_ARGS tinyconfig >/dev/null
	# shellcheck disable=SC2046
	"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
		$(kernel_fragments "$series") >/dev/null
	make -s -C "$src" O="$out" $KMAKE_ARGS olddefconfig >/dev/null
	if ! kernel_config_verify "$out/.config" "$series"; then
		make -s -C "$src" O="$out" $KMAKE_ARGS rustavailable >&2 || true
		die "kernel $series: the config fragments did not apply (see above)"
	fi
	log "building kernel $series (LLVM=1, -j$jobs); this takes a while on a cold cache"
	# One kernel compiles at a time, machine-wide, each with every core: two
	# at once take as long in all and make the first one ready later (a
	# cold make check's 7.3, built niced in the background, starved for
	# 50 minutes behind the 7.2 and debug builds its other jobs started).
	if ! with_lock "$SWAPFS_CACHE/locks/kernel-compile" \
		make -C "$src" O="$out" $KMAKE_ARGS -j"$jobs" >"$out/build.log" 2>&1; then
		tail -n 40 "$out/build.log" >&2
		die "kernel $series build failed; full log: $out/build.log"
	fi
	touch "$out/.swapfs-built"
	printf '%s\n' "$out"
}

# The files that make up the module's sources.
MODULE_SOURCES="Kbuild c include rust"

# Build swapfs.ko against a cached test kernel, in a copy of the sources
# under the cache (the checkout stays free of build outputs). Extra
# arguments go to make (e.g. CLIPPY=1). Prints the module's path.
module_build() {
	local top_hash
	top_hash=$(printf '%s' "$SWAPFS_TOP" | sha256sum | cut -c1-8)
	with_lock "$SWAPFS_CACHE/locks/module-$1-$top_hash" module_build_locked "$@"
}
module_build_locked() {
	local series=$1 kdir dir; shift
	kdir=$(kernel_build "$series")
	# One build directory per checkout (and per lint mode), so that several
	# checkouts can build and test at the same time.
	dir=$kdir/swapfs-module/$(printf '%s' "$SWAPFS_TOP" | sha256sum | cut -c1-8)${1:+-${1//[^A-Za-z0-9]/_}}
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	(cd "$SWAPFS_TOP" && rsync -a --delete --exclude='rust/sys/helper_bindings.rs' \
		--filter='protect *.o' --filter='protect .*.cmd' --filter='protect *.ko' \
		--filter='protect *.mod*' --filter='protect modules.order' \
		--filter='protect Module.symvers' --filter='protect helper_bindings.rs' \
		--filter='protect *.d' --filter='protect .*.d' \
		$MODULE_SOURCES "$dir/")
	if ! make -C "$kdir" M="$dir" $KMAKE_ARGS "$@" >"$dir/build.log" 2>&1; then
		cat "$dir/build.log" >&2
		die "swapfs.ko build against $series failed"
	fi
	# Warnings are errors for the module (the kernel's own are not ours).
	if grep -E 'warning:|warning\[' "$dir/build.log" >&2; then
		# The next build must compile again and see them again: make would
		# find the objects up to date and the log clean.
		find "$dir" -name '*.o' -delete
		die "swapfs.ko build against $series has warnings (above)"
	fi
	printf '%s\n' "$dir/swapfs.ko"
}

# Builds the host tools (release) and names them as util-linux expects
# (mkfs -t swapfs runs mkfs.swapfs, fsck -t swapfs runs fsck.swapfs; cargo
# binary names cannot contain a dot). Prints the directory holding them.
tools_build() {
	local bin=$SWAPFS_TOP/tools/target/release
	(cd "$SWAPFS_TOP/tools" && cargo build --release --workspace --color never --quiet) >&2 || return 1
	ln -sfn mkfs-swapfs "$bin/mkfs.swapfs"
	ln -sfn fsck-swapfs "$bin/fsck.swapfs"
	printf '%s\n' "$bin"
}

# ---- fstests (make fstests, the fstests slice of make check) ---------------
# fstests' build and run dependencies (its README's Debian list, without git
# and the kernel headers; dmsetup for its device-mapper tests).
FSTESTS_PACKAGES="acl attr automake bc dbench dmsetup e2fsprogs fio gawk gcc indent
 libacl1-dev libaio-dev libcap-dev libgdbm-dev libgdbm-compat-dev libinih-dev libtool
 libtool-bin liburing-dev make psmisc python3 quota sed uuid-dev uuid-runtime xfsprogs
 xfslibs-dev sqlite3"

# The fstests snapshot this workplace keeps beside every checkout.
FSTESTS_SNAPSHOT=$SWAPFS_TOP/../shared/third_party/xfstests-63a29724.tar.gz

# fstests_source: the fstests source named by XFSTESTS (a tree or a
# tarball), else the snapshot beside the checkout; prints it, or fails
# saying what to pass.
fstests_source() {
	local s=${XFSTESTS:-}
	if [ -z "$s" ]; then
		[ -f "$FSTESTS_SNAPSHOT" ] || {
			log "no fstests source: set XFSTESTS to an fstests checkout or tarball, e.g."
			log "  git clone https://git.kernel.org/pub/scm/fs/xfs/xfstests-dev.git ~/xfstests"
			log "  make fstests XFSTESTS=~/xfstests"
			log "(or put xfstests-63a29724.tar.gz in ../shared/third_party beside the checkout)"
			return 1
		}
		s=$FSTESTS_SNAPSHOT
	fi
	[ -e "$s" ] || { log "XFSTESTS=$s does not exist"; return 1; }
	if [ -d "$s" ]; then
		[ -f "$s/check" ] && [ -d "$s/common" ] ||
			{ log "XFSTESTS=$s is not an fstests tree (no check, common/)"; return 1; }
	fi
	realpath "$s"
}

# fstests_build SOURCE: a patched, built copy of SOURCE in the cache (the
# user's tree is never written); prints its directory. The key covers the
# source (a tarball's bytes; a tree's commit and uncommitted changes, or its
# file list and times) and the patches in selftests/fstests/patches.
fstests_build() {
	local src=$1 key
	key=$({
		if [ -f "$src" ]; then
			sha256sum <"$src"
		elif git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
			git -C "$src" rev-parse HEAD
			git -C "$src" diff HEAD
		else
			(cd "$src" && find . -path ./results -prune -o -type f -printf '%p %T@ %s\n' | sort)
		fi
		cat "$SWAPFS_TOP"/selftests/fstests/patches/*.patch
	} | sha256sum | cut -c1-12)
	with_lock "$SWAPFS_CACHE/locks/fstests-$key" fstests_build_locked "$src" "$SWAPFS_CACHE/fstests/build-$key"
}
fstests_build_locked() {
	local src=$1 out=$2 p
	if [ ! -f "$out/.swapfs-built" ]; then
		setup_fstests_packages || return 1
		log "building fstests from $src in $out"
		rm -rf "$out" "$out.tmp"
		mkdir -p "$out.tmp"
		if [ -f "$src" ]; then
			tar -xf "$src" -C "$out.tmp" --strip-components=1 || return 1
		else
			rsync -a --exclude=.git --exclude=/results "$src/" "$out.tmp/" || return 1
		fi
		for p in "$SWAPFS_TOP"/selftests/fstests/patches/*.patch; do
			[ -f "$p" ] || continue
			patch -s -p1 -d "$out.tmp" <"$p" || { log "fstests: $(basename "$p") does not apply"; return 1; }
		done
		if ! make -C "$out.tmp" -j"$(nproc)" >"$out.tmp/swapfs-build.log" 2>&1; then
			tail -n 30 "$out.tmp/swapfs-build.log" >&2
			log "fstests build failed; full log: $out.tmp/swapfs-build.log"
			return 1
		fi
		mv "$out.tmp" "$out"
		touch "$out/.swapfs-built"
	fi
	# The tree in one file, which a guest unpacks into its memory
	# (scripts/guest-fstests): over 9p every stat is a round trip, and
	# fstests stats its whole tree at each ./check (52 s in TCG).
	if [ ! -f "$out/.swapfs-tree.tar" ]; then
		tar -C "$out" -cf "$out/.swapfs-tree.tar.tmp" --exclude=./.swapfs-tree.tar.tmp \
			--exclude='*.o' --exclude=./swapfs-build.log . &&
			mv "$out/.swapfs-tree.tar.tmp" "$out/.swapfs-tree.tar" || return 1
	fi
	printf '%s\n' "$out"
}

setup_fstests_packages() {
	local missing=() p
	for p in $FSTESTS_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing Debian packages for fstests: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

#!/usr/bin/env bash
# Builds what the kernel tests boot under qemu: Debian's stock kernel (it has the nbd module; the host kernel here does
# not) and a busybox initramfs with nbd.ko, e1000.ko, virtio_blk.ko (and their dependencies) and Debian's nbd-client. Idempotent: everything is cached in
# $SWAPNBD_KERNEL_CACHE (default /var/cache/swapnbd-kernel) and a second run only checks stamps.
#
# Output on stdout (everything else goes to stderr), one KEY=VALUE per line:
#   vmlinuz=/path/to/vmlinuz-X   initramfs=/path/to/base.cpio.gz   kernel=X (package version)
#
# Env: SWAPNBD_KERNEL_CACHE (cache dir), SWAPNBD_KERNEL_PKG (pin e.g. linux-image-6.1.0-56-amd64 instead of whatever
# linux-image-amd64 currently depends on; Debian rotates that package, so CI may want to pin it).
set -euo pipefail

cache=${SWAPNBD_KERNEL_CACHE:-/var/cache/swapnbd-kernel}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# log, need_packages, apt_update and apt_opts (apt waits for the dpkg lock: CI images, parallel jobs).
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$cache"
# Concurrent runs (parallel CI jobs, several tests starting at once) must not build into the same files.
exec 9>"$cache/.lock"
flock 9

# --- host packages ---------------------------------------------------------------------------------------------------
# socat relays each guest connection to the server (run-guest.sh); busybox-static is the guest userland.
need_packages qemu-system-x86 busybox-static nbd-client cpio socat

# --- kernel package --------------------------------------------------------------------------------------------------
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}'; }
pkg=${SWAPNBD_KERNEL_PKG:-}
if [[ -z "$pkg" ]]; then
  pkg=$(kernel_pkg || true)
  if [[ -z "$pkg" ]]; then
    # Fresh machines often ship without package lists.
    apt_update
    pkg=$(kernel_pkg)
  fi
fi
[[ "$pkg" =~ ^linux-image-[0-9A-Za-z.+~-]+$ ]] || die "cannot determine the kernel package (got '$pkg')"

kdir="$cache/$pkg"
if [[ ! -f "$kdir/.done" ]]; then
  log "downloading $pkg"
  rm -rf "$kdir"
  mkdir -p "$kdir/dl"
  # apt downloads as user _apt when run as root; it needs to write here.
  chmod 0777 "$kdir/dl"
  if ! (cd "$kdir/dl" && apt-get "${apt_opts[@]}" download "$pkg" >&2); then
    # Stale lists point at a superseded .deb (404); refresh once.
    apt_update
    (cd "$kdir/dl" && apt-get "${apt_opts[@]}" download "$pkg" >&2)
  fi
  debs=("$kdir"/dl/*.deb)
  dpkg-deb -f "${debs[0]}" Version >"$kdir/version"
  dpkg -x "${debs[0]}" "$kdir/x"
  rm -rf "$kdir/dl"
  touch "$kdir/.done"
fi
vmlinuz_list=("$kdir"/x/boot/vmlinuz-*)
vmlinuz=${vmlinuz_list[0]}
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/x/lib/modules/$kver
[[ -f "$vmlinuz" && -d "$moddir" ]] || die "no kernel/modules in $kdir (delete it and rerun)"

# --- base initramfs --------------------------------------------------------------------------------------------------
busybox=$(command -v busybox)
nbd_client=/usr/sbin/nbd-client
initrd="$cache/$pkg-base.cpio.gz"
report() {
  printf 'vmlinuz=%s\ninitramfs=%s\nkernel=%s (%s %s)\n' "$vmlinuz" "$initrd" "$kver" "$pkg" \
    "$(cat "$kdir/version" 2>/dev/null || echo "version unknown")"
}
stamp="$cache/$pkg-base.stamp"
# Rebuild whenever this script, the guest init, busybox or nbd-client change (package upgrades included).
sum=$(cat "${BASH_SOURCE[0]}" "$here/init.sh" "$busybox" "$nbd_client" | sha256sum | cut -d' ' -f1)
if [[ -f "$initrd" && "$(cat "$stamp" 2>/dev/null)" == "$sum" ]]; then
  report
  exit 0
fi

log "building $initrd"
root=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,mnt,run,etc,root,modules}
cp "$busybox" "$root/bin/busybox"
# Every applet as a symlink to busybox, except busybox itself: a self-link loops (ELOOP) and breaks the binary.
while read -r applet; do
  [[ "$applet" == busybox ]] && continue
  ln -sf busybox "$root/bin/$applet"
done < <("$busybox" --list)

# Decompressed on the host: busybox insmod cannot read .ko.xz/.ko.zst.
module_file() { find "$moddir/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" \) -print -quit; }
loaded=()
add_module() {
  local name=$1 file dep deps plain
  for dep in "${loaded[@]}"; do [[ "$dep" == "$name" ]] && return 0; done
  file=$(module_file "$name")
  if [[ -z "$file" ]]; then
    # Module names use _ where file names may use -.
    file=$(module_file "${name//_/-}")
  fi
  [[ -n "$file" ]] || die "module $name not found in $moddir"
  plain="$root/modules/$name.ko"
  case "$file" in
    *.xz) need_packages xz:xz-utils && xz -dc "$file" >"$plain" ;;
    *.zst) need_packages zstd:zstd && zstd -qdc "$file" >"$plain" ;;
    *.gz) gzip -dc "$file" >"$plain" ;;
    *) cp "$file" "$plain" ;;
  esac
  # depends= from the .modinfo section (the package has no modules.dep, and kmod's modinfo may be absent).
  deps=$(tr '\0' '\n' <"$plain" | sed -n 's/^depends=//p')
  deps=${deps%%$'\n'*}
  for dep in ${deps//,/ }; do add_module "$dep"; done
  loaded+=("$name")
  echo "$name.ko" >>"$root/modules/load.list"
}
: >"$root/modules/load.list"
add_module e1000
add_module nbd
# A second disk for a server that runs in the guest (its backup disk: run-guest.sh --disk).
add_module virtio_pci
add_module virtio_blk

cp "$nbd_client" "$root/sbin/nbd-client"
# nbd-client's shared libraries and the loader, at the paths ldd resolved them to.
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$nbd_client" | grep -o '/[^ ]*')
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
install -m 0755 "$here/init.sh" "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
echo "$sum" >"$stamp"
log "modules: $(tr '\n' ' ' <"$root/modules/load.list")"
report

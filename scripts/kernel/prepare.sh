#!/usr/bin/env bash
# Builds what the kernel tests boot under qemu: Debian's stock kernel (it has the nbd module; the host kernel here does
# not) and a busybox initramfs with nbd.ko, e1000.ko and Debian's nbd-client. Idempotent; cached in
# $SWAPNBD_KERNEL_CACHE (default /var/cache/swapnbd-kernel). Prints the kernel and initramfs paths.
set -euo pipefail
cache=${SWAPNBD_KERNEL_CACHE:-/var/cache/swapnbd-kernel}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"

need=()
for p in qemu-system-x86 busybox-static nbd-client cpio netcat-openbsd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The package linux-image-amd64 points at the current Debian kernel; take exactly that one.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [[ -z "$pkg" ]]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
kdir="$cache/$pkg"
if [[ ! -f "$kdir/.done" ]]; then
  rm -rf "$kdir" && mkdir -p "$kdir/dl"
  (cd "$kdir/dl" && chmod 777 . && apt-get download "$pkg" >/dev/null 2>&1)
  dpkg -x "$kdir"/dl/*.deb "$kdir/x"
  rm -rf "$kdir/dl"
  touch "$kdir/.done"
fi
vmlinuz=$(ls "$kdir"/x/boot/vmlinuz-*)
moddir=$(ls -d "$kdir"/x/lib/modules/*)

initrd="$cache/$pkg-base.cpio.gz"
stamp="$cache/$pkg-base.stamp"
# Rebuild when this script or the guest init change.
sum=$(cat "$0" "$here/init.sh" /usr/sbin/nbd-client /bin/busybox | sha256sum | cut -d' ' -f1)
if [[ ! -f "$initrd" || "$(cat "$stamp" 2>/dev/null)" != "$sum" ]]; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,mnt,run,etc,modules}
  cp /bin/busybox "$root/bin/busybox"
  # Every applet as a link to busybox, except busybox itself (a self-link loops: ELOOP).
  for applet in $("$root/bin/busybox" --list); do
    [[ "$applet" == busybox ]] && continue
    ln -sf /bin/busybox "$root/bin/$applet"
  done
  for ko in "$moddir/kernel/drivers/block/nbd.ko"* "$moddir/kernel/drivers/net/ethernet/intel/e1000/e1000.ko"*; do
    case "$ko" in
      *.xz) xz -dc "$ko" >"$root/modules/$(basename "${ko%.xz}")" ;;
      *.zst) zstd -qdc "$ko" >"$root/modules/$(basename "${ko%.zst}")" ;;
      *) cp "$ko" "$root/modules/" ;;
    esac
  done
  cp /usr/sbin/nbd-client "$root/sbin/nbd-client"
  # nbd-client's shared libraries, with the loader, at the paths ldd resolved them to.
  for lib in $(ldd /usr/sbin/nbd-client | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  install -m 0755 "$here/init.sh" "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  echo "$sum" >"$stamp"
fi
echo "kernel=$vmlinuz"
echo "initrd=$initrd"

#!/bin/sh
# Usage: unshare --mount --fork --kill-child run_in_minimal_root.sh TASK_DIR NAME=VALUE... CMD...
#
# Runs CMD (through env -i, with only the given variables) chrooted into a root that has
# what a Kiln sandbox promises and nothing more: the host's /usr read-only, the
# /bin /lib /lib64 links into it (merged /usr), TASK_DIR read-only at /var/task, an empty
# tmpfs at /tmp. No /proc, /dev, /etc, /home. Must run in a private mount namespace as
# root; the mounts vanish with the namespace, the empty mount point (under $TMPDIR)
# stays for the caller to remove.
set -eu
task="$1"; shift
root="$(mktemp -d "${TMPDIR:-/tmp}/kiln-ric-root.XXXXXX")"
mount -t tmpfs -o mode=0755 kiln-ric-root "$root"
mkdir -p "$root/usr" "$root/var/task" "$root/tmp"
mount --bind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
mount --bind "$task" "$root/var/task"
mount -o remount,bind,ro "$root/var/task"
mount -t tmpfs -o mode=1777 kiln-ric-tmp "$root/tmp"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
exec chroot "$root" /usr/bin/env -i "$@"

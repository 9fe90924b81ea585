#!/bin/sh
# Install Gatepost @ROLE@ node @NODE@ of site @SITE@ (made by `gatepost fw provision`).
# Run as root on the Pi from the unpacked bundle: sh install.sh. Safe to run again.
# DESTDIR=/some/root installs under that root instead (a test, an image build); run as
# another user than root it skips what needs root (useradd, chown, udevadm, systemctl).
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=${DESTDIR:-}
cd "$here"

say() { printf 'install: %s\n' "$*"; }

say "checking the bundle against MANIFEST.sha256"
sha256sum --quiet -c MANIFEST.sha256 || { say "the bundle is damaged: nothing installed"; exit 1; }

# Users, owners, udev and systemd are the running system's: only as root, and not
# into a DESTDIR.
if [ "$(id -u)" -eq 0 ] && [ -z "$root" ]; then system=1; else system=0; fi
skipped="not root, or DESTDIR set: skipped"

if [ "$system" -eq 1 ]; then
    for user in @USERS@; do
        if id -u "$user" >/dev/null 2>&1; then
            say "user $user exists"
        else
            useradd --system --home-dir /nonexistent --no-create-home \
                --shell /usr/sbin/nologin "$user"
            say "user $user created"
        fi
    done
else
    say "$skipped creating users @USERS@"
fi

# Each file to its place, whole: written beside and renamed, so a node never reads half.
put() {  # put MODE SOURCE
    mode=$1; src=$2; dst="$root/$src"
    mkdir -p "$(dirname -- "$dst")"
    cp "$src" "$dst.new"
    chmod "$mode" "$dst.new"
    mv -f "$dst.new" "$dst"
}
@PUT_FILES@
mkdir -p "$root/var/lib/gatepost/trust"
chmod 0750 "$root/var/lib/gatepost" "$root/var/lib/gatepost/trust"
# A signed list the node already holds may be newer than the bundle's: keep it.
@PUT_STATE@
if [ "$system" -eq 1 ]; then
    chown -R gatepost:gatepost /var/lib/gatepost
    chown gatepost:gatepost @SECRETS@
    udevadm control --reload && udevadm trigger --subsystem-match=tty
    systemctl daemon-reload
    systemctl enable @UNITS@
    systemctl restart @UNITS@
    say "units enabled and started: @UNITS@"
else
    say "$skipped chown, udevadm and systemctl; as root on the Pi run:"
    say "  systemctl daemon-reload && systemctl enable --now @UNITS@"
fi
say "installed @ROLE@ node @NODE@ under ${root:-/}"

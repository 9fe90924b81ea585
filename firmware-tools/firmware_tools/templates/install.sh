#!/bin/sh
# Install Gatepost @ROLE@ node @NODE@ of site @SITE@ (made by `gatepost fw provision`).
# Run as root on the Pi from the unpacked bundle: sh install.sh. Safe to run again.
# DESTDIR=/some/root installs under that root instead (a test, an image build); then, or
# run by another user than root, it skips what changes the running system (useradd,
# chown, udevadm, systemctl) and says so.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=${DESTDIR:-}
cd "$here"

say() { printf 'install: %s\n' "$*"; }

say "checking the bundle against MANIFEST.sha256"
sha256sum --quiet -c MANIFEST.sha256 || { say "the bundle is damaged: nothing installed"; exit 1; }

if [ "$(id -u)" -eq 0 ] && [ -z "$root" ]; then system=1; else system=0; fi
skipped="not root, or DESTDIR set: skipped"

# Two phases, so that a full disk or an unwritable folder installs nothing: every file is
# first copied beside its place as <file>.new; only once all are written is each renamed
# into place (a rename needs no space, and a node never reads half a file).
staged=""
unstage() {
    for file in $staged; do rm -f "$root/$file.new"; done
}
stage() {  # stage MODE FILE
    if mkdir -p "$(dirname -- "$root/$2")" 2>/dev/null && cp "$2" "$root/$2.new" 2>/dev/null \
        && chmod "$1" "$root/$2.new"; then
        staged="$staged $2"
    else
        rm -f "$root/$2.new" 2>/dev/null || :
        unstage
        say "could not write $root/$2 (disk full, or not a folder?): nothing installed"
        exit 1
    fi
}
@PUT_FILES@
# A signed list the node already holds may be newer than the bundle's: keep it.
@PUT_STATE@
for file in $staged; do mv -f "$root/$file.new" "$root/$file"; done
mkdir -p "$root/var/lib/gatepost/trust"
chmod 0750 "$root/var/lib/gatepost" "$root/var/lib/gatepost/trust"
say "files in place under ${root:-/}"

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
    chown -R gatepost:gatepost /var/lib/gatepost
    chown gatepost:gatepost @SECRETS@
    udevadm control --reload && udevadm trigger --subsystem-match=tty
    systemctl daemon-reload
    systemctl enable @UNITS@
    systemctl restart @UNITS@
    say "units enabled and started: @UNITS@"
else
    say "$skipped creating users @USERS@, chown, udevadm and systemctl; as root on the Pi run:"
    say "  systemctl daemon-reload && systemctl enable --now @UNITS@"
fi
say "installed @ROLE@ node @NODE@"

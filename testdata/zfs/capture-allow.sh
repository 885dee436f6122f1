#!/bin/sh
# Capture what `zfs allow DATASET` prints (delegated permissions of users,
# groups, everyone, sets, create-time permissions, unknown ids, a name with
# a space), for the delegation parser's tests.
# Usage (as root): capture-allow.sh POOL OUTDIR   -- creates and destroys POOL/cap;
# needs the accounts zdeleg and zcap2 and the group users.
P=$1; O=$2; mkdir -p "$O"
c() { name=$1; shift; printf '%s\n' "$*" | sed "s|$P|\$P|g" >"$O/$name.cmd"; "$@" >"$O/$name.out" 2>"$O/$name.err"; echo $? >"$O/$name.rc"; }
zfs destroy -r "$P/cap" 2>/dev/null
zfs create -p "$P/cap/bk/web 1/data"
c allow-none zfs allow "$P/cap/bk"
c allow-missing zfs allow "$P/cap/nope"
zfs allow -u zdeleg receive,create,mount "$P/cap/bk"
zfs allow -l -u zcap2 send,hold "$P/cap/bk"
zfs allow -d -g users snapshot "$P/cap/bk"
zfs allow -e destroy "$P/cap"
zfs allow -s @backup receive,create,mount,userprop,canmount "$P/cap"
zfs allow -u zdeleg @backup,readonly "$P/cap"
zfs allow -c destroy,mount "$P/cap/bk"
zfs allow -u 4242 hold "$P/cap/bk"
zfs allow -g 4343 release "$P/cap/bk/web 1"
zfs allow -u zdeleg,zcap2 bookmark "$P/cap/bk/web 1/data"
c allow-full zfs allow "$P/cap/bk/web 1/data"
c allow-parent zfs allow "$P/cap/bk"
zfs destroy -r "$P/cap"
echo captured into "$O"

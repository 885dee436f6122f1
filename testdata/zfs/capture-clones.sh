#!/bin/sh
# Capture what `zfs` prints about clones (the origin property, a clone sent
# with -i ORIGIN and received as a clone), for parser tests.
# Usage (as root): capture-clones.sh POOL OUTDIR   -- creates and destroys POOL/cap, POOL/capdst
P=$1; O=$2; mkdir -p "$O"
c() { name=$1; shift; printf '%s\n' "$*" | sed "s|$P|\$P|g" >"$O/$name.cmd"; "$@" >"$O/$name.out" 2>"$O/$name.err"; echo $? >"$O/$name.rc"; }
zfs destroy -r "$P/cap" 2>/dev/null; zfs destroy -r "$P/capdst" 2>/dev/null
zfs create "$P/cap"; zfs create "$P/cap/tmpl"
zfs snapshot "$P/cap/tmpl@base"; zfs snapshot "$P/cap/tmpl@later"
zfs clone "$P/cap/tmpl@base" "$P/cap/vm 1"; zfs snapshot "$P/cap/vm 1@s1"
zfs create "$P/capdst"
zfs send "$P/cap/tmpl@base" | zfs receive -u "$P/capdst/tmpl"
c recv-clone sh -c "zfs send -i '$P/cap/tmpl@base' '$P/cap/vm 1@s1' | zfs receive -u '$P/capdst/vm 1'"
c get-origin zfs get -H -p -r -o name,property,value,source type,guid,createtxg,creation,zrep:placeholder,origin "$P/cap" "$P/capdst"
c get-origin-t zfs get -H -p -r -t filesystem,volume,snapshot,bookmark -o name,property,value,source type,guid,createtxg,creation,zrep:placeholder,origin,receive_resume_token "$P/cap"
zfs destroy -r "$P/cap/vm 1"; zfs destroy -r "$P/capdst/vm 1"
zfs destroy -r "$P/cap" 2>/dev/null; zfs destroy -r "$P/capdst" 2>/dev/null
echo captured into "$O"

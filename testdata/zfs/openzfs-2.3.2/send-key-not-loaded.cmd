zfs unmount "$P/cap"; zfs unload-key "$P/cap"; zfs send "$P/cap@s1"   # $P/cap: encryption=on, keyformat=passphrase

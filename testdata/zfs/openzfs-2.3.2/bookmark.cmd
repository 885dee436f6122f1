zfs bookmark "$P/cap@s1" "$P/cap#b1"

zfs destroy "$P/cap@s1"

zfs hold zrep "$P/cap@s1"

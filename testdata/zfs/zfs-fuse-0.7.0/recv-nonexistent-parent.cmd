sh -c "zfs send '$P/cap@s1' | zfs recv -u '$P/nope/deeper'"

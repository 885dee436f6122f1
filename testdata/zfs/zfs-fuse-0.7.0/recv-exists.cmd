sh -c "zfs send '$P/cap@s2' | zfs recv -u '$P/capdst'"

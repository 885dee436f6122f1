sh -c "zfs send -i '$P/cap@s1' '$P/cap@s2' | zfs recv -u '$P/capdst'"

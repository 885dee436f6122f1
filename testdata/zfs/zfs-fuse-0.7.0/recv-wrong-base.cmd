sh -c "zfs send -i '$P/cap@s2' '$P/cap@s 3' | zfs recv -u '$P/capdst'"

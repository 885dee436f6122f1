sh -c "zfs destroy '$P/capdst@local'; zfs send -i '$P/cap@s2' '$P/cap@s 3' | head -c 100000 | zfs recv -s -u '$P/capdst'"

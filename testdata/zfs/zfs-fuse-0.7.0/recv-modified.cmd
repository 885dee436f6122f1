sh -c "zfs mount '$P/capdst' 2>/dev/null; echo x >'/$P/capdst/x'; zfs send -i '$P/cap@s2' '$P/cap@s 3' | zfs recv -u '$P/capdst'"

zfs send -nvP -i "$P/cap@s1" "$P/cap@s2"

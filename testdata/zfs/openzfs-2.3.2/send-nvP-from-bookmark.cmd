zfs send -nvP -i "$P/cap#b1" "$P/cap@s2"

zfs send -nvP "$P/cap@s2"

zfs send "$P/cap@nope"

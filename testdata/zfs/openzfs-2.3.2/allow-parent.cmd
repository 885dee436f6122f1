zfs allow $P/cap/bk

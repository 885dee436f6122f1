zfs allow $P/cap/nope

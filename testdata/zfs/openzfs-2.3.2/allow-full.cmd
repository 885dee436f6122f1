zfs allow $P/cap/bk/web 1/data

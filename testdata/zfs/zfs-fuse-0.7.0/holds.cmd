zfs holds -H "$P/cap@s1"

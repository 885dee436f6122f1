zfs list -H -o name "$P/nope"

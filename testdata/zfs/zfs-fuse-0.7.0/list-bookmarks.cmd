zfs list -H -p -r -t bookmark -o name,guid,createtxg "$P/cap"

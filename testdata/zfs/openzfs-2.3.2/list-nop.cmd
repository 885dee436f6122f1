zfs list -H -r -t all -o name,guid,createtxg,creation,type "$P/cap"

zfs list -H -p -r -t filesystem,volume,snapshot,bookmark -o name,guid,createtxg,creation,type "$P/cap"

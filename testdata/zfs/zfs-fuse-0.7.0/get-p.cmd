zfs get -H -p -r -o name,property,value guid,createtxg,creation,type "$P/cap"

zfs get -H -p -d 1 -o name,property,value,source type,guid,createtxg,creation,zrep:placeholder $P/a

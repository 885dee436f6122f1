zfs get -H -p -r -o name,property,value,source type,guid,createtxg,creation,origin $P/t

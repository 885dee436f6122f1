zfs get -H -p -r -o name,property,value,source type,guid,createtxg,creation,zrep:placeholder,origin $P/cap $P/capdst

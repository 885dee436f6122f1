zfs get -H -p -o name,property,value,source zrep:placeholder "$P/cap"

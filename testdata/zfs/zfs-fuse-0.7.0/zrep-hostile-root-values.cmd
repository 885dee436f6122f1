zfs get -H -o name,property,value -s inherited zrep:placeholder,zrep:sync $P/t

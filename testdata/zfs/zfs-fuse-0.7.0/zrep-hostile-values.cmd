zfs get -H -o name,property,value -s local,received -r zrep:placeholder,zrep:sync $P/t

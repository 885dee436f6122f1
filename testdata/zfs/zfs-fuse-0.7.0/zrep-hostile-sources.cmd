zfs get -H -o name,property,source -s local,received,inherited -r zrep:placeholder,zrep:sync $P/t

zfs get -H -p -o name,property,value,source type,zrep:placeholder,canmount $P/ph

zfs get -H -o value zrep:sync $P/t/b

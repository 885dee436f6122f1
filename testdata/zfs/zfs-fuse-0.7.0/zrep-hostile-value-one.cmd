zfs get -H -o value zrep:placeholder $P/t/a

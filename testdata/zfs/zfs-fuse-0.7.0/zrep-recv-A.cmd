zfs receive -A $P/dst

sh -c zfs send '$P/a@s1' | zfs receive -u -s '$P/dst2'

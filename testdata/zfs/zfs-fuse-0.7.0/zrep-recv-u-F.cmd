sh -c zfs send '$P/a@s1' | zfs receive -u -F '$P/ph'

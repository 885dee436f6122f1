sh -c zfs send -i '$P/cap/tmpl@base' '$P/cap/vm 1@s1' | zfs receive -u '$P/capdst/vm 1'

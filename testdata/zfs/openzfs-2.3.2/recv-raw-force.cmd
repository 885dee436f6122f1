zfs send -w "$P/enc@s1" | zfs receive -u -F "$P/ph"   # $P/enc: encryption=on; $P/ph: an unencrypted placeholder

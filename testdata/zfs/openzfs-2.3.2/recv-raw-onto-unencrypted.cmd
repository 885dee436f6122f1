zfs send -w -i @s1 "$P/enc@s2" | zfs receive -u "$P/plain/enc"   # $P/enc: encryption=on; $P/plain/enc: received from it decrypted

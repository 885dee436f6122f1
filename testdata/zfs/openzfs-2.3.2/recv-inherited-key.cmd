zfs send "$P/src@s1" | zfs receive -u "$P/lock/src"   # $P/src: not encrypted; $P/lock: encryption=on, key unloaded

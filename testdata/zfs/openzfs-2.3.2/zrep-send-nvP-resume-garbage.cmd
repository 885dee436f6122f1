zfs send -nvP -t 1-garbage

zfs send -t "$TOKEN"   # as zrep-send-nvP-resume-gone, without -nvP

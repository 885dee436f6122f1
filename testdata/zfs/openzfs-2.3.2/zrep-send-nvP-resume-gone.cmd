zfs send -nvP -t "$TOKEN"   # TOKEN: receive_resume_token of an interrupted incremental $P/src@s0 -> $P/src@big, after zfs destroy $P/src@big

zfs destroy $P/a@s2,s3

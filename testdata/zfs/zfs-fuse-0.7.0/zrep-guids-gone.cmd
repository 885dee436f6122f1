zfs get -H -p -o name,value guid $P/t/a@s1 $P/t/a@nope $P/t/a@s2

zfs get -H -p -r -t filesystem,volume,snapshot,bookmark -o name,property,value,source type,guid,createtxg,creation,zrep:placeholder,origin,receive_resume_token $P/cap

zfs create -o canmount=off -o zrep:placeholder=on "$P/lock/ph"   # $P/lock: encryption=on, key unloaded

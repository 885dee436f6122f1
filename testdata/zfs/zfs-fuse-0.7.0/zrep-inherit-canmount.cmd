zfs inherit canmount $P/ph

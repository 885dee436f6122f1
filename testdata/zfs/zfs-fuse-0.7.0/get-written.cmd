zfs get -H -p -o name,property,value written "$P/capdst"

zpool get -H -o property,value all "$P"

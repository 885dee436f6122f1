zfs recv -A "$P/capdst"

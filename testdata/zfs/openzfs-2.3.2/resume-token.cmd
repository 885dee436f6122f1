zfs get -H -p -o value receive_resume_token "$P/capdst"

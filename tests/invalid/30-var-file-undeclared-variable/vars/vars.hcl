version    = "1.0.0"
db_pasword = "correct-horse-battery-staple"

SHARE=${100 % n}

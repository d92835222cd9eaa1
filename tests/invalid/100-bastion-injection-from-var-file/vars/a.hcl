bastion = "jump\nProxyCommand touch /tmp/x; nc %h %p"

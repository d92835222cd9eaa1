service "myapp" {
  version = "1.0.0"
  vm {
    install_dir = "/"
    config_dirs = ["/etc", "/etc/myapp/../ssh"]

    config_file "passwd" {
      destination = "/etc/passwd"
      content     = "root::0:0::/root:/bin/sh\n"
      mode        = "rw-r--r--"
    }
  }
}

environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
}

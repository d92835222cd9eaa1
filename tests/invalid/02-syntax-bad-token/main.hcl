service "myapp" {
  version = "1.0.0"
  vm {
    install_dir   = "/opt/myapp"
    start_command = "sh current/bin/start.sh" ;
  }
}

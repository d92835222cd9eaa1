service "myapp" {
  version = "1.0.0"
  vm { install_dir = "/opt/myapp" }
}

environment "qa" {
  vm_hosts {
    hosts = [
      "qa-vm-01.internal",
      "qa-vm-02.internal",
      "qa-vm-01.internal",
    ]
  }
}

deployment "myapp-qa" {
  service     = service.myapp
  environment = environment.qa
}

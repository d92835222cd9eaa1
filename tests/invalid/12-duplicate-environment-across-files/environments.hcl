environment "dev" {
  vm_hosts { hosts = ["dev-vm-01.internal"] }
}

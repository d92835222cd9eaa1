# Where myapp runs. Every environment names the values its config templates
# need (LOG_LEVEL, DB_HOST, JAVA_OPTS) in `variables`.

environment "dev" {
  variables = {
    LOG_LEVEL = "DEBUG"
    DB_HOST   = "dev-db.internal"
    JAVA_OPTS = "-Xms256m -Xmx512m"
  }

  vm_hosts {
    user            = local.ssh_user
    identity_file   = local.ssh_key
    host_key_policy = "accept-new"
    hosts           = ["dev-vm-01.internal", "dev-vm-02.internal"]
  }
}

environment "qa" {
  variables = {
    LOG_LEVEL = "INFO"
    DB_HOST   = "qa-db.internal"
    JAVA_OPTS = "-Xms512m -Xmx1g"
  }

  vm_hosts {
    user          = local.ssh_user
    identity_file = local.ssh_key
    hosts         = ["qa-vm-01.internal", "qa-vm-02.internal", "qa-vm-03.internal"]
  }
}

environment "staging" {
  variables = {
    LOG_LEVEL = "INFO"
    DB_HOST   = "staging-db.internal"
    JAVA_OPTS = "-Xms1g -Xmx2g"
  }

  vm_hosts {
    user          = local.ssh_user
    identity_file = local.ssh_key
    bastion       = "jump.internal"
    hosts = [
      "staging-vm-01.internal",
      "staging-vm-02.internal",
      "staging-vm-03.internal",
      "staging-vm-04.internal",
      "staging-vm-05.internal",
    ]

    # Each host leaves the target group before it stops and rejoins after its
    # smoke tests pass.
    load_balancer {
      target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/myapp-staging/0a1b2c3d4e5f6a7b"
      region           = "us-east-1"
    }
  }
}

environment "production" {
  protected = true # apply asks for an explicit confirmation

  variables = {
    LOG_LEVEL = "INFO"
    DB_HOST   = "prod-db.internal"
    JAVA_OPTS = "-Xms2g -Xmx4g"
  }

  vm_hosts {
    user            = local.ssh_user
    identity_file   = local.ssh_key
    bastion         = "jump.internal"
    connect_timeout = "30s"
    hosts = [
      "prod-vm-01.internal",
      "prod-vm-02.internal",
      "prod-vm-03.internal",
      "prod-vm-04.internal",
      "prod-vm-05.internal",
      "prod-vm-06.internal",
      "prod-vm-07.internal",
      "prod-vm-08.internal",
      "prod-vm-09.internal",
      "prod-vm-10.internal",
    ]

    load_balancer {
      target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/myapp-prod/7b6a5f4e3d2c1b0a"
      region           = "us-east-1"
    }
  }
}

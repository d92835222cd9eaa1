version = local.release

locals {
  release = "1.0.0"
}

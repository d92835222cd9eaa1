locals {
  x = "caf√
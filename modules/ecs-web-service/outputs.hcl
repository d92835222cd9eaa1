output "image" {
  description = "The full image reference deployed."
  value       = "${var.image}:${var.version}"
}

output "desired_count" {
  description = "Tasks to run; e.g. an ecs_cluster's desired_count."
  value       = var.desired_count
}

output "health_check_path" {
  value = var.health_check_path
}

# dev first, backend before frontend; prod only with versions verified in dev.

deployment "backend-dev" {
  service     = module.backend.service.web
  environment = environment.dev-backend
  rollout     = rollout.dev-rolling
}

deployment "frontend-dev" {
  service     = module.frontend.service.web
  environment = environment.dev-frontend
  rollout     = rollout.dev-rolling
  depends_on  = [deployment.backend-dev]
}

deployment "backend-prod" {
  service      = module.backend.service.web
  environment  = environment.prod-backend
  rollout      = rollout.prod-canary
  promote_from = deployment.backend-dev
}

deployment "frontend-prod" {
  service      = module.frontend.service.web
  environment  = environment.prod-frontend
  rollout      = rollout.prod-canary
  depends_on   = [deployment.backend-prod]
  promote_from = deployment.frontend-dev
}

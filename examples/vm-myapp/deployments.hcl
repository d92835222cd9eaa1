# One service in one environment with one rollout each, chained:
# a version reaches qa only after dev, staging after qa, production after staging
# (promote_from: only a version already verified there may go here).

deployment "myapp-dev" {
  service     = service.myapp
  environment = environment.dev
  rollout     = rollout.rolling
}

deployment "myapp-qa" {
  service      = service.myapp
  environment  = environment.qa
  rollout      = rollout.rolling
  depends_on   = [deployment.myapp-dev]
  promote_from = deployment.myapp-dev
}

deployment "myapp-staging" {
  service      = service.myapp
  environment  = environment.staging
  rollout      = rollout.canary-with-verification
  depends_on   = [deployment.myapp-qa]
  promote_from = deployment.myapp-qa
}

deployment "myapp-production" {
  service      = service.myapp
  environment  = environment.production
  rollout      = rollout.canary-with-verification
  depends_on   = [deployment.myapp-staging]
  promote_from = deployment.myapp-staging
}

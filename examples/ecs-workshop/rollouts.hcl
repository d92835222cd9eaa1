# dev: ECS's own rolling update; a failed deployment is rolled back.
rollout "dev-rolling" {
  strategy   = "rolling"
  on_failure = "rollback"
}

# prod: shift 10% → 25% → 50% → 100% of the ALB traffic to the new tasks,
# 5 minutes of bake per step, each step gated on the public endpoints and on
# the error-rate alarm; any failure sends all traffic back to the old tasks.
rollout "prod-canary" {
  strategy   = "canary"
  steps      = ["10%", "25%", "50%", "100%"]
  bake       = "5m"
  on_failure = "rollback"

  verify "api-health" {
    http {
      url           = "https://workshop.example.com/api/health"
      expect_status = 200
      json_path     = "$.status"
      expect_value  = "healthy"
      timeout       = "5s"
      retries       = 2
    }
  }

  verify "site" {
    http {
      url           = "https://workshop.example.com/"
      expect_status = 200
    }
  }

  verify "error-rate-alarm" {
    cloudwatch {
      region     = "us-east-1"
      alarm_name = "workshop-prod-high-error-rate" # ALB 5xx > 5%
    }
    no_data = "pass"
  }
}

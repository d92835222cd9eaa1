# How a new version rolls out.

# dev and qa: one host first, then half of the hosts at a time.
rollout "rolling" {
  strategy     = "rolling"
  batches      = [1, "50%"]
  max_failures = 0
  on_failure   = "rollback"
}

# staging and production: a growing share of hosts, each step judged against
# the hosts still on the previous version before the next one starts.
rollout "canary-with-verification" {
  strategy   = "canary"
  steps      = ["10%", "25%", "50%", "100%"]
  bake       = "5m"
  on_failure = "rollback"

  verify "error-rate" {
    prometheus {
      address = "http://prometheus.internal:9090"
      # {{version}} and {{environment}} are filled in by slipway: the version
      # under test, or the previous one when measuring the baseline.
      query = "sum(rate(http_request_errors_total{app=\"myapp\",env=\"{{environment}}\",version=\"{{version}}\"}[5m])) / sum(rate(http_requests_total{app=\"myapp\",env=\"{{environment}}\",version=\"{{version}}\"}[5m]))"
    }
    max           = 0.01               # never more than 1% errors
    baseline      = "previous_version" # and never more than 1.2 × the old version's rate
    tolerance     = 1.2
    direction     = "higher_is_worse"
    interval      = "1m"
    count         = 5
    failure_limit = 1
    no_data       = "fail"
  }

  verify "p95-latency" {
    prometheus {
      address = "http://prometheus.internal:9090"
      query   = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{app=\"myapp\",env=\"{{environment}}\",version=\"{{version}}\"}[5m])))"
    }
    baseline  = "previous_version"
    tolerance = 1.5
    interval  = "1m"
    count     = 5
  }

  # After the first step (10% of hosts) has baked and passed, a person decides.
  approval "release-manager" {
    after_step = 1
    approvers  = ["release-managers"]
  }

  notify "chatops" {
    webhook = "https://hooks.slack.example.com/services/T000/B000/XXXX"
    format  = "slack"
    on      = ["approval_required", "failed", "rolled_back", "succeeded"]
  }
}

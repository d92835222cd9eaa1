//! A real moto server on loopback, for tests that need AWS (ECS, ELBv2, S3, EC2,
//! Secrets Manager, SSM Parameter Store).
//!
//! [`Moto::start`] starts `launcher.py` beside this file: moto's own server with
//! its ECS model patched so that services deploy like real ECS (deployments turn
//! PRIMARY, tasks reach RUNNING after `SLIPWAY_TEST_ECS_TASK_DELAY` seconds,
//! default 0.5, old deployments drain, rollouts complete, failing tasks trip the
//! circuit breaker; `launcher.py` says exactly what it changes). Each call gets
//! its own server on a free `127.0.0.1` port, so tests running in parallel never
//! share state; dropping the [`Moto`] kills it. Everything lives in one
//! temporary directory: the server's log (`moto.log`, see [`Moto::log`]) and the
//! empty AWS config and credentials files that [`Moto::env`] points at.
//!
//! Python comes from `SLIPWAY_TEST_PYTHON`, else `python3`, else `python`; it
//! must import moto 5.2 (`pip install 'moto[server]==5.2.6'`). Without it, `start`
//! fails the test naming what to install; it returns `None` (the test skips)
//! only under `SLIPWAY_TEST_ALLOW_SKIP` (see [`crate::support::missing_component`]).
//!
//! SDK clients: [`Moto::sdk_config`] (static test credentials, `us-east-1`, the
//! endpoint set, no profile files). S3 works path-style against an IP endpoint
//! without further settings. Child processes (the `slipway` binary) get
//! [`Moto::env`] or [`Moto::apply_env`], which also sets `AWS_ENDPOINT_URL`.
#![allow(dead_code)]

// Both this harness and another may include it in one test crate.
use crate::support::http1;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetGroupTuple, TargetTypeEnum,
};

/// The moto release `launcher.py` was written against (CI installs exactly this).
pub const MOTO_VERSION: &str = "5.2.6";
/// The region everything is created in.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT_ID: &str = "123456789012";

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/moto/launcher.py");

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub port: u16,
    python: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

/// An internet-facing ALB in its own VPC, with an HTTP listener forwarding to
/// two `ip` target groups (blue weight 100, green weight 0), as a canary or
/// blue/green ECS rollout starts from.
#[derive(Debug, Clone)]
pub struct AlbFixture {
    pub load_balancer_arn: String,
    pub listener_arn: String,
    pub blue_target_group_arn: String,
    pub green_target_group_arn: String,
    pub vpc_id: String,
    /// Two subnets, in `us-east-1a` and `us-east-1b`.
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// A VPC with two subnets and a security group (see [`Moto::create_network`]).
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_group: String,
}

impl Moto {
    /// Start a server and wait until it answers.
    pub fn start() -> Option<Moto> {
        let python = match find_python() {
            Ok(python) => python,
            Err(why) => {
                crate::support::missing_component(
                    &why,
                    &format!("pip install 'moto[server]=={MOTO_VERSION}'"),
                );
                return None;
            }
        };
        let mut dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("temporary directory");
        for file in ["aws-config", "aws-credentials"] {
            std::fs::write(dir.path().join(file), "").expect("empty AWS profile file");
        }
        let log_path = dir.path().join("moto.log");
        // A port another process takes between our check and moto's bind makes
        // the server exit: try another one.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("moto.log");
            let child = Command::new(&python)
                .arg(LAUNCHER)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("moto.log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
            let mut moto = Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                python: python.clone(),
                child,
                dir,
            };
            if moto.wait_ready() {
                return Some(moto);
            }
            // Dropping kills the process; keep the directory (and the log).
            dir = std::mem::replace(
                &mut moto.dir,
                tempfile::tempdir().expect("temporary directory"),
            );
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!(
            "the moto server did not start ({} {LAUNCHER}); its log:\n{}",
            python.display(),
            tail(&log, 60)
        );
    }

    /// Wipe every resource (`POST /moto-api/reset`); also clears
    /// [`Moto::fail_new_tasks`].
    pub fn reset(&self) {
        self.post("/moto-api/reset", "");
    }

    /// Make every ECS task launched from now on fail when its task definition's
    /// first container image contains `image_substring` (`""` fails them all).
    /// Independently, an image whose tag contains `fail` always fails.
    pub fn fail_new_tasks(&self, image_substring: &str) {
        let body = serde_json::json!({ "image_substring": image_substring }).to_string();
        self.post("/slipway-test/fail-new-tasks", &body);
    }

    /// Undo [`Moto::fail_new_tasks`]: tasks launched from now on start again.
    /// Make every UpdateService of `service` fail (a ClientException), as a
    /// missing permission or throttling would; `None` clears it.
    pub fn refuse_updates(&self, service: Option<&str>) {
        let body = serde_json::json!({ "service": service }).to_string();
        self.post("/slipway-test/refuse-updates", &body);
    }

    /// Make every PutObject of a key under `key_prefix` fail with 403
    /// AccessDenied, as a role that lost `s3:PutObject` would; `None` clears
    /// it. Deletes still work.
    pub fn refuse_s3_writes(&self, key_prefix: Option<&str>) {
        let body = serde_json::json!({ "key_prefix": key_prefix }).to_string();
        self.post("/slipway-test/refuse-s3-writes", &body);
    }

    pub fn clear_failing_tasks(&self) {
        self.post(
            "/slipway-test/fail-new-tasks",
            r#"{"image_substring": null}"#,
        );
    }

    /// The environment for a child process that talks to this server: test
    /// credentials, the region, the endpoint, and no profile or credentials
    /// files from the user's home.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        [
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", path("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", path("aws-credentials")),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Set [`Moto::env`] on `command`, and remove the variables that would
    /// otherwise pick other credentials (profile, session token, roles).
    pub fn apply_env<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        for name in [
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            command.env_remove(name);
        }
        command.envs(self.env())
    }

    /// An SDK configuration for this server: endpoint, region, static test
    /// credentials, no profile files.
    // `ProfileFiles` is deprecated in favour of aws-runtime's `EnvConfigFiles`,
    // a crate this project does not depend on directly; it is the same type.
    #[allow(deprecated)]
    pub async fn sdk_config(&self) -> SdkConfig {
        let files = ProfileFiles::builder()
            .with_file(ProfileFileKind::Config, self.dir.path().join("aws-config"))
            .with_file(
                ProfileFileKind::Credentials,
                self.dir.path().join("aws-credentials"),
            )
            .build();
        aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .profile_name("default")
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    pub async fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk_config().await)
    }

    pub async fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk_config().await)
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::new(&self.sdk_config().await)
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    pub async fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk_config().await)
    }

    /// A VPC (`10.N.0.0/16`) with a subnet in `us-east-1a` and one in
    /// `us-east-1b`, and a security group, made with EC2 Query API calls (the
    /// project has no EC2 SDK crate). These addresses exist only inside moto.
    pub fn create_network(&self) -> Network {
        let n = self.ec2_count_vpcs() % 250 + 1;
        let vpc = self.ec2(&[
            ("Action", "CreateVpc"),
            ("CidrBlock", &format!("10.{n}.0.0/16")),
        ]);
        let vpc_id = xml_value(&vpc, "vpcId");
        let subnets = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, zone)| {
                let subnet = self.ec2(&[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc_id),
                    ("CidrBlock", &format!("10.{n}.{i}.0/24")),
                    ("AvailabilityZone", &format!("{REGION}{zone}")),
                ]);
                xml_value(&subnet, "subnetId")
            })
            .collect();
        let group = self.ec2(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", &format!("slipway-test-{n}")),
            ("GroupDescription", "slipway tests"),
            ("VpcId", &vpc_id),
        ]);
        Network {
            vpc_id,
            subnets,
            security_group: xml_value(&group, "groupId"),
        }
    }

    /// An ALB named `name` (at most 26 characters: target groups are
    /// `NAME-blue` / `NAME-green`) in a new VPC, listening with HTTP on `port`,
    /// forwarding everything to blue (weight 100) and nothing to green (0).
    pub async fn create_alb_with_two_target_groups(&self, name: &str, port: u16) -> AlbFixture {
        assert!(
            name.len() <= 26,
            "ALB fixture name {name:?} too long: target group names are limited to 32 characters"
        );
        let network = self.create_network();
        let elb = self.elbv2().await;
        let lb = elb
            .create_load_balancer()
            .name(name)
            .set_subnets(Some(network.subnets.clone()))
            .security_groups(&network.security_group)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateLoadBalancer {name}: {e:?}"));
        let load_balancer_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .expect("load balancer ARN")
            .to_string();
        let mut groups = Vec::new();
        for colour in ["blue", "green"] {
            let group = elb
                .create_target_group()
                .name(format!("{name}-{colour}"))
                .protocol(ProtocolEnum::Http)
                .port(i32::from(port))
                .vpc_id(&network.vpc_id)
                .target_type(TargetTypeEnum::Ip)
                .health_check_path("/health")
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreateTargetGroup {name}-{colour}: {e:?}"));
            groups.push(
                group.target_groups()[0]
                    .target_group_arn()
                    .expect("target group ARN")
                    .to_string(),
            );
        }
        let listener = elb
            .create_listener()
            .load_balancer_arn(&load_balancer_arn)
            .protocol(ProtocolEnum::Http)
            .port(i32::from(port))
            .default_actions(forward(&[(&groups[0], 100), (&groups[1], 0)]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateListener on {name}: {e:?}"));
        let listener_arn = listener.listeners()[0]
            .listener_arn()
            .expect("listener ARN")
            .to_string();
        let green_target_group_arn = groups.pop().unwrap();
        let blue_target_group_arn = groups.pop().unwrap();
        AlbFixture {
            load_balancer_arn,
            listener_arn,
            blue_target_group_arn,
            green_target_group_arn,
            vpc_id: network.vpc_id,
            subnets: network.subnets,
            security_group: network.security_group,
        }
    }

    /// Set the listener's default action to forward with these weights
    /// (target group ARN, weight), as a rollout's traffic step would.
    pub async fn set_listener_weights(&self, listener_arn: &str, weights: &[(&str, i32)]) {
        self.elbv2()
            .await
            .modify_listener()
            .listener_arn(listener_arn)
            .default_actions(forward(weights))
            .send()
            .await
            .unwrap_or_else(|e| panic!("ModifyListener {listener_arn}: {e:?}"));
    }

    /// `(status, image, running count)` of each deployment of service `name`
    /// in `cluster`, as ECS lists them; `None` when the service is not active.
    pub async fn service_deployments(
        &self,
        cluster: &str,
        name: &str,
    ) -> Option<Vec<(String, String, i32)>> {
        let ecs = self.ecs().await;
        let described = ecs
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
            .expect("describe services");
        let service = described.services().first()?.clone();
        if service.status() != Some("ACTIVE") {
            return None;
        }
        let mut deployments = Vec::new();
        for deployment in service.deployments() {
            let described = ecs
                .describe_task_definition()
                .task_definition(deployment.task_definition().unwrap_or_default())
                .send()
                .await
                .expect("describe task definition");
            let image = described.task_definition().unwrap().container_definitions()[0]
                .image()
                .unwrap_or_default()
                .to_string();
            deployments.push((
                deployment.status().unwrap_or_default().to_string(),
                image,
                deployment.running_count(),
            ));
        }
        Some(deployments)
    }

    /// The weights of the listener's default forward action, by target group
    /// ARN. A plain forward to one target group (no forward config) reads as
    /// weight 1 for it, as ELB treats it.
    pub async fn listener_weights(&self, listener_arn: &str) -> BTreeMap<String, i32> {
        let out = self
            .elbv2()
            .await
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeListeners {listener_arn}: {e:?}"));
        let listener = out.listeners().first().expect("the listener");
        let action = listener
            .default_actions()
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .expect("a forward action");
        match action.forward_config() {
            Some(config) => config
                .target_groups()
                .iter()
                .map(|g| {
                    (
                        g.target_group_arn().unwrap_or_default().to_string(),
                        g.weight().unwrap_or(1),
                    )
                })
                .collect(),
            None => action
                .target_group_arn()
                .map(|arn| (arn.to_string(), 1))
                .into_iter()
                .collect(),
        }
    }

    /// A service made outside slipway, as a team had it before adopting
    /// slipway: a Fargate task definition of its own (`family`, one
    /// container `app` running `image`, port 5000), `count` tasks in `alb`'s
    /// subnets, registered with `target_group` when given. Returns once ECS
    /// runs all its tasks; the value is the task definition's ARN.
    pub async fn create_service_by_hand(
        &self,
        cluster: &str,
        alb: &AlbFixture,
        (family, image): (&str, &str),
        service: &str,
        count: i32,
        target_group: Option<&str>,
    ) -> String {
        use aws_sdk_ecs::types::{
            AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, LoadBalancer,
            NetworkConfiguration, NetworkMode, PortMapping,
        };
        let ecs = self.ecs().await;
        let registered = ecs
            .register_task_definition()
            .family(family)
            .cpu("256")
            .memory("512")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .essential(true)
                    .port_mappings(PortMapping::builder().container_port(5000).build())
                    .build(),
            )
            .send()
            .await
            .expect("register the task definition");
        let arn = registered
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_string();
        let mut request = ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(&arn)
            .desired_count(count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .set_subnets(Some(alb.subnets.clone()))
                            .security_groups(&alb.security_group)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        if let Some(group) = target_group {
            request = request.load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(group)
                    .container_name("app")
                    .container_port(5000)
                    .build(),
            );
        }
        request.send().await.expect("create the service");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let deployments = self
                .service_deployments(cluster, service)
                .await
                .unwrap_or_default();
            if deployments.len() == 1 && deployments[0].2 == count {
                return arn;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{service} never ran {count} tasks: {deployments:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Set a service's desired count behind slipway's back, as autoscaling
    /// or an operator would.
    pub async fn set_desired_count(&self, cluster: &str, service: &str, count: i32) {
        self.ecs()
            .await
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(count)
            .send()
            .await
            .unwrap_or_else(|e| panic!("UpdateService {service}: {e:?}"));
    }

    /// A CloudWatch alarm `name` on the metric `namespace`/`Errors` (sum
    /// over a minute, above 5), made or replaced, then set to `state` as if
    /// CloudWatch had judged it so.
    pub async fn alarm_in_state(
        &self,
        name: &str,
        namespace: &str,
        state: aws_sdk_cloudwatch::types::StateValue,
    ) {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.sdk_config().await);
        cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace(namespace)
            .metric_name("Errors")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutMetricAlarm {name}: {e:?}"));
        cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("set by the test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("SetAlarmState {name}: {e:?}"));
    }

    pub async fn autoscaling(&self) -> aws_sdk_applicationautoscaling::Client {
        aws_sdk_applicationautoscaling::Client::new(&self.sdk_config().await)
    }

    /// Put an ECS service under Application Auto Scaling, as a team would
    /// outside slipway: a scalable target on its desired count (`min`,
    /// `max`, nothing suspended), a target-tracking policy on CPU named
    /// `cpu-60` and a scheduled action named `nightly`.
    pub async fn put_service_under_autoscaling(
        &self,
        cluster: &str,
        service: &str,
        min: i32,
        max: i32,
    ) {
        use aws_sdk_applicationautoscaling::types::{
            MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension,
            ScalableTargetAction, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
        };
        let client = self.autoscaling().await;
        let resource = format!("service/{cluster}/{service}");
        client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource)
            .min_capacity(min)
            .max_capacity(max)
            .send()
            .await
            .unwrap_or_else(|e| panic!("RegisterScalableTarget {resource}: {e:?}"));
        client
            .put_scaling_policy()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource)
            .policy_name("cpu-60")
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(
                TargetTrackingScalingPolicyConfiguration::builder()
                    .target_value(60.0)
                    .predefined_metric_specification(
                        PredefinedMetricSpecification::builder()
                            .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutScalingPolicy {resource}: {e:?}"));
        client
            .put_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource)
            .scheduled_action_name("nightly")
            .schedule("cron(0 2 * * ? *)")
            .scalable_target_action(
                ScalableTargetAction::builder()
                    .min_capacity(min)
                    .max_capacity(max)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutScheduledAction {resource}: {e:?}"));
    }

    /// The scalable target on `service`'s desired count as Application
    /// Auto Scaling has it: its bounds, whether dynamic scaling in, out and
    /// scheduled scaling are suspended, and the names of its scaling
    /// policies and scheduled actions. `None` when none is registered.
    pub async fn scalable_target(&self, cluster: &str, service: &str) -> Option<ScalableTarget> {
        use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
        let client = self.autoscaling().await;
        let resource = format!("service/{cluster}/{service}");
        let targets = client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeScalableTargets {resource}: {e:?}"));
        let target = targets.scalable_targets().iter().find(|t| {
            t.resource_id() == resource
                && t.scalable_dimension() == &ScalableDimension::EcsServiceDesiredCount
        })?;
        let suspended = target.suspended_state();
        let policies = client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeScalingPolicies {resource}: {e:?}"));
        let actions = client
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeScheduledActions {resource}: {e:?}"));
        Some(ScalableTarget {
            min: target.min_capacity(),
            max: target.max_capacity(),
            suspended: [
                suspended
                    .and_then(|s| s.dynamic_scaling_in_suspended())
                    .unwrap_or(false),
                suspended
                    .and_then(|s| s.dynamic_scaling_out_suspended())
                    .unwrap_or(false),
                suspended
                    .and_then(|s| s.scheduled_scaling_suspended())
                    .unwrap_or(false),
            ],
            policies: policies
                .scaling_policies()
                .iter()
                .map(|p| p.policy_name().to_string())
                .collect(),
            scheduled_actions: actions
                .scheduled_actions()
                .iter()
                .map(|a| a.scheduled_action_name().to_string())
                .collect(),
        })
    }

    /// The server's log so far (every request, and tracebacks of moto errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// The Python that runs the server (moto and boto3 import there).
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The temporary directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn post(&self, path: &str, body: &str) -> String {
        let url = format!("{}{path}", self.endpoint);
        match http1::post(
            &url,
            &[("Content-Type", "application/json")],
            body,
            Duration::from_secs(30),
        ) {
            Ok(answer) if answer.status < 400 => answer.body,
            Ok(answer) => panic!("POST {url}: HTTP {}: {}", answer.status, answer.body),
            Err(e) => panic!("POST {url}: {e}"),
        }
    }

    /// One EC2 Query API call; panics with moto's answer on an error.
    fn ec2(&self, params: &[(&str, &str)]) -> String {
        let mut form = vec![("Version", "2016-11-15")];
        form.extend_from_slice(params);
        // moto routes an unsigned-looking request by the credential scope.
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20240101/{REGION}/ec2/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        match http1::post_form(
            &format!("{}/", self.endpoint),
            &[("Authorization", &auth)],
            &form,
            Duration::from_secs(30),
        ) {
            Ok(answer) if answer.status < 400 => answer.body,
            Ok(answer) => panic!("EC2 {params:?}: HTTP {}: {}", answer.status, answer.body),
            Err(e) => panic!("EC2 {params:?}: {e}"),
        }
    }

    /// An IAM user whose only policy allows `actions` on every resource,
    /// and its access key pair (id, secret). From then on the server checks
    /// every request (moto's `reset-auth`): only the users it knows, with
    /// their policies, get answers; the harness's test credentials do not.
    pub fn enforce_iam_with_user(&self, name: &str, actions: &[&str]) -> (String, String) {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }],
        })
        .to_string();
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "only-these"),
            ("PolicyDocument", &policy),
        ]);
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        let field = |tag: &str| {
            let open = format!("<{tag}>");
            let start = key.find(&open).expect("an access key") + open.len();
            let end = start + key[start..].find('<').expect("a closing tag");
            key[start..end].to_string()
        };
        let pair = (field("AccessKeyId"), field("SecretAccessKey"));
        let answer = http1::post(
            &format!("{}/moto-api/reset-auth", self.endpoint),
            &[],
            "0",
            Duration::from_secs(10),
        )
        .expect("reset-auth");
        assert_eq!(answer.status, 200, "reset-auth: {}", answer.body);
        pair
    }

    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form = vec![("Version", "2010-05-08")];
        form.extend_from_slice(params);
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/iam/aws4_request, \
                    SignedHeaders=host, Signature=0";
        match http1::post_form(
            &format!("{}/", self.endpoint),
            &[("Authorization", auth)],
            &form,
            Duration::from_secs(30),
        ) {
            Ok(answer) if answer.status < 400 => answer.body,
            Ok(answer) => panic!("IAM {params:?}: HTTP {}: {}", answer.status, answer.body),
            Err(e) => panic!("IAM {params:?}: {e}"),
        }
    }

    fn ec2_count_vpcs(&self) -> usize {
        self.ec2(&[("Action", "DescribeVpcs")])
            .matches("<vpcId>")
            .count()
    }

    /// Poll (bounded) until the launcher answers its ping; false when the
    /// process exited first.
    fn wait_ready(&mut self) -> bool {
        let url = format!("{}/slipway-test/ping", self.endpoint);
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut pause = Duration::from_millis(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http1::get(&url, &[], Duration::from_secs(2))
                .is_ok_and(|a| a.body.contains("slipway"))
            {
                return true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        false
    }
}

/// A scalable target as Application Auto Scaling has it (see
/// [`Moto::scalable_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTarget {
    pub min: i32,
    pub max: i32,
    /// Dynamic scaling in, dynamic scaling out, scheduled scaling.
    pub suspended: [bool; 3],
    pub policies: Vec<String>,
    pub scheduled_actions: Vec<String>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forward action splitting traffic between target groups by weight.
fn forward(weights: &[(&str, i32)]) -> Action {
    let mut config = ForwardActionConfig::builder();
    for (arn, weight) in weights {
        config = config.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(*arn)
                .weight(*weight)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

/// The first `<name>value</name>` of an XML answer.
fn xml_value(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in EC2's answer:\n{xml}"))
        + open.len();
    let end = xml[start..].find('<').expect("closing tag") + start;
    xml[start..end].to_string()
}

/// A Python that imports moto 5.2 and its server, or why there is none
/// (looked for once per test binary).
fn find_python() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(look_for_python).clone()
}

fn look_for_python() -> Result<PathBuf, String> {
    let candidates: Vec<String> = match std::env::var("SLIPWAY_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => vec![python],
        _ => vec!["python3".into(), "python".into()],
    };
    let wanted = MOTO_VERSION.rsplit_once('.').unwrap().0;
    let mut why = Vec::new();
    for python in &candidates {
        let out = Command::new(python)
            .args([
                "-c",
                "import moto, moto.server, werkzeug, flask; print(moto.__version__)",
            ])
            .stdin(Stdio::null())
            .output();
        match out {
            Err(e) => why.push(format!("{python}: {e}")),
            Ok(out) if !out.status.success() => why.push(format!(
                "{python} cannot import moto's server ({})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Ok(out) => {
                let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if version.starts_with(&format!("{wanted}.")) {
                    return Ok(PathBuf::from(python));
                }
                why.push(format!(
                    "{python} has moto {version}, launcher.py needs {wanted}.x"
                ));
            }
        }
    }
    Err(format!("no usable moto: {}", why.join("; ")))
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

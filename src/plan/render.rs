//! Texts derived from a deployment's configuration that plan diffs and apply
//! installs: the systemd unit and the ECS task definition.
//!
//! Pure functions of the configuration. Sensitive values are not masked here;
//! callers mask before showing or storing (`Config::mask`).

use crate::config::{EcsSpec, SystemdUnit, VmSpec};

/// The systemd unit file slipway installs for a VM service.
pub fn systemd_unit_text(vm: &VmSpec, unit: &SystemdUnit, service_name: &str) -> String {
    let mut text = String::new();
    text.push_str("[Unit]\n");
    text.push_str(&format!(
        "Description={service_name} (managed by slipway)\n"
    ));
    if !unit.after.is_empty() {
        text.push_str(&format!("After={}\n", unit.after.join(" ")));
    }
    text.push_str("\n[Service]\n");
    if let Some(user) = unit.user.as_ref().or(vm.run_as.as_ref()) {
        text.push_str(&format!("User={user}\n"));
    }
    text.push_str(&format!(
        "WorkingDirectory={}/current\n",
        vm.install_dir.trim_end_matches('/')
    ));
    for (name, value) in &unit.environment {
        text.push_str(&format!(
            "Environment=\"{name}={}\"\n",
            value.replace('"', "\\\"")
        ));
    }
    text.push_str(&format!("ExecStart={}\n", unit.exec_start));
    if let Some(stop) = &unit.exec_stop {
        text.push_str(&format!("ExecStop={stop}\n"));
    }
    text.push_str(&format!(
        "Restart={}\n",
        unit.restart.as_deref().unwrap_or("on-failure")
    ));
    text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    text
}

/// The task definition slipway registers, as the JSON shape of ECS's
/// RegisterTaskDefinition request. Secrets appear only as their ARNs.
pub fn task_definition(ecs: &EcsSpec) -> serde_json::Value {
    let containers: Vec<serde_json::Value> = ecs
        .containers
        .iter()
        .map(|c| {
            let mut container = serde_json::json!({
                "name": c.name,
                "image": c.image,
                "essential": c.essential.unwrap_or(true),
            });
            let object = container.as_object_mut().expect("json object literal");
            if let Some(port) = c.port {
                object.insert(
                    "portMappings".into(),
                    serde_json::json!([{ "containerPort": port, "protocol": "tcp" }]),
                );
            }
            if let Some(cpu) = c.cpu {
                object.insert("cpu".into(), cpu.into());
            }
            if let Some(memory) = c.memory {
                object.insert("memory".into(), memory.into());
            }
            if !c.command.is_empty() {
                object.insert("command".into(), serde_json::json!(c.command));
            }
            let mut env_vars: Vec<(String, String)> = c
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            env_vars.sort();
            if !env_vars.is_empty() {
                object.insert(
                    "environment".into(),
                    env_vars
                        .iter()
                        .map(|(k, v)| serde_json::json!({ "name": k, "value": v }))
                        .collect(),
                );
            }
            if !c.secrets.is_empty() {
                object.insert(
                    "secrets".into(),
                    c.secrets
                        .iter()
                        .map(|(k, v)| serde_json::json!({ "name": k, "valueFrom": v }))
                        .collect(),
                );
            }
            if let Some(log) = &c.log {
                object.insert(
                    "logConfiguration".into(),
                    serde_json::json!({ "logDriver": log.driver, "options": log.options }),
                );
            }
            if let Some(health) = &c.health_check {
                object.insert(
                    "healthCheck".into(),
                    serde_json::json!({
                        "command": health.command,
                        "interval": health.interval.as_ref().map(|i| i.get().as_secs()),
                        "timeout": health.timeout.as_ref().map(|t| t.get().as_secs()),
                        "retries": health.retries,
                    }),
                );
            }
            container
        })
        .collect();
    let mut definition = serde_json::json!({
        "family": ecs.family,
        "cpu": ecs.cpu.to_string(),
        "memory": ecs.memory.to_string(),
        "networkMode": ecs.network_mode,
        "requiresCompatibilities": [ecs.launch_type],
        "containerDefinitions": containers,
    });
    let object = definition.as_object_mut().expect("json object literal");
    if let Some(arn) = &ecs.execution_role_arn {
        object.insert("executionRoleArn".into(), arn.clone().into());
    }
    if let Some(arn) = &ecs.task_role_arn {
        object.insert("taskRoleArn".into(), arn.clone().into());
    }
    definition
}

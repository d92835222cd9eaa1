//! Texts derived from a deployment's configuration that plan diffs and apply
//! installs: the systemd unit and the ECS task definition.
//!
//! Pure functions of the configuration. Sensitive values are not masked here;
//! callers mask before showing or storing (`Config::mask`).

use crate::config::{EcsSpec, SystemdUnit, VmSpec};
use crate::encode::systemd;

/// The systemd unit file slipway installs for a VM service. Every value goes
/// through the unit encoder (`encode::systemd`): `%` is escaped, environment
/// values are quoted with C-style escapes, and no value can start a line of
/// its own. Validation has refused what a unit cannot hold.
pub fn systemd_unit_text(vm: &VmSpec, unit: &SystemdUnit, service_name: &str) -> String {
    let mut text = String::new();
    text.push_str("[Unit]\n");
    text.push_str(&format!(
        "Description={} (managed by slipway)\n",
        systemd::line(service_name)
    ));
    if !unit.after.is_empty() {
        let after: Vec<String> = unit.after.iter().map(|u| systemd::line(u)).collect();
        text.push_str(&format!("After={}\n", after.join(" ")));
    }
    text.push_str("\n[Service]\n");
    if let Some(user) = unit.user.as_ref().or(vm.run_as.as_ref()) {
        text.push_str(&format!("User={}\n", systemd::line(user)));
    }
    text.push_str(&format!(
        "WorkingDirectory={}\n",
        systemd::line(&format!("{}/current", vm.install_dir.trim_end_matches('/')))
    ));
    for (name, value) in &unit.environment {
        text.push_str(&format!(
            "Environment={}\n",
            systemd::environment(name, value)
        ));
    }
    text.push_str(&format!("ExecStart={}\n", systemd::line(&unit.exec_start)));
    if let Some(stop) = &unit.exec_stop {
        text.push_str(&format!("ExecStop={}\n", systemd::line(stop)));
    }
    text.push_str(&format!(
        "Restart={}\n",
        systemd::line(unit.restart.as_deref().unwrap_or("on-failure"))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::encode::systemd::reader;

    fn vm(install_dir: String, run_as: Option<String>, unit: SystemdUnit) -> VmSpec {
        VmSpec {
            install_dir,
            run_as,
            keep_releases: 3,
            config_dirs: vec![],
            start_command: None,
            stop_command: None,
            systemd_unit: Some(unit),
            config_files: vec![],
            prechecks: vec![],
            health: vec![],
            smoke: vec![],
            hooks: vec![],
        }
    }

    /// Strings made to hurt a unit file: line breaks, quotes, backslashes,
    /// specifiers, section headers, NUL, escapes, and any other character.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\\".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("%".to_string()),
            Just("%n".to_string()),
            Just("$".to_string()),
            Just("${X}".to_string()),
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("=".to_string()),
            Just("\0".to_string()),
            Just("\u{1b}[2J".to_string()),
            Just("\n[Service]\nExecStartPre=/bin/touch /tmp/x\n".to_string()),
            Just("#".to_string()),
            Just(".service".to_string()),
            "[a-zA-Z0-9_.-]{1,8}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|parts| parts.concat())
    }

    fn unit_strategy() -> impl Strategy<Value = (VmSpec, SystemdUnit)> {
        (
            (
                prop_oneof![hostile(), Just("myapp.service".to_string())],
                prop_oneof![hostile(), Just("/opt/app/bin/run --x".to_string())],
                proptest::option::of(hostile()),
                proptest::option::of(prop_oneof![hostile(), Just("deploy".to_string())]),
            ),
            (
                proptest::collection::btree_map(
                    prop_oneof![hostile(), "[A-Z_]{1,6}"],
                    hostile(),
                    0..3,
                ),
                proptest::option::of(prop_oneof![hostile(), Just("always".to_string())]),
                proptest::collection::vec(
                    prop_oneof![hostile(), Just("network-online.target".to_string())],
                    0..3,
                ),
                prop_oneof![hostile(), Just("/opt/my app".to_string())],
                proptest::option::of(hostile()),
            ),
        )
            .prop_map(
                |(
                    (name, exec_start, exec_stop, user),
                    (environment, restart, after, dir, run_as),
                )| {
                    let unit = SystemdUnit {
                        name,
                        exec_start,
                        exec_stop,
                        user,
                        environment,
                        restart,
                        after,
                    };
                    (vm(dir, run_as, unit.clone()), unit)
                },
            )
    }

    /// What validation would refuse of these values (the same checks `load`
    /// runs, each reported there at its attribute).
    fn refused(vm: &VmSpec, unit: &SystemdUnit) -> bool {
        !crate::encode::systemd::unit_problems(unit).is_empty()
            || crate::config::confine::service_dir(&vm.install_dir).is_err()
            || vm
                .run_as
                .as_deref()
                .is_some_and(|u| crate::encode::ssh::check_user(u).is_err())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every value either is refused by validation, or the unit systemd
        /// would read holds it byte-exact in its own setting and nothing else.
        #[test]
        fn unit_values_are_refused_or_arrive_exactly((vm, unit) in unit_strategy()) {
            let text = systemd_unit_text(&vm, &unit, &unit.name);
            // Whatever the values, the structure never changes.
            let settings = reader::settings(&text).expect("a well-formed unit");
            let sections: Vec<&str> = settings.iter().map(|(s, _, _)| s.as_str()).collect();
            let mut keys: Vec<(&str, &str)> =
                settings.iter().map(|(s, k, _)| (s.as_str(), k.as_str())).collect();
            let mut expected = vec![("Unit", "Description"), ("Service", "WorkingDirectory"), ("Service", "ExecStart"), ("Service", "Restart"), ("Install", "WantedBy")];
            if !unit.after.is_empty() { expected.push(("Unit", "After")); }
            if unit.user.is_some() || vm.run_as.is_some() { expected.push(("Service", "User")); }
            if unit.exec_stop.is_some() { expected.push(("Service", "ExecStop")); }
            expected.extend(unit.environment.keys().map(|_| ("Service", "Environment")));
            keys.sort();
            expected.sort();
            prop_assert_eq!(keys, expected, "{}", text);
            let order = |s: &str| ["Unit", "Service", "Install"].iter().position(|x| *x == s);
            prop_assert!(sections.iter().all(|s| order(s).is_some()), "{}", text);
            prop_assert!(sections.windows(2).all(|w| order(w[0]) <= order(w[1])), "{}", text);

            if refused(&vm, &unit) {
                return Ok(());
            }
            let get = |key: &str| -> Vec<String> {
                settings
                    .iter()
                    .filter(|(_, k, _)| k == key)
                    .map(|(_, _, v)| reader::unspecify(v).expect("no specifier but %%"))
                    .collect()
            };
            prop_assert_eq!(get("ExecStart"), vec![unit.exec_start.trim_matches([' ', '\t']).to_string()]);
            if let Some(stop) = &unit.exec_stop {
                prop_assert_eq!(get("ExecStop"), vec![stop.trim_matches([' ', '\t']).to_string()]);
            }
            if let Some(user) = unit.user.as_ref().or(vm.run_as.as_ref()) {
                prop_assert_eq!(get("User"), vec![user.clone()]);
            }
            prop_assert_eq!(
                get("WorkingDirectory"),
                vec![format!("{}/current", vm.install_dir.trim_end_matches('/'))]
            );
            if !unit.after.is_empty() {
                prop_assert_eq!(get("After"), vec![unit.after.join(" ")]);
            }
            let environment: BTreeMap<String, String> = get("Environment")
                .iter()
                .map(|value| {
                    let words = reader::words(value).expect("one quoted word");
                    assert_eq!(words.len(), 1, "{value}");
                    let (k, v) = words[0].split_once('=').expect("NAME=value");
                    (k.to_string(), v.to_string())
                })
                .collect();
            prop_assert_eq!(environment, unit.environment.clone());
        }
    }

    #[test]
    fn the_reported_injection_stays_inside_its_value() {
        let unit = SystemdUnit {
            name: "app.service".into(),
            exec_start: "/bin/app".into(),
            exec_stop: None,
            user: None,
            environment: BTreeMap::from([(
                "GREETING".to_string(),
                "hi\nExecStartPre=/bin/touch /tmp/x\n[Install]".to_string(),
            )]),
            restart: None,
            after: vec![],
        };
        let text = systemd_unit_text(
            &vm("/opt/app".into(), None, unit.clone()),
            &unit,
            "app.service",
        );
        assert!(
            text.contains(
                "Environment=\"GREETING=hi\\nExecStartPre=/bin/touch /tmp/x\\n[Install]\"\n"
            ),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("ExecStartPre")),
            "{text}"
        );
    }
}

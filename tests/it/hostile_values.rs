//! The front end against arbitrary values: any string given with `-var` to
//! a string attribute of a small configuration is either refused with a
//! location (file, line, column), or loads, and then every text slipway
//! generates from it keeps its structure: the systemd unit has exactly its
//! settings, the ssh values pass the ssh grammar, and paths stay confined.

use std::path::PathBuf;

use proptest::prelude::*;

const CONFIG: &str = r#"
variable "value" { type = string }

service "app" {
  version     = "1.0.0"
  description = ATTR_description
  vm {
    install_dir = ATTR_install_dir
    run_as      = ATTR_run_as

    systemd_unit "app.service" {
      exec_start  = ATTR_exec_start
      user        = ATTR_unit_user
      environment = { APP_VALUE = ATTR_environment }
      after       = [ATTR_after]
    }

    config_file "app.env" {
      destination = ATTR_destination
      content     = ATTR_content
    }
  }
}

environment "prod" {
  vm_hosts {
    hosts   = [ATTR_host]
    user    = ATTR_ssh_user
    bastion = ATTR_bastion
  }
}

deployment "app" {
  service     = service.app
  environment = environment.prod
}
"#;

/// Each attribute and the value it has when it is not the one under test.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("description", "\"an app\""),
    ("install_dir", "\"/opt/app\""),
    ("run_as", "\"app\""),
    ("exec_start", "\"/opt/app/current/bin/run\""),
    ("unit_user", "\"app\""),
    ("environment", "\"x\""),
    ("after", "\"network.target\""),
    ("destination", "\"/opt/app/config/app.env\""),
    ("content", "\"A=1\\n\""),
    ("host", "\"web-1.internal\""),
    ("ssh_user", "\"deploy\""),
    ("bastion", "\"jump.internal\""),
];

fn config_with(tested: &str) -> String {
    let mut text = CONFIG.to_string();
    for (name, default) in ATTRIBUTES {
        let value = if *name == tested {
            "var.value"
        } else {
            default
        };
        text = text.replace(&format!("ATTR_{name}"), value);
    }
    text
}

fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\0".to_string()),
        Just("\u{1b}[2J".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("$(touch PWNED)".to_string()),
        Just("`touch PWNED`".to_string()),
        Just("%".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("..".to_string()),
        Just("/".to_string()),
        Just("-o".to_string()),
        Just("@".to_string()),
        Just(":".to_string()),
        Just("\nProxyCommand touch PWNED".to_string()),
        Just("\nExecStartPre=/bin/touch PWNED\n".to_string()),
        "[a-z0-9.-]{1,10}",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..6).prop_map(|parts| parts.concat()),
        Just("x".repeat(1 << 20)),
    ]
}

const UNIT_KEYS: &[&str] = &[
    "Description",
    "After",
    "User",
    "WorkingDirectory",
    "Environment",
    "ExecStart",
    "Restart",
    "WantedBy",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_value_is_refused_with_a_location_or_keeps_every_format_intact(
        attribute in 0..ATTRIBUTES.len(),
        value in hostile(),
    ) {
        let (name, _) = ATTRIBUTES[attribute];
        let files = vec![(PathBuf::from("main.hcl"), config_with(name).into_bytes())];
        let inputs = slipway::config::InputSources {
            vars: vec![format!("value={value}")],
            var_files: vec![],
            environment: vec![],
        };
        let loaded = slipway::config::load_sources(std::path::Path::new("."), &files, &inputs);
        let Some(config) = loaded.config else {
            let errors: Vec<_> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == slipway::diagnostics::Severity::Error)
                .collect();
            prop_assert!(!errors.is_empty());
            for error in errors {
                prop_assert!(error.span.is_some(), "{name}: unlocated error {:?}", error.message);
                prop_assert!(error.message.len() < 1000, "{name}: message repeats the value");
            }
            return Ok(());
        };
        let deployment = &config.deployments["deployment.app"];
        let vm = deployment.service.vm.as_ref().unwrap();
        let unit = vm.systemd_unit.as_ref().unwrap();

        // The unit has its settings and no other, one per line.
        let text = slipway::plan::render::systemd_unit_text(vm, unit, &unit.name);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || (line.starts_with('[') && line.ends_with(']')) {
                prop_assert!(["", "[Unit]", "[Service]", "[Install]"].contains(&line), "{name}: {text}");
                continue;
            }
            let key = line.split('=').next().unwrap();
            prop_assert!(UNIT_KEYS.contains(&key), "{name}: {text}");
        }
        prop_assert_eq!(text.matches("\nExecStart=").count(), 1);
        prop_assert_eq!(text.matches("\nEnvironment=").count(), 1);
        prop_assert!(!text.contains('\r') && !text.contains('\0'), "{}", name);

        // What reaches ssh passes its grammar.
        let hosts = config.environments.values().next().unwrap().vm_hosts.as_ref().unwrap();
        for host in hosts.hosts.iter().chain(&hosts.bastion) {
            prop_assert!(slipway::encode::ssh::parse_target(host).is_ok(), "{}", name);
        }
        if let Some(user) = &hosts.user {
            prop_assert!(slipway::encode::ssh::check_user(user).is_ok());
        }

        // Paths stay confined.
        let install = slipway::config::confine::service_dir(&vm.install_dir);
        prop_assert!(install.is_ok(), "{}", name);
        for file in &vm.config_files {
            prop_assert!(
                slipway::config::confine::destination(
                    &file.destination,
                    install.as_deref().ok(),
                    &[],
                )
                .is_ok(),
                "{}", name
            );
            prop_assert!(!file.content.contains('\0'));
        }

        // A value that loads arrives unchanged where it was put.
        let arrived = match name {
            "description" => deployment.service.description.clone(),
            "install_dir" => Some(vm.install_dir.clone()),
            "run_as" => vm.run_as.clone(),
            "exec_start" => Some(unit.exec_start.clone()),
            "unit_user" => unit.user.clone(),
            "environment" => unit.environment.get("APP_VALUE").cloned(),
            "after" => unit.after.first().cloned(),
            "destination" => Some(vm.config_files[0].destination.clone()),
            "content" => Some(vm.config_files[0].content.clone()),
            "host" => hosts.hosts.first().cloned(),
            "ssh_user" => hosts.user.clone(),
            "bastion" => hosts.bastion.clone(),
            _ => unreachable!(),
        };
        prop_assert_eq!(arrived.as_deref(), Some(value.as_str()), "{}", name);
    }
}

//! The SSH transport against real sshd servers on loopback (see `sshd/mod.rs`):
//! commands and their output, one connection reused for many commands, uploads,
//! quoting of hostile values, host-key policies, unreachable and vanishing hosts,
//! bounded concurrent connects, and a bastion.
//!
//! Every test starts its own servers, and skips with a note when OpenSSH is not
//! installed (except under CI, where that is an error).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use slipway::transport::ssh::{HostKeyPolicy, SshOptions, SshTransport};
use slipway::transport::TransportError;
use slipway::vm::shell::quote;
use tokio::sync::Semaphore;

use crate::sshd::SshHosts;

fn start(count: usize) -> Option<SshHosts> {
    let hosts = SshHosts::start(count);
    if hosts.is_none() {
        eprintln!("note: test skipped, no OpenSSH server on this machine");
    }
    hosts
}

/// Key login, the harness's known_hosts, strict checking, no retries.
fn options(hosts: &SshHosts) -> SshOptions {
    SshOptions {
        identity_file: Some(hosts.identity_file()),
        known_hosts_file: Some(hosts.known_hosts()),
        control_dir: Some(hosts.dir().join("ctl")),
        host_key_policy: HostKeyPolicy::Strict,
        connect_timeout: Duration::from_secs(5),
        connect_retries: 0,
        ..SshOptions::default()
    }
}

async fn connect(host: &str, options: &SshOptions) -> SshTransport {
    let starts = Semaphore::new(4);
    match SshTransport::connect(host, options, &starts).await {
        Ok(t) => t,
        Err(e) => panic!("connect to {host}: {e}"),
    }
}

fn connect_error(result: Result<SshTransport, TransportError>) -> (String, String) {
    match result {
        Ok(t) => panic!("connected to {} but expected a failure", t.host()),
        Err(TransportError::Connect { host, detail }) => (host, detail),
        Err(other) => panic!("expected a connect error, got {other}"),
    }
}

/// Established TCP connections from this machine to `address` ("a.b.c.d:port").
fn established_to(address: &str) -> usize {
    let (ip, port) = address.split_once(':').unwrap();
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let ip = u32::from_le_bytes([octets[0], octets[1], octets[2], octets[3]]);
    let wanted = format!("{ip:08X}:{:04X}", port.parse::<u16>().unwrap());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ...; 01 is ESTABLISHED.
            fields.len() > 3 && fields[2] == wanted && fields[3] == "01"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_script_on_each_host() {
    let Some(hosts) = start(5) else { return };
    let options = options(&hosts);
    name_each_host_in_its_opt(&hosts);
    for (i, host) in hosts.hosts.iter().enumerate() {
        let t = connect(&host.address, &options).await;
        assert_eq!(t.host(), host.address);
        let out = t
            .run("echo out; echo err >&2; cat /opt/host-name; exit 3")
            .await
            .unwrap();
        assert_eq!(out.status, 3, "{out:?}");
        assert_eq!(
            out.stdout,
            format!("out\nhost {i}\n"),
            "the host's own /opt"
        );
        assert_eq!(out.stderr, "err\n");
        let out = t.run("true").await.unwrap();
        assert!(out.success());
        t.close().await;
    }
}

/// Each host is a machine of its own to its sessions: its `/opt` is its
/// own (`host N` in `/opt/host-name`, written from outside under its root).
fn name_each_host_in_its_opt(hosts: &SshHosts) {
    for (i, host) in hosts.hosts.iter().enumerate() {
        std::fs::create_dir_all(host.root.join("opt")).unwrap();
        std::fs::write(host.root.join("opt/host-name"), format!("host {i}\n")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commands_share_one_connection() {
    let Some(hosts) = start(1) else { return };
    let host = &hosts.hosts[0].address;
    let t = connect(host, &options(&hosts)).await;
    let count = 50;
    let started = Instant::now();
    for i in 0..count {
        let out = t.run(&format!("echo {i}")).await.unwrap();
        assert_eq!(out.stdout, format!("{i}\n"));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{count} sequential commands over one multiplexed connection: {:.1} ms each",
        elapsed.as_secs_f64() * 1000.0 / count as f64
    );
    if Path::new("/proc/net/tcp").exists() {
        assert_eq!(
            established_to(host),
            1,
            "one TCP connection to {host} for all commands"
        );
    }
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_a_file_intact() {
    let Some(hosts) = start(1) else { return };
    let host = &hosts.hosts[0];
    let t = connect(&host.address, &options(&hosts)).await;

    // 2 MB of bytes that do not compress or repeat.
    let mut data = Vec::with_capacity(2 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < 2 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let local = hosts.dir().join("artifact.bin");
    std::fs::write(&local, &data).unwrap();

    let remote = host.root.join("releases/v1/app it's.bin");
    let remote = remote.to_str().unwrap();
    t.upload(&local, remote).await.unwrap();
    let copied = std::fs::read(remote).unwrap();
    assert_eq!(copied.len(), data.len());
    assert_eq!(Sha256::digest(&copied), Sha256::digest(&data));
    assert!(!Path::new(&format!("{remote}.partial")).exists());

    // Uploading again replaces the file.
    std::fs::write(&local, b"second").unwrap();
    t.upload(&local, remote).await.unwrap();
    assert_eq!(std::fs::read(remote).unwrap(), b"second");

    // A parent that is a file: the error names the host and says what failed.
    let blocked = host.root.join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let target = blocked.join("x.bin");
    match t.upload(&local, target.to_str().unwrap()).await {
        Err(e @ TransportError::Upload { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&host.address), "{text}");
            assert!(text.contains("exit status"), "{text}");
        }
        other => panic!("expected an upload error, got {:?}", other.err()),
    }
    // A missing local file.
    let err = t
        .upload(&hosts.dir().join("missing"), remote)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the local file"),
        "{err}"
    );
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_arrive_literally() {
    let Some(hosts) = start(1) else { return };
    let host = &hosts.hosts[0];
    let t = connect(&host.address, &options(&hosts)).await;
    let canary = host.root.join("opt/pwned");
    let values = [
        "$(rm -rf /)".to_string(),
        "'; reboot".to_string(),
        format!("$(touch {})", canary.display()),
        format!("`touch {}`", canary.display()),
        "\"; touch pwned; \"".to_string(),
        "a\nb\\c $HOME ${HOME} * ? ! ~ % \t end".to_string(),
        "naïve ünïcode ✓".to_string(),
        String::new(),
    ];
    for value in &values {
        let out = t
            .run(&format!(
                "mkdir -p /opt && cd /opt && printf '%s' {}",
                quote(value)
            ))
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(&out.stdout, value);
    }
    assert!(!canary.exists(), "a value was run as a command");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_policies() {
    let Some(hosts) = start(2) else { return };
    let host = &hosts.hosts[0].address;
    let starts = Semaphore::new(2);

    // Strict, with the host missing from known_hosts: refused, not retried.
    let empty = hosts.dir().join("known_hosts.empty");
    std::fs::write(&empty, "").unwrap();
    let strict = SshOptions {
        known_hosts_file: Some(empty.clone()),
        connect_retries: 3,
        ..options(&hosts)
    };
    let started = Instant::now();
    let (named, detail) = connect_error(SshTransport::connect(host, &strict, &starts).await);
    assert_eq!(&named, host);
    assert!(detail.contains("is not in known_hosts"), "{detail}");
    assert!(detail.contains("accept-new"), "{detail}");
    assert!(!detail.contains("attempts"), "not retried: {detail}");
    eprintln!("strict refusal took {:?}", started.elapsed());

    // accept-new records it; strict then accepts it.
    let accept = SshOptions {
        host_key_policy: HostKeyPolicy::AcceptNew,
        ..strict.clone()
    };
    let t = SshTransport::connect(host, &accept, &starts).await.unwrap();
    assert!(t.run("true").await.unwrap().success());
    t.close().await;
    // The entry may be hashed (HashKnownHosts): look it up the way ssh does.
    let port = hosts.port;
    let found = std::process::Command::new("ssh-keygen")
        .args(["-F", &format!("[127.0.0.11]:{port}"), "-f"])
        .arg(&empty)
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&found.stdout);
    assert!(found.contains(&hosts.host_key(0)), "recorded: {found}");
    let t = SshTransport::connect(host, &strict, &starts).await.unwrap();
    t.close().await;

    // A key that does not match: refused under both policies, with what to do.
    let wrong = hosts.dir().join("known_hosts.wrong");
    std::fs::write(
        &wrong,
        format!("[127.0.0.11]:{port} {}\n", hosts.host_key(1)),
    )
    .unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let mismatch = SshOptions {
            known_hosts_file: Some(wrong.clone()),
            host_key_policy: policy,
            ..strict.clone()
        };
        let (named, detail) = connect_error(SshTransport::connect(host, &mismatch, &starts).await);
        assert_eq!(&named, host);
        assert!(
            detail.contains(&format!("host key of {host} does not match known_hosts")),
            "{detail}"
        );
        assert!(detail.contains("if the host was rebuilt"), "{detail}");
        assert!(!detail.contains("attempts"), "not retried: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_host_fails_fast_after_retries() {
    let Some(hosts) = start(1) else { return };
    // Nothing listens on 127.0.0.99.
    let host = format!("127.0.0.99:{}", hosts.port);
    let starts = Semaphore::new(2);
    for (retries, attempts) in [(0, "1 attempt"), (2, "3 attempts")] {
        let options = SshOptions {
            connect_retries: retries,
            ..options(&hosts)
        };
        let started = Instant::now();
        let result = SshTransport::connect(&host, &options, &starts).await;
        let elapsed = started.elapsed();
        let (named, detail) = connect_error(result);
        assert_eq!(named, host);
        let text = format!("cannot connect to {named}: {detail}");
        assert!(text.contains("127.0.0.99"), "{text}");
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.contains(attempts), "{text}");
        eprintln!("unreachable with {retries} retries: {elapsed:?}: {text}");
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_goes_away_gives_a_run_error() {
    let Some(mut hosts) = start(2) else { return };
    let options = options(&hosts);
    let first = hosts.hosts[0].address.clone();
    let second = hosts.hosts[1].address.clone();
    let a = connect(&first, &options).await;
    let b = connect(&second, &options).await;
    assert!(a.run("true").await.unwrap().success());

    hosts.stop_host(0);
    match a.run("echo still here").await {
        Err(TransportError::Run { host, detail, .. }) => {
            assert_eq!(host, first);
            eprintln!("after the host stopped: {detail}");
        }
        other => panic!("expected a run error, got {other:?}"),
    }
    // Later steps fail the same way; the other host is not affected.
    assert!(matches!(
        a.run("true").await,
        Err(TransportError::Run { .. })
    ));
    assert_eq!(b.run("echo ok").await.unwrap().stdout, "ok\n");

    // Back again: a new connection works.
    hosts.start_host(0);
    let again = connect(&first, &options).await;
    assert!(again.run("true").await.unwrap().success());
    again.close().await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_are_bounded() {
    let Some(hosts) = start(5) else { return };
    let options = Arc::new(options(&hosts));
    let starts = Arc::new(Semaphore::new(2));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let host = hosts.hosts[i % hosts.hosts.len()].address.clone();
        let options = options.clone();
        let starts = starts.clone();
        tasks.spawn(async move {
            let t = SshTransport::connect(&host, &options, &starts).await?;
            let out = t.run(&format!("echo {i}")).await?;
            t.close().await;
            Ok::<_, TransportError>((i, out.stdout))
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, stdout) = joined.unwrap().unwrap();
        assert_eq!(stdout, format!("{i}\n"));
        done.push(i);
    }
    assert_eq!(done.len(), 10);
    assert_eq!(starts.available_permits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_through_a_bastion() {
    let Some(mut hosts) = start(2) else { return };
    let options = SshOptions {
        bastion: Some(hosts.hosts[0].address.clone()),
        ..options(&hosts)
    };
    let target = hosts.hosts[1].clone();
    name_each_host_in_its_opt(&hosts);
    let t = connect(&target.address, &options).await;
    let out = t.run("cat /opt/host-name").await.unwrap();
    assert_eq!(out.stdout, "host 1\n", "the session runs on the target");

    // The connection runs through the bastion: without it, it breaks.
    hosts.stop_host(0);
    assert!(matches!(
        t.run("true").await,
        Err(TransportError::Run { .. })
    ));
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_not_retried() {
    let Some(hosts) = start(1) else { return };
    let other_key = hosts.dir().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(status.success());
    let options = SshOptions {
        identity_file: Some(other_key),
        connect_retries: 3,
        ..options(&hosts)
    };
    let host = &hosts.hosts[0].address;
    let starts = Semaphore::new(1);
    let (named, detail) = connect_error(SshTransport::connect(host, &options, &starts).await);
    assert_eq!(&named, host);
    assert!(detail.contains("refused the login"), "{detail}");
    assert!(detail.contains("identity_file"), "{detail}");
    assert!(!detail.contains("attempts"), "not retried: {detail}");
}

//! Remote artifact sources end to end: an https repository behind a token
//! with a private CA, S3 (moto), and an OCI registry, deployed to real sshd
//! hosts. What the
//! hosts run is read on the hosts; what was downloaded is read from the
//! repository's request log.

use std::path::Path;
use std::process::Output;

use crate::artifact_repo::{ArtifactRepo, TOKEN};
use crate::moto::Moto;
use crate::registry::{Entry, Registry};
use crate::support::processes_naming;
use crate::support::ssh_lab::Lab;
use crate::tls::Pki;

const ROLLOUT: &str = "strategy = \"all_at_once\"";
const VERSION: &str = "version=1.0.0";

/// The fixture app packed with a `BUILD` file saying `build`: each build is
/// other bytes for the same version.
fn app_archive(lab: &Lab, build: &str) -> (Vec<u8>, String) {
    std::fs::write(lab.root.join("app/BUILD"), build).unwrap();
    let bytes = slipway::artifact::pack_directory(&lab.root.join("app")).unwrap();
    std::fs::remove_file(lab.root.join("app/BUILD")).unwrap();
    let sha256 = slipway::artifact::sha256_hex(&bytes);
    (bytes, sha256)
}

/// Point the service's artifact at `artifact_body` (the block's inside) and
/// trust `ca_file`.
fn use_artifact(lab: &Lab, artifact_body: &str, ca_file: Option<&Path>) {
    let main = lab.root.join("main.hcl");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text = text.replace("    source = \"./app\"\n", artifact_body);
    if let Some(ca_file) = ca_file {
        text = text.replacen(
            "slipway {\n",
            &format!(
                "slipway {{\n  ca_file = {:?}\n",
                ca_file.display().to_string()
            ),
            1,
        );
    }
    text.push_str("\nvariable \"repo_token\" {\n  type      = string\n  sensitive = true\n  default   = \"\"\n}\n");
    std::fs::write(main, text).unwrap();
}

fn https_body(url: &str) -> String {
    format!(
        "    source  = {url:?}\n    headers = {{ Authorization = \"Bearer ${{var.repo_token}}\" }}\n"
    )
}

/// slipway with the repository token in the environment, never on the
/// command line.
fn run(lab: &Lab, args: &[&str], token: &str) -> Output {
    lab.command(args)
        .env("SLIPWAY_VAR_repo_token", token)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What host `i`'s current release says its build is (`None`: no release).
fn build_on(lab: &Lab, i: usize) -> Option<String> {
    std::fs::read_to_string(lab.install_dir(i).join("current/BUILD")).ok()
}

#[test]
fn an_https_artifact_behind_a_token_is_pinned_by_plan_downloaded_once_and_deployed() {
    let Some(pki) = Pki::make() else { return };
    let Some(lab) = Lab::start(2, "artifact-https-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    let repo = ArtifactRepo::start(&pki);
    let (first, first_sha) = app_archive(&lab, "1");
    repo.publish("app.tar.gz", &first);
    // Through a redirect: the token must survive it (same host).
    use_artifact(
        &lab,
        &https_body(&repo.url("redirect", "app.tar.gz")),
        Some(&pki.ca_pem()),
    );

    let plan = run(&lab, &["plan", ".", "-var", VERSION], TOKEN);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!("pinned to sha256 {first_sha}")),
        "plan shows the digest it pinned:\n{shown}"
    );
    assert!(!shown.contains(TOKEN), "the token leaked:\n{shown}");

    let apply = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", VERSION],
        TOKEN,
    );
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(!text(&apply).contains(TOKEN));
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i}");
    }
    let state = lab.state();
    let recorded = state.deployments.values().next().expect("a deployment");
    assert_eq!(
        recorded.artifact_sha256.as_deref(),
        Some(first_sha.as_str())
    );
    let state_text = std::fs::read_to_string(lab.root.join(".slipway/state/lab.json")).unwrap();
    assert!(!state_text.contains(TOKEN), "the token is in state");
    assert_eq!(
        repo.downloads(),
        1,
        "one download per digest: plan fetched it, apply asked and used the cache: {:?}",
        repo.requests()
    );

    // Nothing changed at the source: no changes, and no new download.
    let again = run(&lab, &["plan", ".", "-var", VERSION], TOKEN);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(repo.downloads(), 1, "{:?}", repo.requests());
    assert!(repo.requests().iter().any(|r| r.ends_with(" 304")));

    // The tag moved: same URL, other bytes. plan sees it as a change.
    let (second, second_sha) = app_archive(&lab, "2");
    repo.publish("app.tar.gz", &second);
    let moved = run(
        &lab,
        &["plan", ".", "-var", VERSION, "-out", "moved.plan"],
        TOKEN,
    );
    let shown = text(&moved);
    assert_eq!(moved.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!("artifact digest {first_sha} → {second_sha}")),
        "{shown}"
    );

    let saved = std::fs::read_to_string(lab.root.join("moved.plan")).unwrap();
    assert!(!saved.contains(TOKEN), "the token is in the saved plan");
    assert!(
        saved.contains(&second_sha),
        "the saved plan pins the digest"
    );

    // It moves again after the plan was saved: apply refuses the saved plan
    // and no host changes.
    let (third, _) = app_archive(&lab, "3");
    repo.publish("app.tar.gz", &third);
    let refused = run(
        &lab,
        &["apply", "moved.plan", "-auto-approve", "-var", VERSION],
        TOKEN,
    );
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(shown.contains("the plan pinned"), "{shown}");
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i} changed");
    }
}

/// The files under host `i`'s `.slipway/artifacts/` (the download's
/// temporary files included).
fn artifact_files_on(lab: &Lab, i: usize) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(lab.install_dir(i).join(".slipway/artifacts"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn hosts_pull_an_https_artifact_themselves_and_keep_only_the_pinned_bytes() {
    let Some(pki) = Pki::make() else { return };
    let Some(lab) = Lab::start(2, "artifact-pull-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    let repo = ArtifactRepo::start_open(&pki);
    let (first, first_sha) = app_archive(&lab, "1");
    repo.publish("app.tar.gz", &first);
    // No credentials: hosts pull by default. A precheck on each host plays
    // the repository moving under the apply when `republish` holds a file.
    let republish = lab.root.join("republish.tar.gz");
    let main = lab.root.join("main.hcl");
    let mut config = std::fs::read_to_string(&main).unwrap();
    config = config.replace(
        "    stop_command  = \"sh current/bin/stop.sh\"\n",
        &format!(
            "    stop_command  = \"sh current/bin/stop.sh\"\n\n    precheck \"repository\" {{\n      command = \"if [ -f {from} ]; then cp {from} {to}/app.tar.gz; fi; if [ -f {from}.gone ]; then rm -f {to}/app.tar.gz; fi\"\n    }}\n",
            from = republish.display(),
            to = repo.files_dir().display(),
        ),
    );
    std::fs::write(&main, config).unwrap();
    use_artifact(
        &lab,
        &format!("    source = {:?}\n", repo.url("redirect", "app.tar.gz")),
        Some(&pki.ca_pem()),
    );

    let plan = run(&lab, &["plan", ".", "-var", VERSION], "");
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("hosts download artifact https://127.0.0.1:")
            && shown.contains("themselves"),
        "plan says the hosts pull:\n{shown}"
    );
    let plan_json = run(&lab, &["plan", ".", "-var", VERSION, "-json"], "");
    let document: serde_json::Value = serde_json::from_slice(&plan_json.stdout).unwrap();
    assert_eq!(
        document["deployments"][0]["artifact"]["delivery"], "pull",
        "{document}"
    );

    let before: Vec<usize> = (0..2).map(|i| lab.hosts.sessions(i)).collect();
    let apply = run(&lab, &["apply", ".", "-auto-approve", "-var", VERSION], "");
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    for (i, sessions_before) in before.iter().enumerate() {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i}");
        assert_eq!(
            artifact_files_on(&lab, i),
            [format!("{first_sha}.tar.gz")],
            "host {i} keeps the pinned archive and nothing else"
        );
        // Checks with the download, then the switch: no upload session.
        assert_eq!(
            lab.hosts.sessions(i) - sessions_before,
            2,
            "host {i}: the runner sent no artifact"
        );
    }
    assert_eq!(
        repo.downloads_by("curl/"),
        2,
        "each host downloaded it once, through the redirect: {:?}",
        repo.requests()
    );

    // The source moves during the apply: the runner checked build 2, the
    // hosts get build 3. Each host refuses it and keeps build 1.
    let (second, second_sha) = app_archive(&lab, "2");
    repo.publish("app.tar.gz", &second);
    let (third, third_sha) = app_archive(&lab, "3");
    std::fs::write(&republish, &third).unwrap();
    let moved = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", "version=2.0.0"],
        "",
    );
    let shown = text(&moved);
    assert_eq!(moved.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "as the host downloaded it has sha256 {third_sha}, but the plan pinned {second_sha}"
        )),
        "{shown}"
    );
    assert!(shown.contains("artifact.pull"), "names the step: {shown}");
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i} changed");
        assert_eq!(
            artifact_files_on(&lab, i),
            [format!("{first_sha}.tar.gz")],
            "host {i}: the wrong download is not kept"
        );
    }

    // The source is gone when the hosts ask: a clear error, hosts unchanged.
    std::fs::remove_file(&republish).unwrap();
    std::fs::write(format!("{}.gone", republish.display()), "").unwrap();
    repo.publish("app.tar.gz", &second);
    let gone = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", "version=2.0.0"],
        "",
    );
    let shown = text(&gone);
    assert_eq!(gone.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("the host could not download artifact https://127.0.0.1:"),
        "{shown}"
    );
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i} changed");
    }

    // Back in place: the hosts pull build 2.
    std::fs::remove_file(format!("{}.gone", republish.display())).unwrap();
    repo.publish("app.tar.gz", &second);
    let fixed = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", "version=2.0.0"],
        "",
    );
    assert_eq!(fixed.status.code(), Some(0), "{}", text(&fixed));
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("2"), "host {i}");
    }
}

/// The fixture app with `BUILD` and 2 MiB of random bytes (`ballast`), so a
/// slow source takes half a minute to send it.
fn heavy_app_archive(lab: &Lab, build: &str) -> (Vec<u8>, String) {
    let mut rng = crate::support::sequences::Rng(0x5eed);
    let ballast: Vec<u8> = (0..2 * 1024 * 1024 / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    std::fs::write(lab.root.join("app/ballast"), ballast).unwrap();
    let archive = app_archive(lab, build);
    std::fs::remove_file(lab.root.join("app/ballast")).unwrap();
    archive
}

/// Invariant 7 for host pulls: slipway killed (kill -9) at a random moment
/// while its hosts download leaves no download running on them and no
/// temporary file; the next apply deploys the pinned bytes.
#[test]
fn a_slipway_killed_while_hosts_download_leaves_no_download_running() {
    let Some(pki) = Pki::make() else { return };
    let Some(lab) = Lab::start(2, "artifact-pull-kill-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    let repo = ArtifactRepo::start_open(&pki);
    let (archive, sha) = heavy_app_archive(&lab, "1");
    repo.publish("app.tar.gz", &archive);
    use_artifact(
        &lab,
        &format!("    source = {:?}\n", repo.url("slow", "app.tar.gz")),
        Some(&pki.ca_pem()),
    );
    repo.set_slow(true);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = crate::support::sequences::Rng(seed);
    let mut apply = lab
        .command(&["apply", ".", "-auto-approve", "-var", VERSION])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial_on = |i: usize| -> Vec<String> {
        artifact_files_on(&lab, i)
            .into_iter()
            .filter(|name| name.contains(".pull."))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (0..2).all(|i| partial_on(i).is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no host began to download (seed {seed})"
        );
        assert!(apply.try_wait().unwrap().is_none(), "apply ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let wait = rng.below(1500) as u64;
    std::thread::sleep(std::time::Duration::from_millis(wait));
    apply.kill().unwrap();
    apply.wait().unwrap();
    let downloading: Vec<usize> = (0..2).filter(|&i| !partial_on(i).is_empty()).collect();

    // Within seconds: no download on any host, no temporary file, and the
    // source saw each host go away before the end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // A host's download names its temporary file (hosts see their
        // install directory at another path than this machine does).
        let running = processes_naming(&format!("{sha}.tar.gz.pull."));
        let left: Vec<String> = (0..2).flat_map(partial_on).collect();
        let abandoned = repo
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET /slow/") && r.ends_with(" 499"))
            .count();
        if running.is_empty() && left.is_empty() && abandoned >= downloading.len() {
            assert_eq!(
                repo.downloads_by("curl/"),
                0,
                "no host finished its download: {:?}",
                repo.requests()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seed {seed}, killed {wait} ms after the first download began: still running {running:?}, files left {left:?}, downloads abandoned {abandoned} of {downloading:?}; requests {:?}",
            repo.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for i in 0..2 {
        assert_eq!(build_on(&lab, i), None, "host {i} got no release");
    }

    // The source at full speed again: the next apply deploys the pinned
    // bytes, and the hosts keep nothing else.
    repo.set_slow(false);
    let again = run(&lab, &["apply", ".", "-auto-approve", "-var", VERSION], "");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("1"), "host {i}");
        assert_eq!(
            artifact_files_on(&lab, i),
            [format!("{sha}.tar.gz")],
            "host {i}"
        );
    }
}

#[test]
fn a_broken_source_fails_before_any_host_changes() {
    let Some(pki) = Pki::make() else { return };
    let Some(lab) = Lab::start(1, "artifact-broken-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    let repo = ArtifactRepo::start(&pki);
    let (archive, sha256) = app_archive(&lab, "1");
    repo.publish("app.tar.gz", &archive);
    let cache = lab.root.join(".slipway/artifacts");

    let mismatch = format!("has sha256 {sha256}, but {} was expected", "0".repeat(64));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            https_body(&repo.url("files", "app.tar.gz")),
            "wrong-token",
            "refused access (HTTP 401)",
        ),
        (
            https_body(&repo.url("files", "missing.tar.gz")),
            TOKEN,
            "no such artifact (HTTP 404)",
        ),
        (
            https_body(&repo.url("truncated", "app.tar.gz")),
            TOKEN,
            "bytes",
        ),
        (
            format!(
                "{}    sha256  = \"{}\"\n",
                https_body(&repo.url("files", "app.tar.gz")),
                "0".repeat(64)
            ),
            TOKEN,
            &mismatch,
        ),
    ];
    let original = std::fs::read_to_string(lab.root.join("main.hcl")).unwrap();
    for (body, token, expected) in &cases {
        std::fs::write(lab.root.join("main.hcl"), &original).unwrap();
        use_artifact(&lab, body, Some(&pki.ca_pem()));
        let apply = run(
            &lab,
            &["apply", ".", "-auto-approve", "-var", VERSION],
            token,
        );
        let shown = text(&apply);
        assert_eq!(apply.status.code(), Some(1), "{body}: {shown}");
        assert!(
            shown.contains(expected),
            "{body}: expected {expected:?} in:\n{shown}"
        );
        assert!(
            shown.contains("deployment.app"),
            "names the deployment: {shown}"
        );
        assert!(!shown.contains(TOKEN), "{shown}");
        assert_eq!(build_on(&lab, 0), None, "{body}: the host got a release");
        let partial = std::fs::read_dir(cache.join("partial"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(
            partial, 0,
            "{body}: a partial download was left in the cache"
        );
        assert!(
            !cache.join(format!("{}.tar.gz", "0".repeat(64))).exists(),
            "nothing is cached under a digest it does not have"
        );
    }
}

#[test]
fn an_s3_artifact_deploys_through_the_standard_aws_chain() {
    let Some(moto) = Moto::start() else { return };
    let Some(lab) = Lab::start(2, "artifact-s3-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    let (archive, sha256) = app_archive(&lab, "s3-1");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s3 = moto.s3().await;
            s3.create_bucket().bucket("releases").send().await.unwrap();
            s3.put_object()
                .bucket("releases")
                .key("app/1.0.0/app.tar.gz")
                .body(archive.into())
                .send()
                .await
                .unwrap();
        });
    use_artifact(
        &lab,
        "    source = \"s3://releases/app/1.0.0/app.tar.gz\"\n",
        None,
    );
    let s3_run = |args: &[&str]| {
        let mut command = lab.command(args);
        moto.apply_env(&mut command);
        command.output().unwrap()
    };

    let apply = s3_run(&["apply", ".", "-auto-approve", "-var", VERSION]);
    let shown = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("pinned to sha256 {sha256}")),
        "{shown}"
    );
    for i in 0..2 {
        assert_eq!(build_on(&lab, i).as_deref(), Some("s3-1"), "host {i}");
    }
    // Each host downloaded it through a presigned URL of its own (the
    // runner's SDK signs headers, never the query).
    let presigned_gets = |moto: &Moto| {
        moto.log()
            .lines()
            .filter(|l| {
                l.contains("GET /releases/app/1.0.0/app.tar.gz?") && l.contains("X-Amz-Signature=")
            })
            .count()
    };
    assert_eq!(presigned_gets(&moto), 2, "{}", moto.log());
    assert!(
        !shown.contains("X-Amz-Signature"),
        "a presigned URL is a credential: {shown}"
    );
    let again = s3_run(&["plan", ".", "-var", VERSION]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // A key that does not exist: a clear error, the host keeps its release.
    let main = lab.root.join("main.hcl");
    let text_before = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text_before.replace("1.0.0/app.tar.gz", "9.9.9/app.tar.gz"),
    )
    .unwrap();
    let missing = s3_run(&["apply", ".", "-auto-approve", "-var", VERSION]);
    let shown = text(&missing);
    assert_eq!(missing.status.code(), Some(1), "{shown}");
    assert!(shown.contains("no such key"), "{shown}");
    assert!(
        shown.contains("s3://releases/app/9.9.9/app.tar.gz"),
        "{shown}"
    );
    assert_eq!(build_on(&lab, 0).as_deref(), Some("s3-1"));

    // delivery = "push": the runner sends it, no host asks S3.
    std::fs::write(
        &main,
        text_before.replace(
            "    source = \"s3://releases/app/1.0.0/app.tar.gz\"\n",
            "    source = \"s3://releases/app/1.0.0/app.tar.gz\"\n    delivery = \"push\"\n",
        ),
    )
    .unwrap();
    let pushed = s3_run(&["apply", ".", "-auto-approve", "-var", "version=2.0.0"]);
    assert_eq!(pushed.status.code(), Some(0), "{}", text(&pushed));
    assert_eq!(presigned_gets(&moto), 2, "{}", moto.log());
    for i in 0..2 {
        assert!(
            lab.install_dir(i).join("releases/2.0.0/BUILD").exists(),
            "host {i}"
        );
    }
}

#[test]
fn an_oci_image_is_pulled_flattened_with_its_whiteouts_and_deployed() {
    let Some(pki) = Pki::make() else { return };
    let Some(registry) = Registry::start(&pki) else {
        return;
    };
    let Some(lab) = Lab::start(2, "artifact-oci-") else {
        return;
    };
    lab.configure(&lab.all_hosts(), ROLLOUT);
    // The app in the bottom layer with files the top layer removes again.
    let mut base = Entry::tree(&lab.root.join("app"));
    base.push(Entry::file("BUILD", "base"));
    base.push(Entry::file("junk/big.log", "left by the build"));
    base.push(Entry::file("etc/stale.conf", "old"));
    let top = vec![
        Entry::file("BUILD", "oci-1"),
        Entry::file(".wh.junk", ""),
        Entry::file("etc/.wh.stale.conf", ""),
        Entry::file("etc/app.conf", "new"),
    ];
    let manifest = registry.push("team/app", "1.0", &[base, top]);
    let source = format!("oci://{}/team/app:1.0", registry.host());
    use_artifact(
        &lab,
        &format!(
            "    source   = {source:?}\n    username = {:?}\n    password = var.repo_token\n",
            crate::registry::USER
        ),
        Some(&pki.ca_pem()),
    );

    let apply = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", VERSION],
        crate::registry::PASSWORD,
    );
    let shown = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("pinned to image {manifest}")),
        "{shown}"
    );
    assert!(!shown.contains(crate::registry::PASSWORD), "{shown}");
    for i in 0..2 {
        let current = lab.install_dir(i).join("current");
        assert_eq!(build_on(&lab, i).as_deref(), Some("oci-1"), "host {i}");
        assert!(!current.join("junk").exists(), "host {i}: whiteout ignored");
        assert!(!current.join("etc/stale.conf").exists(), "host {i}");
        assert_eq!(
            std::fs::read_to_string(current.join("etc/app.conf")).unwrap(),
            "new"
        );
    }

    // Unchanged image: no changes. A wrong password or a missing tag: a
    // clear error, the hosts keep what they run.
    let again = run(
        &lab,
        &["plan", ".", "-var", VERSION],
        crate::registry::PASSWORD,
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let refused = run(&lab, &["plan", ".", "-var", VERSION], "wrong-password");
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(shown.contains("refused the credentials"), "{shown}");
    let main = lab.root.join("main.hcl");
    let config = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, config.replace("team/app:1.0", "team/app:9.9")).unwrap();
    let missing = run(
        &lab,
        &["apply", ".", "-auto-approve", "-var", VERSION],
        crate::registry::PASSWORD,
    );
    let shown = text(&missing);
    assert_eq!(missing.status.code(), Some(1), "{shown}");
    assert!(shown.contains("team/app:9.9"), "{shown}");
    assert_eq!(build_on(&lab, 0).as_deref(), Some("oci-1"));
}

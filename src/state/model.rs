//! The saved state of one environment, as data.
//!
//! One [`State`] per environment: what was deployed where, and the append-only
//! history of applies. It never holds a secret: rendered texts are stored with
//! sensitive values masked. Storage (atomic writes, backups, locks) lives in the
//! backend modules, not here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Major version of the state file format written by this build.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; always the first key of the file.
    pub version: u32,
    /// Incremented on every write.
    pub serial: u64,
    /// Random id fixed when the state is first created; never changes.
    pub lineage: String,
    pub environment: String,
    /// Keyed by deployment address (`deployment.<name>`).
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentState>,
    /// Append-only audit trail.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// The steps of the apply in flight (or of one that was killed): each
    /// recorded as started before it runs and as finished after. Emptied
    /// when an apply ends in order; see [`JournalEntry`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
    /// ECS autoscaling that an apply suspended for a rollout, by deployment
    /// address, with how it was before. Written before the suspension and
    /// removed once it is restored: an entry left by a killed apply is
    /// restored by the next apply of that deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scaling_suspended: BTreeMap<String, ScalingSuspension>,
}

/// An Application Auto Scaling target slipway suspended (see
/// [`State::scaling_suspended`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingSuspension {
    /// The target's resource id, `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// Its suspended state before slipway suspended it: what is restored.
    pub before: SuspendedScaling,
}

/// Which kinds of scaling a target has suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SuspendedScaling {
    pub dynamic_scaling_in: bool,
    pub dynamic_scaling_out: bool,
    pub scheduled_scaling: bool,
}

impl SuspendedScaling {
    /// Everything suspended: what a rollout sets.
    pub const ALL: SuspendedScaling = SuspendedScaling {
        dynamic_scaling_in: true,
        dynamic_scaling_out: true,
        scheduled_scaling: true,
    };
}

/// At most this many journal entries are kept; beyond it the oldest finished
/// ones are dropped (an unfinished one is never dropped).
pub const JOURNAL_LIMIT: usize = 1000;

/// One step of an apply, written before the step runs (`finished_at` empty)
/// and again when it ends. A killed apply leaves at most a few entries
/// without `finished_at`: those steps may or may not have happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The apply this step belongs to.
    pub apply_id: String,
    /// 1, 2, ... in the order the entries were started, over the whole journal.
    pub seq: u64,
    /// Deployment address.
    pub deployment: String,
    /// The rollout step (batch or traffic step), 1-based.
    pub step: usize,
    /// The host, for a VM step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub action: JournalAction,
    /// The version the step moves to; for `traffic`, followed by the share
    /// of traffic the step sends to it ("2.0.0 25%", see
    /// [`JournalEntry::traffic_version`]).
    pub version: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How the step ended (see [`StepResult`]); none while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StepResult>,
}

crate::config::choices::choice! {
    /// How a journal entry's step ended: what later applies and `plan`
    /// decide on.
    pub enum StepOutcome {
        /// The host was updated (or a re-check found the killed apply's update
        /// finished).
        Deployed = "deployed",
        /// A re-check found the host on the very pair this apply deploys.
        AlreadyDeployed = "already_deployed",
        /// The step happened: a traffic shift, a promotion, a withdrawal, or
        /// what a re-check found finished.
        Done = "done",
        /// A re-check found the step had not happened: it runs again.
        NotDone = "not done",
        /// The step failed.
        Failed = "failed",
        /// What served before was put back.
        RolledBack = "rolled_back",
        /// Closed by a later apply without a re-check: that apply's own step
        /// on the host decides what the host serves.
        Superseded = "superseded",
    }
}

/// How a journal entry's step ended: its [`StepOutcome`] and a note for
/// people (what found it, who settled it). Written as one text, `OUTCOME` or
/// `OUTCOME (NOTE)`, as state files always had it. Read leniently: a text
/// that starts with no known outcome (a newer slipway's, or one edited by
/// hand) is kept whole as the note, with no outcome, and written back as it
/// was; older spellings (`not_done`, `failed, unchanged`, `superseded: ...`)
/// read as their outcome and note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct StepResult {
    pub outcome: Option<StepOutcome>,
    pub note: Option<String>,
}

impl StepResult {
    /// `outcome` with `note`.
    pub fn noted(outcome: StepOutcome, note: impl Into<String>) -> StepResult {
        StepResult {
            outcome: Some(outcome),
            note: Some(note.into()),
        }
    }

    /// Whether the step ended as `outcome`.
    pub fn is(&self, outcome: StepOutcome) -> bool {
        self.outcome == Some(outcome)
    }
}

impl From<StepOutcome> for StepResult {
    fn from(outcome: StepOutcome) -> StepResult {
        StepResult {
            outcome: Some(outcome),
            note: None,
        }
    }
}

impl From<String> for StepResult {
    fn from(text: String) -> StepResult {
        // Earlier spellings of an outcome, before the words above.
        const ALIASES: [(&str, StepOutcome); 1] = [("not_done", StepOutcome::NotDone)];
        let known = StepOutcome::ALL
            .iter()
            .map(|outcome| (outcome.as_str(), *outcome))
            .chain(ALIASES);
        for (word, outcome) in known {
            let Some(rest) = text.strip_prefix(word) else {
                continue;
            };
            if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let note = match rest.strip_prefix(" (").and_then(|r| r.strip_suffix(')')) {
                Some(inner) if !inner.contains(['(', ')']) => inner,
                _ => rest.trim_start_matches([',', ':', ' ']),
            };
            return StepResult {
                outcome: Some(outcome),
                note: (!note.is_empty()).then(|| note.to_string()),
            };
        }
        StepResult {
            outcome: None,
            note: Some(text),
        }
    }
}

impl From<&str> for StepResult {
    fn from(text: &str) -> StepResult {
        StepResult::from(text.to_string())
    }
}

impl From<StepResult> for String {
    fn from(result: StepResult) -> String {
        result.to_string()
    }
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.outcome, &self.note) {
            (Some(outcome), None) => write!(f, "{outcome}"),
            (Some(outcome), Some(note)) => write!(f, "{outcome} ({note})"),
            (None, note) => f.write_str(note.as_deref().unwrap_or_default()),
        }
    }
}

crate::config::choices::choice! {
    /// What a journal entry's step does.
    pub enum JournalAction {
        /// Update a VM host to `version`.
        Deploy = "deploy",
        /// Read the outcome of a step a killed apply left uncertain.
        Recheck = "recheck",
        /// Put back what served before, after a step failed (VM hosts, or
        /// all of an ECS listener's traffic).
        Rollback = "rollback",
        /// An ECS canary or blue/green step: `version` is the version and the
        /// share of traffic it gets.
        Traffic = "traffic",
        /// The end of an ECS canary or blue/green: the serving service updated
        /// in place, all traffic back to it, the temporary service removed.
        Promote = "promote",
        /// An unfinished ECS canary or blue/green given up before another
        /// rollout starts.
        Withdraw = "withdraw",
    }
}

impl JournalEntry {
    /// Whether the step ended, as `outcome`.
    pub fn ended_as(&self, outcome: StepOutcome) -> bool {
        self.result.as_ref().is_some_and(|r| r.is(outcome))
    }

    /// What the step was, for messages: "step 2, host-3: deploy 1.1.0".
    pub fn describe(&self) -> String {
        match &self.host {
            Some(host) => format!(
                "{} step {} on {host}: {} {}",
                self.deployment, self.step, self.action, self.version
            ),
            None => format!(
                "{} step {}: {} {}",
                self.deployment, self.step, self.action, self.version
            ),
        }
    }

    /// The `version` of a `traffic` step that sends `percent` of the traffic
    /// to `version`.
    pub fn traffic_version(version: &str, percent: u32) -> String {
        format!("{version} {percent}%")
    }

    /// The share of traffic a `traffic` step sends to its version.
    pub fn traffic_percent(&self) -> Option<u32> {
        if self.action != JournalAction::Traffic {
            return None;
        }
        let (_, share) = self.version.rsplit_once(' ')?;
        share.strip_suffix('%')?.parse().ok()
    }

    /// The version the step moves to, without a `traffic` step's share.
    pub fn version_moved_to(&self) -> &str {
        match self.version.rsplit_once(' ') {
            Some((version, _)) if self.traffic_percent().is_some() => version,
            _ => &self.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Every target is on `version`.
    Deployed,
    /// Some targets are on `version`, others are not (an apply stopped part-way).
    Partial,
    InProgress,
    Failed,
    RolledBack,
}

impl std::fmt::Display for DeploymentStatus {
    /// The word state files use (`in_progress`, `rolled_back`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeploymentStatus::Deployed => "deployed",
            DeploymentStatus::Partial => "partial",
            DeploymentStatus::InProgress => "in_progress",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::RolledBack => "rolled_back",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub service: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// sha256 of the rollout policy as configured when last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_digest: Option<String>,
    /// The rollout in flight or last run: the id of the apply that began it.
    /// Every apply that goes on with it (after a kill, a pause or an
    /// approval) keeps this id; hosts it moved carry it in
    /// [`HostState::rollout`], and a rollback puts exactly those back. See
    /// [`DeploymentState::continues_rollout`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
    pub status: DeploymentStatus,
    /// The version passed every verification gate (needed by `promote_from`).
    #[serde(default)]
    pub verified: bool,
    /// Rendered config files by destination, sensitive values masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_files: BTreeMap<String, String>,
    /// For each config file that holds sensitive values, by destination: a
    /// salted scrypt digest of its real text (`config::secret_digest`), so a
    /// rotated secret is a change although the masked texts are equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensitive_digests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// VM targets, keyed by host address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, HostState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs: Option<EcsState>,
    /// The rollout's approvals for `version`: asked for, given or refused.
    /// Cleared when a new version starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// The verification gates judged for `version`, in order, with the values
    /// they saw. Cleared when a new version starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// The releases this deployment finished and verified, oldest first, at
    /// most [`RELEASES_KEPT`]: what `slipway rollback` can put back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<VerifiedRelease>,
    /// Set by `slipway rollback`: the version it took the deployment off.
    /// apply does not deploy that version again (configure another one);
    /// cleared when another version is deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<RollbackRecord>,
    pub updated_at: String,
}

/// At most this many verified releases are kept per deployment.
pub const RELEASES_KEPT: usize = 10;

/// A release a deployment served on every target after passing its gates:
/// enough to put it back without building or transferring anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedRelease {
    pub version: String,
    /// VM: the artifact's sha256 on the hosts (the release marker names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    /// VM: the configuration half of the release pair ([`config_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// VM: the rendered config files (sensitive values masked) and systemd
    /// unit, so state can say again what the hosts serve after a rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// ECS: the task definition the service ran, and how it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs: Option<EcsState>,
    /// The apply that finished it, and when.
    pub apply_id: String,
    pub verified_at: String,
}

impl VerifiedRelease {
    /// The same version with the same artifact, configuration and task
    /// definition (when and by which apply it was verified aside).
    pub fn same_release(&self, other: &VerifiedRelease) -> bool {
        self.version == other.version
            && self.artifact_sha256 == other.artifact_sha256
            && self.config_digest == other.config_digest
            && self.ecs.as_ref().map(|e| &e.task_definition_arn)
                == other.ecs.as_ref().map(|e| &e.task_definition_arn)
    }
}

/// What `slipway rollback` did to a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// The version it took the deployment off.
    pub version: String,
    /// The version it put back.
    pub to_version: String,
    pub by: String,
    pub at: String,
    pub apply_id: String,
}

/// Why apply does not deploy a version `slipway rollback` took off.
pub fn rolled_back_message(record: &RollbackRecord) -> String {
    format!(
        "version {} was rolled back to {} by {} at {} (`slipway rollback`); apply does not deploy it again: configure another version",
        record.version, record.to_version, record.by, record.at
    )
}

/// One verification gate judged after one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The `verify` block's name.
    pub name: String,
    /// http | command | prometheus | cloudwatch
    pub kind: String,
    /// The step (batch or traffic step) it was judged after, 1-based.
    pub step: usize,
    pub version: String,
    pub passed: bool,
    /// Why, with the values seen (sensitive values masked).
    pub summary: String,
    /// Each evaluation of a metric gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<GateEvaluation>,
    pub judged_at: String,
}

/// One evaluation of a metric gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateEvaluation {
    /// The new version's value; absent when the query returned no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The previous version's value, with `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    pub passed: bool,
    pub text: String,
}

/// One approval gate of a rollout, for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The `approval` block's name.
    pub name: String,
    /// The rollout step it follows (1-based).
    pub after_step: u32,
    pub version: String,
    pub status: ApprovalStatus,
    /// Who may decide (user names); empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The apply that stopped to wait for it.
    pub requested_by_apply: String,
    pub requested_at: String,
    /// Who approved or rejected, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Waiting,
    Approved,
    Rejected,
}

/// How to go on from approval `name` after step `after_step` of `address`.
pub fn approval_instructions(address: &str, name: &str, after_step: u32) -> String {
    format!(
        "{address} waits for approval \"{name}\" after step {after_step}: `slipway approve {address}` and then `slipway apply` continue the rollout from step {}; `slipway reject {address}` rolls it back",
        after_step + 1
    )
}

/// Why apply does not deploy a version that was rejected at an approval.
pub fn rejected_message(record: &ApprovalRecord) -> String {
    format!(
        "version {} was rejected at approval \"{}\" by {}; apply does not deploy it again: configure another version",
        record.version,
        record.name,
        record.decided_by.as_deref().unwrap_or("someone")
    )
}

impl DeploymentState {
    /// A record of `service` at `version` with `status`, written `at`, and
    /// nothing else yet: no hosts, files, service, approvals or releases.
    pub fn new(
        service: &str,
        version: &str,
        status: DeploymentStatus,
        at: &str,
    ) -> DeploymentState {
        DeploymentState {
            service: service.to_string(),
            version: version.to_string(),
            artifact_sha256: None,
            rollout: None,
            rollout_digest: None,
            rollout_id: None,
            status,
            verified: false,
            config_files: BTreeMap::new(),
            sensitive_digests: BTreeMap::new(),
            systemd_unit: None,
            hosts: BTreeMap::new(),
            ecs: None,
            approvals: Vec::new(),
            gates: Vec::new(),
            releases: Vec::new(),
            rolled_back_from: None,
            updated_at: at.to_string(),
        }
    }

    /// Whether an apply of `version` goes on with the rollout recorded here
    /// (keeps [`DeploymentState::rollout_id`]) rather than beginning a new
    /// one: the rollout moves to the same version and did not finish — it
    /// was killed (in progress), stopped at an approval or paused (partial),
    /// or stopped without rolling back (failed). A deployed or rolled back
    /// deployment, or another version, begins a new rollout.
    pub fn continues_rollout(&self, version: &str) -> bool {
        self.version == version
            && self.rollout_id.is_some()
            && matches!(
                self.status,
                DeploymentStatus::InProgress | DeploymentStatus::Partial | DeploymentStatus::Failed
            )
    }

    /// Hosts the rollout in flight moved and has not put back, each with the
    /// pair it should go back to (`None`: nothing was there before).
    pub fn moved_hosts(&self) -> Vec<(&String, Option<&PreviousRelease>)> {
        let Some(rollout) = self.rollout_id.as_deref() else {
            // Recorded before rollouts were tracked: the hosts on this
            // version that remember an earlier release.
            return self
                .hosts
                .iter()
                .filter(|(_, r)| {
                    r.version == self.version
                        && r.status != HostStatus::RolledBack
                        && r.previous.is_some()
                })
                .map(|(host, record)| (host, record.previous.as_ref()))
                .collect();
        };
        self.hosts
            .iter()
            .filter(|(_, record)| record.moved_by(rollout))
            .map(|(host, record)| (host, record.previous.as_ref()))
            .collect()
    }

    /// The approval this deployment waits for at its current version.
    pub fn waiting_approval(&self) -> Option<&ApprovalRecord> {
        self.approvals
            .iter()
            .find(|a| a.status == ApprovalStatus::Waiting && a.version == self.version)
    }

    /// The approval refused for the current version, if any: apply does not
    /// deploy a rejected version again.
    pub fn rejected(&self) -> Option<&ApprovalRecord> {
        self.approvals
            .iter()
            .find(|a| a.status == ApprovalStatus::Rejected && a.version == self.version)
    }

    /// Give or refuse the approval this deployment waits for. `gate`, when
    /// given, must name it. Returns the decided record.
    pub fn decide_approval(
        &mut self,
        address: &str,
        gate: Option<&str>,
        decision: ApprovalStatus,
        who: &super::lock::Approver,
        at: &str,
    ) -> Result<ApprovalRecord, super::ApprovalError> {
        use super::ApprovalError;
        let version = self.version.clone();
        let status = self.status.clone();
        let Some(record) = self
            .approvals
            .iter_mut()
            .find(|a| a.status == ApprovalStatus::Waiting && a.version == version)
        else {
            return Err(
                match self.approvals.iter().rfind(|a| a.version == version) {
                    Some(last) => ApprovalError::AlreadyDecided {
                        address: address.to_string(),
                        name: last.name.clone(),
                        version,
                        decision: if last.status == ApprovalStatus::Approved {
                            "approved"
                        } else {
                            "rejected"
                        },
                        by: last.decided_by.as_deref().unwrap_or("someone").to_string(),
                    },
                    None => ApprovalError::NotWaiting {
                        address: address.to_string(),
                        version,
                        status,
                    },
                },
            );
        };
        if let Some(gate) = gate.filter(|g| *g != record.name) {
            return Err(ApprovalError::OtherApproval {
                address: address.to_string(),
                waiting: record.name.clone(),
                given: gate.to_string(),
            });
        }
        if !who.may_decide(&record.approvers) {
            return Err(ApprovalError::NotAnApprover {
                name: record.name.clone(),
                address: address.to_string(),
                approvers: record.approvers.clone(),
                who: who.recorded.clone(),
            });
        }
        record.status = decision;
        record.decided_by = Some(who.recorded.clone());
        record.decided_at = Some(at.to_string());
        Ok(record.clone())
    }

    /// Remember what the deployment serves now as a verified release (call
    /// when a rollout of `version` finished on every target and passed its
    /// gates). The same release verified again moves to the end; at most
    /// [`RELEASES_KEPT`] are kept.
    pub fn remember_verified_release(&mut self, apply_id: &str, at: &str) {
        let release = VerifiedRelease {
            version: self.version.clone(),
            artifact_sha256: self
                .hosts
                .values()
                .find(|h| h.version == self.version && h.status == HostStatus::Deployed)
                .and_then(|h| h.artifact_sha256.clone())
                .or_else(|| self.artifact_sha256.clone()),
            config_digest: self
                .ecs
                .is_none()
                .then(|| config_digest(&self.config_files, self.systemd_unit.as_deref())),
            config_files: self.config_files.clone(),
            systemd_unit: self.systemd_unit.clone(),
            ecs: self.ecs.clone().map(|ecs| EcsState {
                canary: None,
                ..ecs
            }),
            apply_id: apply_id.to_string(),
            verified_at: at.to_string(),
        };
        self.releases.retain(|r| !r.same_release(&release));
        self.releases.push(release);
        let excess = self.releases.len().saturating_sub(RELEASES_KEPT);
        self.releases.drain(..excess);
    }

    /// Whether approval `name` was given for `version`.
    pub fn approved(&self, name: &str, version: &str) -> bool {
        self.approvals
            .iter()
            .any(|a| a.name == name && a.version == version && a.status == ApprovalStatus::Approved)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Pending,
    InProgress,
    Deployed,
    Failed,
    RolledBack,
    /// A rollback should have put the host back and could not (it could not
    /// be reached, or a rollback step failed): it still runs what the
    /// record's `version` says, and `previous` is what it should go back to.
    RollbackFailed,
}

impl HostStatus {
    /// The host serves the record's pair as a finished step left it.
    pub fn is_settled(self) -> bool {
        matches!(self, HostStatus::Deployed | HostStatus::RolledBack)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    pub status: HostStatus,
    pub updated_at: String,
    /// The configuration half of the host's release pair: [`config_digest`]
    /// of the config files and systemd unit it was given with `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    /// The rollout ([`DeploymentState::rollout_id`]) that moved the host to
    /// this record; `None` when no rollout moved it (yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// The release pair the host served before `rollout` first moved it
    /// (what a rollback or `slipway reject` puts back; for a rolled back
    /// host, the pair it was put back on); `None` when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousRelease>,
}

/// A release pair a host served before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousRelease {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
}

impl HostState {
    /// The pair this record says the host serves, as a [`PreviousRelease`].
    pub fn pair(&self) -> PreviousRelease {
        PreviousRelease {
            version: self.version.clone(),
            artifact_sha256: self.artifact_sha256.clone(),
            config_digest: self.config_digest.clone(),
        }
    }

    /// Whether rollout `rollout` moved this host and has not put it back.
    pub fn moved_by(&self, rollout: &str) -> bool {
        self.rollout.as_deref() == Some(rollout) && self.status != HostStatus::RolledBack
    }

    /// The pair the host served before rollout `rollout` moved it, as a new
    /// move by that rollout must keep it: the recorded `previous` when that
    /// rollout moved it already (or put it back), the pair it serves when it
    /// is deployed, and otherwise (failed, in progress, rolled back by an
    /// earlier rollout) `previous`, the last pair it served well. `None`:
    /// nothing was there before.
    pub fn before_rollout(&self, rollout: Option<&str>) -> Option<PreviousRelease> {
        let same = rollout.is_some() && self.rollout.as_deref() == rollout;
        match self.status {
            _ if same => self.previous.clone(),
            HostStatus::Deployed => Some(self.pair()),
            // Recorded before rollouts were tracked: `version` is what it was
            // put back on.
            HostStatus::RolledBack if self.rollout.is_none() => Some(self.pair()),
            // Not reached yet: still what the record says, unless it says
            // otherwise.
            HostStatus::Pending => self.previous.clone().or_else(|| Some(self.pair())),
            _ => self.previous.clone(),
        }
    }
}

/// The configuration half of a release pair: sha256 (first 16 hex digits) of
/// the config files (by destination) and the systemd unit, as state stores
/// them (sensitive values masked, so the digest reveals nothing of them).
pub fn config_digest(files: &BTreeMap<String, String>, unit: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (destination, content) in files {
        for part in [destination.as_str(), content.as_str()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.update([u8::from(unit.is_some())]);
    hasher.update(unit.unwrap_or_default().as_bytes());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsState {
    pub cluster: String,
    pub service_name: String,
    /// Task definition as registered (JSON, secrets only as ARNs).
    pub task_definition: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    pub desired_count: u32,
    /// Target group ARN → weight, as last set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// The target group `service_name` serves, when it is behind a load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// A canary or blue/green rollout in flight: the new service beside
    /// `service_name` and the share of traffic it had when last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryState>,
}

/// The new side of a canary or blue/green rollout that has not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryState {
    pub service_name: String,
    pub target_group: String,
    pub task_definition_arn: String,
    pub percent: u32,
    /// Every step passed and the serving service is being brought to the
    /// canary's task definition (set before that update is asked for):
    /// what is left is that update, all traffic back to the serving
    /// service, and removing the canary. While set, the listener may send
    /// all traffic to either side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub apply_id: String,
    /// What the entry records: an apply, a rollback, a decided approval, a
    /// state command.
    pub operation: HistoryOperation,
    pub who: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// Deployment address → version applied.
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// How it ended, or that it has not yet.
    pub result: HistoryResult,
    /// Approvals given or refused by this entry (`approve` / `reject`), or
    /// asked for by this apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
}

crate::config::choices::open_choice! {
    /// What a history entry records. A word this build does not know is kept
    /// (as `Other`) and written back unchanged.
    pub enum HistoryOperation {
        /// `slipway apply`, or an apply a killed process left in the journal.
        Apply = "apply",
        /// `slipway rollback`.
        Rollback = "rollback",
        /// `slipway approve`.
        Approve = "approve",
        /// `slipway reject`, and the rollback it starts.
        Reject = "reject",
        /// `slipway state rm`.
        StateRm = "state-rm",
        /// `slipway state push`.
        StatePush = "state-push",
    }
}

crate::config::choices::open_choice! {
    /// How a history entry's operation ended (or that it has not yet). A
    /// word this build does not know is kept (as `Other`) and written back
    /// unchanged.
    pub enum HistoryResult {
        Succeeded = "succeeded",
        Failed = "failed",
        /// Every deployment that failed paused (`on_failure = "pause"`).
        Paused = "paused",
        /// A failed apply, or a rejection, put targets back on what served
        /// before.
        RolledBack = "rolled_back",
        /// Stopped by an interrupt, or killed (its journal settled later).
        Interrupted = "interrupted",
        /// The apply stopped at an approval.
        WaitingApproval = "waiting_approval",
        /// An approval given (`approve`).
        Approved = "approved",
        /// An approval refused (`reject`), while its rollback runs.
        Rejected = "rejected",
        /// A rollback that has not ended (or was killed).
        InProgress = "in_progress",
    }
}

impl State {
    /// A fresh state for `environment` with a new lineage and serial 0.
    pub fn new(environment: &str) -> State {
        State {
            version: STATE_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            environment: environment.to_string(),
            deployments: BTreeMap::new(),
            history: Vec::new(),
            journal: Vec::new(),
            scaling_suspended: BTreeMap::new(),
        }
    }

    /// Write journal entry `seq` as finished now, with `result`; an entry
    /// already finished keeps what it says.
    pub fn finish_journal_entry(&mut self, seq: u64, result: StepResult) {
        if let Some(entry) = self
            .journal
            .iter_mut()
            .find(|e| e.seq == seq && e.finished_at.is_none())
        {
            entry.finished_at = Some(super::lock::now_rfc3339());
            entry.result = Some(result);
        }
    }

    /// Entries of the journal that were started and never finished.
    pub fn uncertain_steps(&self) -> impl Iterator<Item = &JournalEntry> {
        self.journal.iter().filter(|e| e.finished_at.is_none())
    }

    /// Applies in the journal that have no history entry: they were killed
    /// (or are running right now, seen from outside their lock).
    pub fn interrupted_applies(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for entry in &self.journal {
            if !ids.contains(&entry.apply_id)
                && !self.history.iter().any(|h| h.apply_id == entry.apply_id)
            {
                ids.push(entry.apply_id.clone());
            }
        }
        ids
    }

    /// Close the journal after an apply ended in order: every apply in it
    /// without a history entry gets one with result "interrupted" (its steps'
    /// versions, started when its first step started), and the journal is
    /// emptied.
    pub fn settle_journal(&mut self) {
        for apply_id in self.interrupted_applies() {
            let steps: Vec<&JournalEntry> = self
                .journal
                .iter()
                .filter(|e| e.apply_id == apply_id)
                .collect();
            let versions = steps
                .iter()
                .filter(|e| matches!(e.action, JournalAction::Deploy | JournalAction::Traffic))
                .map(|e| (e.deployment.clone(), e.version_moved_to().to_string()))
                .collect();
            let started_at = steps
                .first()
                .map(|e| e.started_at.clone())
                .unwrap_or_default();
            self.history.push(HistoryEntry {
                apply_id,
                operation: HistoryOperation::Apply,
                who: "unknown".into(),
                started_at,
                finished_at: None,
                plan_digest: None,
                versions,
                result: HistoryResult::Interrupted,
                approvals: Vec::new(),
            });
        }
        self.journal.clear();
    }
}

#[cfg(test)]
mod approval_tests {
    use super::*;
    use crate::state::lock::Approver;

    fn person(name: &str) -> Approver {
        Approver {
            recorded: name.to_string(),
            names: vec![name.to_string()],
        }
    }

    fn waiting(approvers: &[&str]) -> DeploymentState {
        DeploymentState {
            approvals: vec![ApprovalRecord {
                name: "release-manager".into(),
                after_step: 1,
                version: "2.0.0".into(),
                status: ApprovalStatus::Waiting,
                approvers: approvers.iter().map(|a| a.to_string()).collect(),
                requested_by_apply: "apply-1".into(),
                requested_at: "t0".into(),
                decided_by: None,
                decided_at: None,
            }],
            ..DeploymentState::new("service.web", "2.0.0", DeploymentStatus::Partial, "t0")
        }
    }

    #[test]
    fn only_listed_approvers_decide_and_only_once() {
        let mut state = waiting(&["alice"]);
        let refused = state
            .decide_approval(
                "deployment.web",
                None,
                ApprovalStatus::Approved,
                &person("bob"),
                "t1",
            )
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("may be decided by alice only, not by bob"),
            "{refused}"
        );
        assert!(state.waiting_approval().is_some(), "nothing changed");
        let wrong_gate = state
            .decide_approval(
                "deployment.web",
                Some("qa"),
                ApprovalStatus::Approved,
                &person("alice"),
                "t1",
            )
            .unwrap_err()
            .to_string();
        assert!(wrong_gate.contains("not \"qa\""), "{wrong_gate}");
        let record = state
            .decide_approval(
                "deployment.web",
                None,
                ApprovalStatus::Approved,
                &person("alice"),
                "t1",
            )
            .unwrap();
        assert_eq!(record.decided_by.as_deref(), Some("alice"));
        assert!(state.approved("release-manager", "2.0.0"));
        assert!(
            !state.approved("release-manager", "3.0.0"),
            "approvals are per version"
        );
        let again = state
            .decide_approval(
                "deployment.web",
                None,
                ApprovalStatus::Rejected,
                &person("alice"),
                "t2",
            )
            .unwrap_err()
            .to_string();
        assert!(again.contains("was already approved by alice"), "{again}");
    }

    #[test]
    fn anyone_decides_when_no_approvers_are_listed() {
        let mut state = waiting(&[]);
        state
            .decide_approval(
                "deployment.web",
                None,
                ApprovalStatus::Rejected,
                &person("carol"),
                "t1",
            )
            .unwrap();
        assert_eq!(
            state.rejected().map(|r| r.name.as_str()),
            Some("release-manager")
        );
        assert!(state.waiting_approval().is_none());
    }
}

#[cfg(test)]
mod journal_tests {
    use super::*;

    #[test]
    fn a_step_result_is_read_by_its_outcome_and_written_back_as_read() {
        let read = |text: &str| -> StepResult {
            serde_json::from_value(serde_json::Value::String(text.into())).unwrap()
        };
        let written = |result: &StepResult| serde_json::to_value(result).unwrap();
        for (text, outcome, note) in [
            ("deployed", Some(StepOutcome::Deployed), None),
            ("already_deployed", Some(StepOutcome::AlreadyDeployed), None),
            (
                "not done (listener re-read by a2)",
                Some(StepOutcome::NotDone),
                Some("listener re-read by a2"),
            ),
            (
                "deployed (release marker; re-checked by a2)",
                Some(StepOutcome::Deployed),
                Some("release marker; re-checked by a2"),
            ),
            // Something a newer slipway wrote, or a hand: kept as it was.
            ("paused by hand", None, Some("paused by hand")),
            ("deployedish", None, Some("deployedish")),
        ] {
            let result = read(text);
            assert_eq!(result.outcome, outcome, "{text}");
            assert_eq!(result.note.as_deref(), note, "{text}");
            assert_eq!(written(&result), text, "written back as read");
        }
        // What earlier versions wrote reads as its outcome.
        for (text, outcome, note) in [
            ("not_done", StepOutcome::NotDone, None),
            ("failed, unchanged", StepOutcome::Failed, Some("unchanged")),
            (
                "superseded: not re-checked, a2 runs its own step on the host",
                StepOutcome::Superseded,
                Some("not re-checked, a2 runs its own step on the host"),
            ),
            (
                "not done (release marker), re-checked by a2",
                StepOutcome::NotDone,
                Some("(release marker), re-checked by a2"),
            ),
        ] {
            let result = read(text);
            assert!(result.is(outcome), "{text}");
            assert_eq!(result.note.as_deref(), note, "{text}");
        }
    }

    fn entry(apply_id: &str, seq: u64, host: &str, finished: bool) -> JournalEntry {
        JournalEntry {
            apply_id: apply_id.into(),
            seq,
            deployment: "deployment.web".into(),
            step: seq as usize,
            host: Some(host.into()),
            action: JournalAction::Deploy,
            version: "2.0.0".into(),
            started_at: format!("2026-01-01T00:00:0{seq}Z"),
            finished_at: finished.then(|| "2026-01-01T00:00:09Z".to_string()),
            result: finished.then(|| "deployed".into()),
        }
    }

    #[test]
    fn a_killed_apply_is_settled_into_history_and_the_journal_emptied() {
        let mut state = State::new("prod");
        state.journal = vec![
            entry("killed", 1, "h1", true),
            entry("killed", 2, "h2", false),
        ];
        assert_eq!(state.interrupted_applies(), ["killed"]);
        assert_eq!(
            state
                .uncertain_steps()
                .map(|e| e.host.as_deref())
                .collect::<Vec<_>>(),
            [Some("h2")]
        );
        state.settle_journal();
        assert!(state.journal.is_empty());
        let recorded = &state.history[0];
        assert_eq!(recorded.apply_id, "killed");
        assert_eq!(recorded.result, HistoryResult::Interrupted);
        assert_eq!(recorded.started_at, "2026-01-01T00:00:01Z");
        assert_eq!(recorded.finished_at, None);
        assert_eq!(recorded.versions["deployment.web"], "2.0.0");
    }

    #[test]
    fn a_traffic_step_carries_its_share_and_history_keeps_the_version_only() {
        let mut traffic = entry("killed", 1, "h1", false);
        traffic.host = None;
        traffic.action = JournalAction::Traffic;
        traffic.version = JournalEntry::traffic_version("2.0.0", 25);
        assert_eq!(traffic.version, "2.0.0 25%");
        assert_eq!(traffic.traffic_percent(), Some(25));
        assert_eq!(traffic.version_moved_to(), "2.0.0");
        assert_eq!(
            traffic.describe(),
            "deployment.web step 1: traffic 2.0.0 25%"
        );
        let deploy = entry("killed", 2, "h1", true);
        assert_eq!(deploy.traffic_percent(), None);
        assert_eq!(deploy.version_moved_to(), "2.0.0");

        let mut state = State::new("prod");
        state.journal = vec![traffic];
        state.settle_journal();
        assert_eq!(state.history[0].versions["deployment.web"], "2.0.0");
    }

    #[test]
    fn an_apply_with_a_history_entry_is_not_interrupted_and_an_empty_journal_is_not_stored() {
        let mut state = State::new("prod");
        state.journal = vec![entry("done", 1, "h1", true)];
        state.history.push(HistoryEntry {
            apply_id: "done".into(),
            operation: HistoryOperation::Apply,
            who: "me".into(),
            started_at: String::new(),
            finished_at: None,
            plan_digest: None,
            versions: BTreeMap::new(),
            result: HistoryResult::Succeeded,
            approvals: Vec::new(),
        });
        assert!(state.interrupted_applies().is_empty());
        state.settle_journal();
        assert_eq!(state.history.len(), 1);
        let json = serde_json::to_string(&state).unwrap();
        assert!(!json.contains("journal"), "{json}");
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    fn entry_json(operation: &str, result: &str) -> serde_json::Value {
        serde_json::json!({
            "apply_id": "a1",
            "operation": operation,
            "who": "alice",
            "started_at": "2026-01-02T03:04:00Z",
            "versions": { "deployment.web": "1.0.0" },
            "result": result,
        })
    }

    #[test]
    fn every_operation_and_result_is_written_as_its_word_and_read_back() {
        assert_eq!(HistoryOperation::ALL.len(), HistoryOperation::NAMES.len());
        for (operation, word) in HistoryOperation::ALL.iter().zip(HistoryOperation::NAMES) {
            assert_eq!(operation.to_string(), *word);
            let json = serde_json::to_string(operation).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            let read: HistoryOperation = serde_json::from_str(&json).unwrap();
            assert_eq!(&read, operation);
        }
        assert_eq!(
            HistoryOperation::NAMES,
            [
                "apply",
                "rollback",
                "approve",
                "reject",
                "state-rm",
                "state-push"
            ]
        );
        assert_eq!(HistoryResult::ALL.len(), HistoryResult::NAMES.len());
        for (result, word) in HistoryResult::ALL.iter().zip(HistoryResult::NAMES) {
            assert_eq!(result.to_string(), *word);
            let json = serde_json::to_string(result).unwrap();
            assert_eq!(json, format!("\"{word}\""));
            let read: HistoryResult = serde_json::from_str(&json).unwrap();
            assert_eq!(&read, result);
        }
        assert_eq!(
            HistoryResult::NAMES,
            [
                "succeeded",
                "failed",
                "paused",
                "rolled_back",
                "interrupted",
                "waiting_approval",
                "approved",
                "rejected",
                "in_progress",
            ]
        );
    }

    #[test]
    fn an_entry_is_written_with_the_words_it_was_read_with() {
        let json = entry_json("state-rm", "waiting_approval");
        let entry: HistoryEntry = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(entry.operation, HistoryOperation::StateRm);
        assert_eq!(entry.result, HistoryResult::WaitingApproval);
        assert_eq!(serde_json::to_value(&entry).unwrap(), json);
    }

    #[test]
    fn an_unknown_operation_or_result_loads_and_is_written_back_unchanged() {
        let json = entry_json("state-mv", "half done");
        let entry: HistoryEntry = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(entry.operation, HistoryOperation::Other("state-mv".into()));
        assert_eq!(entry.result, HistoryResult::Other("half done".into()));
        assert_eq!(entry.operation.as_str(), "state-mv");
        assert_eq!(entry.result.to_string(), "half done");
        assert_eq!(serde_json::to_value(&entry).unwrap(), json);

        // Within a whole state, as a file holds it.
        let mut state = State::new("prod");
        state.history.push(entry);
        let text = serde_json::to_string_pretty(&state).unwrap();
        assert!(text.contains("\"operation\": \"state-mv\""), "{text}");
        assert!(text.contains("\"result\": \"half done\""), "{text}");
        let read: State = serde_json::from_str(&text).unwrap();
        assert_eq!(read, state);
        assert_eq!(serde_json::to_string_pretty(&read).unwrap(), text);
    }

    #[test]
    fn the_state_files_of_the_fixtures_load_and_keep_their_history_as_written() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/states");
        let mut files = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let written: serde_json::Value = serde_json::from_str(&text).unwrap();
                let state: State = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(state.history.iter().all(|h| !matches!(
                    h.operation,
                    HistoryOperation::Other(_)
                ) && !matches!(
                    h.result,
                    HistoryResult::Other(_)
                )));
                assert_eq!(
                    serde_json::to_value(&state).unwrap()["history"],
                    written["history"],
                    "{}",
                    path.display()
                );
                files += 1;
            }
        }
        assert!(files > 0, "no state fixtures under {}", root.display());
    }
}

#[cfg(test)]
mod tests {
    use super::DeploymentStatus;

    #[test]
    fn a_status_reads_as_the_word_state_files_hold() {
        for status in [
            DeploymentStatus::Deployed,
            DeploymentStatus::Partial,
            DeploymentStatus::InProgress,
            DeploymentStatus::Failed,
            DeploymentStatus::RolledBack,
        ] {
            assert_eq!(
                serde_json::to_value(&status).unwrap(),
                serde_json::Value::String(status.to_string())
            );
        }
    }
}

//! State kept in an S3 bucket (or an S3-compatible store).
//!
//! Each environment has one object, `<prefix><environment>.json`, and while
//! someone works on it a lock object `<prefix><environment>.json.lock`. Both
//! rely on S3 conditional writes, never on a read followed by a write:
//!
//! - the lock is created with `If-None-Match: *`, so of any number of
//!   processes racing for it exactly one succeeds; the others read it back
//!   and report its holder. It is removed with `If-Match` on its own ETag, so
//!   a release never removes a lock someone else has taken since;
//! - the backend remembers, per environment, the ETag of the state it last
//!   read or wrote, and writes with `If-Match` on that ETag (`If-None-Match: *`
//!   when it saw no state), so a write based on an old read is refused with
//!   [`StateError::Conflict`] instead of replacing someone else's newer state.
//!
//! An apply's host steps ([`Backend::append`]) are not written as the whole
//! state object: each is a small object `<prefix><environment>.json.journal/
//! <serial>`, created with `If-None-Match: *` and holding a
//! [`crate::state::StateDelta`] and the ETag of the state object it continues.
//! A read lists them and replays those that continue the object it read, in
//! serial order. A whole write (a deployment's start and end, gates, the end
//! of the apply, or after [`FOLD_EVERY`] deltas or once they outweigh the
//! state) folds them: the state object is written, then the delta objects are
//! deleted; one a failed delete leaves behind continues an object that is no
//! longer there and is ignored.
//!
//! Credentials and region come from aws-config's standard chain (environment,
//! profile, SSO, instance metadata...), with `region` and `profile` of the
//! backend block taking precedence. S3 keeps no `.backup` object: enable
//! bucket versioning to keep earlier versions.
//!
//! [`Backend`] is synchronous and is called both from plain code and from
//! inside the apply's tokio runtime. The SDK is async, so every request runs on
//! a small runtime owned by a dedicated thread of this backend; the caller
//! waits for the answer on a plain channel (inside a multi-thread runtime
//! through `block_in_place`), which is safe from any context and never nests
//! runtimes.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::state::lock::{encode_lock, Acquiring};
use crate::state::{
    decode_state, encode_state, validate_environment_name, Backend, IdentityError, LockGuard,
    LockInfo, ReplayError, State, StateDelta, StateError, Touched,
};

/// A whole write folds the delta objects once there are this many.
const FOLD_EVERY: u32 = 256;

/// How many delta objects a read fetches at once.
const FETCH_AT_ONCE: usize = 16;

/// One delta object: a host step's records and the state object they continue.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DeltaObject {
    /// The ETag of the state object the delta applies to.
    continues: String,
    delta: StateDelta,
}

/// The delta objects of one environment this backend knows of.
#[derive(Debug, Clone, Default)]
struct KnownJournal {
    /// Every delta object listed by the last read or created since: the
    /// next whole write deletes them.
    keys: Vec<String>,
    /// How many of them continue the state object, and their size.
    continuing: u32,
    bytes: u64,
    /// The size of the state object.
    state_bytes: u64,
}

/// The settings of a `backend "s3"` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// Prepended to every key, e.g. `"myapp/"`.
    pub prefix: String,
    /// Overrides the region of the AWS configuration.
    pub region: Option<String>,
    /// URL of an S3-compatible store; requests then use path-style addressing.
    pub endpoint: Option<String>,
    /// AWS profile to take credentials and region from.
    pub profile: Option<String>,
}

/// How long one request may take, retries included, before it fails.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to try again when a lock disappears between our refused create
/// and our read of its holder (its holder released it just then).
const RELEASED_MEANWHILE_RETRIES: u32 = 5;

/// State objects in one S3 bucket under one prefix.
#[derive(Clone)]
pub struct S3Backend {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Asks who the credentials belong to (approvals record it).
    sts: aws_sdk_sts::Client,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    bridge: Bridge,
    /// What this backend last saw of each environment's state object.
    seen: Mutex<HashMap<String, Seen>>,
    /// The delta objects of each environment it knows of.
    journals: Mutex<HashMap<String, KnownJournal>>,
}

/// The state object of one environment as this backend last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// There was none.
    Absent,
    /// It had this ETag.
    ETag(String),
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3Backend")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .field("endpoint", &self.inner.endpoint)
            .finish()
    }
}

impl S3Backend {
    /// Open the bucket with credentials and region from aws-config's standard
    /// chain (`settings.region` and `settings.profile` win over it).
    pub fn open(settings: &S3Settings) -> Result<S3Backend, StateError> {
        let bridge = Bridge::start(&settings.bucket)?;
        let region = settings.region.clone();
        let profile = settings.profile.clone();
        let sdk_config = bridge.run(&settings.bucket, async move {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = region {
                loader = loader.region(Region::new(region));
            }
            if let Some(profile) = profile {
                loader = loader.profile_name(profile);
            }
            loader.load().await
        })?;
        S3Backend::with_bridge(settings, &sdk_config, bridge)
    }

    /// Open the bucket with an SDK configuration made elsewhere (tests, or a
    /// caller that already loaded one). `settings.endpoint` still applies.
    pub fn with_sdk_config(
        settings: &S3Settings,
        sdk_config: &SdkConfig,
    ) -> Result<S3Backend, StateError> {
        let bridge = Bridge::start(&settings.bucket)?;
        S3Backend::with_bridge(settings, sdk_config, bridge)
    }

    fn with_bridge(
        settings: &S3Settings,
        sdk_config: &SdkConfig,
        bridge: Bridge,
    ) -> Result<S3Backend, StateError> {
        let location = format!("s3://{}/{}", settings.bucket, settings.prefix);
        if settings.bucket.is_empty() {
            return Err(StateError::Remote {
                action: "open",
                location,
                detail: "the bucket name is empty".to_string(),
            });
        }
        let region = settings
            .region
            .clone()
            .map(Region::new)
            .or_else(|| sdk_config.region().cloned());
        let Some(region) = region else {
            return Err(StateError::Remote {
                action: "open",
                location,
                detail: "no AWS region is configured: set region in the backend \"s3\" block, \
                         or AWS_REGION, or a region in the AWS profile"
                    .to_string(),
            });
        };
        let mut config = aws_sdk_s3::config::Builder::from(sdk_config)
            .region(region)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| sdk_config.endpoint_url().map(str::to_string));
        if let Some(endpoint) = &endpoint {
            // S3-compatible stores (and local test servers) are addressed by
            // path, not by bucket host name.
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        let mut sts = aws_sdk_sts::config::Builder::from(sdk_config)
            .region(
                settings
                    .region
                    .clone()
                    .map(Region::new)
                    .or_else(|| sdk_config.region().cloned()),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        Ok(S3Backend {
            inner: Arc::new(Inner {
                client: Client::from_conf(config.build()),
                sts: aws_sdk_sts::Client::from_conf(sts.build()),
                bucket: settings.bucket.clone(),
                prefix: settings.prefix.clone(),
                endpoint,
                bridge,
                seen: Mutex::new(HashMap::new()),
                journals: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// `<prefix><environment>.json`
    pub fn state_key(&self, environment: &str) -> Result<String, StateError> {
        validate_environment_name(environment)?;
        Ok(format!("{}{environment}.json", self.inner.prefix))
    }

    /// `<prefix><environment>.json.journal/`: where its delta objects are.
    pub fn journal_prefix(&self, environment: &str) -> Result<String, StateError> {
        Ok(format!("{}.journal/", self.state_key(environment)?))
    }

    /// `<prefix><environment>.json.lock`
    pub fn lock_key(&self, environment: &str) -> Result<String, StateError> {
        Ok(format!("{}.lock", self.state_key(environment)?))
    }

    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }
}

impl Inner {
    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StateError> {
        self.bridge.run(&self.bucket, future)
    }

    fn remember(&self, environment: &str, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(environment.to_string(), seen);
    }

    fn last_seen(&self, environment: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(environment)
            .cloned()
    }

    fn journal(&self, environment: &str) -> KnownJournal {
        self.journals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(environment)
            .cloned()
            .unwrap_or_default()
    }

    fn remember_journal(&self, environment: &str, journal: KnownJournal) {
        self.journals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(environment.to_string(), journal);
    }

    /// Every key under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let owned_prefix = prefix.to_string();
        let keys = self.run(async move {
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let output = client
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&owned_prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(Failure::from_sdk)?;
                keys.extend(
                    output
                        .contents()
                        .iter()
                        .filter_map(|object| object.key().map(str::to_string)),
                );
                match output.next_continuation_token() {
                    Some(next) if output.is_truncated() == Some(true) => {
                        token = Some(next.to_string());
                    }
                    _ => break,
                }
            }
            Ok::<_, Failure>(keys)
        })?;
        let mut keys =
            keys.map_err(|failure| failure.into_state_error("list", self.location(prefix)))?;
        keys.sort();
        Ok(keys)
    }

    /// The contents of the objects at `keys`, in the same order, fetched
    /// [`FETCH_AT_ONCE`] at a time; `None` for one that is gone.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        let mut contents = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(FETCH_AT_ONCE) {
            let client = self.client.clone();
            let bucket = self.bucket.clone();
            let chunk_keys = chunk.to_vec();
            let fetched = self.run(async move {
                let mut fetches = tokio::task::JoinSet::new();
                for (index, key) in chunk_keys.into_iter().enumerate() {
                    let client = client.clone();
                    let bucket = bucket.clone();
                    fetches.spawn(async move {
                        let result = async {
                            let output = client
                                .get_object()
                                .bucket(bucket)
                                .key(&key)
                                .send()
                                .await
                                .map_err(Failure::from_sdk)?;
                            let body = output
                                .body
                                .collect()
                                .await
                                .map_err(|error| Failure::other(error_chain(&error)))?;
                            Ok::<_, Failure>(body.into_bytes().to_vec())
                        }
                        .await;
                        (index, key, result)
                    });
                }
                let mut fetched = Vec::new();
                while let Some(joined) = fetches.join_next().await {
                    fetched.push(joined.expect("a fetch task does not panic"));
                }
                fetched
            })?;
            let mut ordered: Vec<Option<Vec<u8>>> = vec![None; chunk.len()];
            for (index, key, result) in fetched {
                match result {
                    Ok(body) => ordered[index] = Some(body),
                    Err(failure) if failure.is_missing_key() => {}
                    Err(failure) => {
                        return Err(
                            failure.into_state_error("read state delta", self.location(&key))
                        )
                    }
                }
            }
            contents.extend(ordered);
        }
        Ok(contents)
    }

    /// Delete the objects at `keys` (1,000 to a request); `false` when some
    /// could not be.
    fn delete_all(&self, keys: &[String]) -> bool {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        keys.chunks(1000).all(|chunk| {
            let objects: Result<Vec<ObjectIdentifier>, _> = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect();
            let Ok(delete) = objects.and_then(|objects| {
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
            }) else {
                return false;
            };
            let client = self.client.clone();
            let bucket = self.bucket.clone();
            let deleted = self.run(async move {
                client
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
            });
            matches!(deleted, Ok(Ok(output)) if output.errors().is_empty())
        })
    }

    /// The object at `key` and its ETag, or `None` when there is none.
    fn get(&self, key: &str, action: &'static str) -> Result<Option<Object>, StateError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let owned_key = key.to_string();
        let result = self.run(async move {
            let output = client
                .get_object()
                .bucket(bucket)
                .key(owned_key)
                .send()
                .await
                .map_err(Failure::from_sdk)?;
            let etag = output.e_tag().map(str::to_string);
            let body = output
                .body
                .collect()
                .await
                .map_err(|error| Failure::other(error_chain(&error)))?;
            Ok::<_, Failure>((body.into_bytes().to_vec(), etag))
        })?;
        match result {
            Ok(found) => Ok(Some(found)),
            Err(failure) if failure.is_missing_key() => Ok(None),
            Err(failure) => Err(failure.into_state_error(action, self.location(key))),
        }
    }

    /// Put `contents` at `key` on condition; `Ok(Err(failure))` when the
    /// condition did not hold (or another request failed).
    fn put(
        &self,
        key: &str,
        contents: Vec<u8>,
        condition: Condition,
    ) -> Result<Result<Option<String>, Failure>, StateError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let key = key.to_string();
        self.run(async move {
            let request = client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(contents));
            let request = match condition {
                Condition::Absent => request.if_none_match("*"),
                Condition::ETag(etag) => request.if_match(etag),
            };
            request
                .send()
                .await
                .map(|output| output.e_tag().map(str::to_string))
                .map_err(Failure::from_sdk)
        })
    }

    /// Delete `key` if its ETag is still `etag`: `Ok(false)` when it is not
    /// (or the object is gone).
    fn delete_if(&self, key: &str, etag: &str, action: &'static str) -> Result<bool, StateError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let owned_key = key.to_string();
        let etag = etag.to_string();
        let result = self.run(async move {
            client
                .delete_object()
                .bucket(bucket)
                .key(owned_key)
                .if_match(etag)
                .send()
                .await
                .map_err(Failure::from_sdk)
        })?;
        match result {
            Ok(_) => Ok(true),
            Err(failure) if failure.is_precondition_failed() || failure.is_missing_key() => {
                Ok(false)
            }
            // A store without conditional deletes: the caller checked the
            // object just before, so delete it plainly.
            Err(failure) if failure.code.as_deref() == Some("NotImplemented") => {
                self.delete(key, action)?;
                Ok(true)
            }
            Err(failure) => Err(failure.into_state_error(action, self.location(key))),
        }
    }

    fn delete(&self, key: &str, action: &'static str) -> Result<(), StateError> {
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let owned_key = key.to_string();
        let result = self.run(async move {
            client
                .delete_object()
                .bucket(bucket)
                .key(owned_key)
                .send()
                .await
                .map_err(Failure::from_sdk)
        })?;
        result
            .map(drop)
            .map_err(|failure| failure.into_state_error(action, self.location(key)))
    }

    /// The lock of `environment` and its ETag, if there is one.
    fn read_lock(
        &self,
        environment: &str,
        key: &str,
    ) -> Result<Option<(LockInfo, Option<String>)>, StateError> {
        let Some((contents, etag)) = self.get(key, "read lock object")? else {
            return Ok(None);
        };
        match serde_json::from_slice::<LockInfo>(&contents) {
            Ok(holder) => Ok(Some((holder, etag))),
            Err(error) => Err(StateError::LockUnreadable {
                environment: environment.to_string(),
                path: PathBuf::from(self.location(key)),
                detail: error.to_string(),
            }),
        }
    }

    /// Remove our own lock: only while it still holds `lock_id`.
    fn release_lock(
        &self,
        environment: &str,
        key: &str,
        lock_id: &str,
        etag: Option<&str>,
    ) -> Result<(), StateError> {
        if let Some(etag) = etag {
            if self.delete_if(key, etag, "remove lock object")? {
                return Ok(());
            }
        }
        // No ETag to go by, or the object changed: look at what is there.
        match self.read_lock(environment, key)? {
            Some((holder, Some(etag))) if holder.id == lock_id => {
                self.delete_if(key, &etag, "remove lock object")?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Store `state` as it is, on condition of what this backend saw last.
    fn store(&self, state: &State) -> Result<(), StateError> {
        let environment = state.environment.as_str();
        let key = self.state_key_of(environment);
        let contents = encode_state(state)?;
        // Never read: expect no state, so an unseen state is never replaced.
        let condition = match self.last_seen(environment) {
            Some(Seen::ETag(etag)) => Condition::ETag(etag),
            Some(Seen::Absent) | None => Condition::Absent,
        };
        let state_bytes = contents.len() as u64;
        let etag = self.put_own(
            environment,
            &key,
            contents,
            condition,
            ("write state object", "read state object"),
        )?;
        let etag = match etag {
            Some(etag) => Some(etag),
            // A store that returns no ETag: ask for it.
            None => self
                .get(&key, "read state object")?
                .and_then(|(_, etag)| etag),
        };
        match etag {
            Some(etag) => self.remember(environment, Seen::ETag(etag)),
            None => {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(environment);
            }
        }
        let journal = self.journal(environment);
        self.remember_journal(
            environment,
            KnownJournal {
                state_bytes,
                ..journal
            },
        );
        Ok(())
    }

    /// Put `contents` at `key` (of `environment`'s state) on `condition`,
    /// returning the ETag the store gave it. A refused condition is a
    /// [`StateError::Conflict`], unless what is there is `contents`: a
    /// retried request whose first attempt did land finds its own write, and
    /// that is success. `actions` name the write and the read in messages.
    fn put_own(
        &self,
        environment: &str,
        key: &str,
        contents: Vec<u8>,
        condition: Condition,
        (write, read): (&'static str, &'static str),
    ) -> Result<Option<String>, StateError> {
        match self.put(key, contents.clone(), condition)? {
            Ok(etag) => Ok(etag),
            Err(failure) if failure.is_conflict() => match self.get(key, read)? {
                Some((current, etag)) if current == contents => Ok(etag),
                _ => Err(StateError::Conflict {
                    environment: environment.to_string(),
                    location: self.location(key),
                }),
            },
            Err(failure) => Err(failure.into_state_error(write, self.location(key))),
        }
    }

    fn state_key_of(&self, environment: &str) -> String {
        format!("{}{environment}.json", self.prefix)
    }
}

/// An error and its causes, "outer: inner: innermost", each said once.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An object's contents and its ETag.
type Object = (Vec<u8>, Option<String>);

/// The condition of a conditional put.
enum Condition {
    /// `If-None-Match: *`: only if there is no object.
    Absent,
    /// `If-Match: <etag>`: only if the object is still this one.
    ETag(String),
}

/// A failed request: its HTTP status and S3 error code when there was a
/// response, and the whole error chain for messages.
#[derive(Debug)]
struct Failure {
    status: Option<u16>,
    code: Option<String>,
    detail: String,
}

impl Failure {
    fn from_sdk<E>(error: SdkError<E>) -> Failure
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        Failure {
            status: error
                .raw_response()
                .map(|response| response.status().as_u16()),
            code: error.code().map(str::to_string),
            detail: error_chain(&error),
        }
    }

    fn other(detail: String) -> Failure {
        Failure {
            status: None,
            code: None,
            detail,
        }
    }

    fn is_missing_key(&self) -> bool {
        self.status == Some(404) && self.code.as_deref() != Some("NoSuchBucket")
    }

    fn is_precondition_failed(&self) -> bool {
        self.status == Some(412)
    }

    /// The condition of a write did not hold: 412, 409 (a concurrent
    /// conditional write is in progress) or 404 (If-Match on an object that
    /// was deleted meanwhile).
    fn is_conflict(&self) -> bool {
        matches!(self.status, Some(409 | 412)) || self.is_missing_key()
    }

    fn into_state_error(self, action: &'static str, location: String) -> StateError {
        let detail = match self.code.as_deref() {
            Some("NoSuchBucket") => format!(
                "the bucket does not exist; create it, or fix bucket in the backend \"s3\" block \
                 ({})",
                self.detail
            ),
            _ if self.status.is_none() && self.detail.contains("credentials") => format!(
                "{}. slipway takes AWS credentials from the standard chain: \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE, or profile \
                 in the backend \"s3\" block), SSO, or a container or instance role",
                self.detail.trim_end_matches('.')
            ),
            _ => self.detail,
        };
        StateError::Remote {
            action,
            location,
            detail,
        }
    }
}

impl S3Backend {
    /// Put the deltas of `state`'s environment that continue the state
    /// object read (ETag `etag`) into `state`, in serial order. Returns what
    /// the journal holds.
    fn replay_journal(
        &self,
        state: &mut State,
        etag: Option<String>,
    ) -> Result<KnownJournal, StateError> {
        let prefix = self.journal_prefix(&state.environment)?;
        let keys = self.inner.list(&prefix)?;
        let mut journal = KnownJournal::default();
        if keys.is_empty() {
            return Ok(journal);
        }
        let contents = self.inner.get_many(&keys)?;
        let state_location = self
            .inner
            .location(&self.inner.state_key_of(&state.environment));
        let problem = |problem: String, advice: &'static str| StateError::Journal {
            journal: PathBuf::from(self.inner.location(&prefix)),
            state: PathBuf::from(&state_location),
            problem,
            advice,
        };
        let mut objects = Vec::with_capacity(keys.len());
        for (key, contents) in keys.iter().zip(contents) {
            let Some(contents) = contents else { continue };
            let object: DeltaObject = serde_json::from_slice(&contents).map_err(|error| {
                problem(
                    format!("has an unreadable object {key}: {error}"),
                    "Repair or delete that object by hand, then run `slipway plan -refresh` \
                     to see what the hosts serve",
                )
            })?;
            let continues = etag.as_deref() == Some(object.continues.as_str());
            if continues {
                journal.continuing += 1;
                journal.bytes += contents.len() as u64;
            }
            objects.push((continues, object.delta));
        }
        // One that does not continue this object and is not newer was folded
        // into it already; a failed delete left it.
        match state.replay(objects.iter().map(|(continues, delta)| (*continues, delta))) {
            Ok(_) => {}
            Err(ReplayError::Gap { serial, next }) => {
                return Err(problem(
                    format!("skips from serial {serial} to {next}: a step is missing"),
                    "Run `slipway plan -refresh` to see what the hosts serve, and repair \
                     the state with `slipway state pull` and `slipway state push`",
                ))
            }
            Err(ReplayError::Replaced { serial, newer }) => {
                return Err(problem(
                    format!(
                        "has a step (serial {newer}) recorded on top of another state object, \
                         not this one (serial {serial}): the state object was replaced after \
                         an apply was killed"
                    ),
                    "Put back the state object the steps continue (with bucket versioning, \
                     an earlier version), or, if this state is the one to keep, delete the \
                     objects under the journal prefix and run `slipway plan -refresh` to see \
                     what the hosts serve",
                ))
            }
        }
        journal.keys = keys;
        Ok(journal)
    }

    /// After a whole write: delete the delta objects it holds. One a delete
    /// misses is harmless (it continues a state object that is gone) and is
    /// tried again at the next whole write.
    fn fold_journal(&self, environment: &str) {
        let mut journal = self.inner.journal(environment);
        if self.inner.delete_all(&journal.keys) {
            journal.keys.clear();
        }
        journal.continuing = 0;
        journal.bytes = 0;
        self.inner.remember_journal(environment, journal);
    }
}

/// The ETag of what was seen, if it was an object with one.
fn etag_of(seen: &Option<Seen>) -> Option<String> {
    match seen {
        Some(Seen::ETag(etag)) => Some(etag.clone()),
        _ => None,
    }
}

impl Backend for S3Backend {
    fn describe(&self) -> String {
        let mut text = format!("s3://{}/{}", self.inner.bucket, self.inner.prefix);
        if let Some(endpoint) = &self.inner.endpoint {
            text.push_str(&format!(" at {endpoint}"));
        }
        text
    }

    fn environments(&self) -> Result<Vec<String>, StateError> {
        let keys = self.inner.list(&self.inner.prefix)?;
        let mut environments: Vec<String> = keys
            .iter()
            .filter_map(|key| key.strip_prefix(self.inner.prefix.as_str()))
            .filter_map(|name| name.strip_suffix(".json"))
            .filter(|name| validate_environment_name(name).is_ok())
            .map(str::to_string)
            .collect();
        environments.sort();
        environments.dedup();
        Ok(environments)
    }

    fn read(&self, environment: &str) -> Result<Option<State>, StateError> {
        let key = self.state_key(environment)?;
        let Some((contents, etag)) = self.inner.get(&key, "read state object")? else {
            self.inner.remember(environment, Seen::Absent);
            return Ok(None);
        };
        // Remembered even when the contents turn out unreadable, so that a
        // repaired state can be written over them.
        match etag {
            Some(etag) => self.inner.remember(environment, Seen::ETag(etag)),
            None => {
                self.inner
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(environment);
            }
        }
        let location = PathBuf::from(self.inner.location(&key));
        let mut state = decode_state(&contents, Some(environment), &location, || None)?;
        let journal =
            self.replay_journal(&mut state, etag_of(&self.inner.last_seen(environment)))?;
        self.inner.remember_journal(
            environment,
            KnownJournal {
                state_bytes: contents.len() as u64,
                ..journal
            },
        );
        Ok(Some(state))
    }

    fn write(&self, state: &mut State) -> Result<(), StateError> {
        validate_environment_name(&state.environment)?;
        let previous_serial = state.serial;
        state.serial = previous_serial.saturating_add(1);
        let written = self.inner.store(state);
        if written.is_err() {
            // The stored state did not change, so neither does the serial.
            state.serial = previous_serial;
        }
        written?;
        self.fold_journal(&state.environment);
        Ok(())
    }

    fn append(&self, state: &mut State, touched: &Touched) -> Result<(), StateError> {
        let environment = state.environment.clone();
        let prefix = self.journal_prefix(&environment)?;
        let journal = self.inner.journal(&environment);
        let Some(continues) = etag_of(&self.inner.last_seen(&environment)) else {
            return self.write(state);
        };
        if journal.continuing >= FOLD_EVERY || journal.bytes > journal.state_bytes {
            return self.write(state);
        }
        let previous_serial = state.serial;
        state.serial = previous_serial.saturating_add(1);
        let object = DeltaObject {
            continues,
            delta: StateDelta::capture(state, touched),
        };
        let key = format!("{prefix}{:020}", state.serial);
        let contents = serde_json::to_vec(&object).expect("a state delta serialises");
        let bytes = contents.len() as u64;
        let created = self.inner.put_own(
            &environment,
            &key,
            contents,
            Condition::Absent,
            ("write state delta", "read state delta"),
        );
        if let Err(error) = created {
            state.serial = previous_serial;
            return Err(error);
        }
        let mut journal = journal;
        journal.keys.push(key);
        journal.continuing += 1;
        journal.bytes += bytes;
        self.inner.remember_journal(&environment, journal);
        Ok(())
    }

    fn import(&self, state: &State) -> Result<(), StateError> {
        validate_environment_name(&state.environment)?;
        self.inner.store(state)?;
        self.fold_journal(&state.environment);
        Ok(())
    }

    fn lock(&self, environment: &str, operation: &str) -> Result<LockGuard, StateError> {
        let key = self.lock_key(environment)?;
        let info = LockInfo::for_this_process(environment, operation);
        let contents = encode_lock(&info)?;
        let _acquiring = Acquiring::start();
        let mut attempts = 0;
        loop {
            let failure = match self.inner.put(&key, contents.clone(), Condition::Absent)? {
                Ok(etag) => {
                    let inner = Arc::clone(&self.inner);
                    let lock_id = info.id.clone();
                    let lock_environment = environment.to_string();
                    return Ok(LockGuard::new(info, move || {
                        inner.release_lock(&lock_environment, &key, &lock_id, etag.as_deref())
                    }));
                }
                Err(failure) if failure.is_conflict() => failure,
                Err(failure) => {
                    return Err(
                        failure.into_state_error("create lock object", self.inner.location(&key))
                    )
                }
            };
            match self.inner.read_lock(environment, &key)? {
                // Our own create landed and a retry of it was refused.
                Some((holder, etag)) if holder.id == info.id => {
                    let inner = Arc::clone(&self.inner);
                    let lock_id = info.id.clone();
                    let lock_environment = environment.to_string();
                    return Ok(LockGuard::new(info, move || {
                        inner.release_lock(&lock_environment, &key, &lock_id, etag.as_deref())
                    }));
                }
                Some((holder, _)) => return Err(StateError::Locked(Box::new(holder))),
                // Released just then, or another create still in flight (409).
                None if attempts < RELEASED_MEANWHILE_RETRIES => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempts)));
                }
                None => {
                    return Err(
                        failure.into_state_error("create lock object", self.inner.location(&key))
                    )
                }
            }
        }
    }

    fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError> {
        let key = self.lock_key(environment)?;
        Ok(self
            .inner
            .read_lock(environment, &key)?
            .map(|(holder, _)| holder))
    }

    fn force_unlock(&self, environment: &str, lock_id: &str) -> Result<(), StateError> {
        let key = self.lock_key(environment)?;
        let (holder, etag) = match self.inner.read_lock(environment, &key)? {
            None => {
                return Err(StateError::NotLocked {
                    environment: environment.to_string(),
                })
            }
            Some(found) => found,
        };
        if holder.id != lock_id {
            return Err(StateError::LockIdMismatch {
                environment: environment.to_string(),
                given: lock_id.to_string(),
                actual: holder.id,
            });
        }
        let removed = match &etag {
            Some(etag) => self.inner.delete_if(&key, etag, "remove lock object")?,
            None => false,
        };
        if removed {
            return Ok(());
        }
        // The lock changed between our read and our delete: say what is there now.
        match self.inner.read_lock(environment, &key)? {
            None => Ok(()),
            Some((holder, _)) if holder.id != lock_id => Err(StateError::LockIdMismatch {
                environment: environment.to_string(),
                given: lock_id.to_string(),
                actual: holder.id,
            }),
            Some(_) => Err(StateError::Remote {
                action: "remove lock object",
                location: self.inner.location(&key),
                detail: "the store did not confirm the removal; try again".to_string(),
            }),
        }
    }

    fn verified_identity(&self) -> Option<Result<String, IdentityError>> {
        let sts = self.inner.sts.clone();
        let answer = self.inner.run(async move {
            sts.get_caller_identity()
                .send()
                .await
                .map_err(|e| IdentityError::Request(crate::aws::error_text(&e)))
                .and_then(|output| output.arn().map(str::to_string).ok_or(IdentityError::NoArn))
        });
        Some(answer.map_err(IdentityError::from).and_then(|inner| inner))
    }
}

/// A job for the bridge's runtime.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs futures on a current-thread tokio runtime owned by a thread of its
/// own, for callers that may or may not be inside another runtime. The thread
/// ends, and its runtime is dropped there, when the last sender is dropped.
struct Bridge {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Bridge {
    fn start(bucket: &str) -> Result<Bridge, StateError> {
        let (jobs, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let started = std::thread::Builder::new()
            .name("slipway-s3".to_string())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    // Dropping the receiver makes every request fail with a message.
                    return;
                };
                runtime.block_on(async move {
                    while let Some(job) = incoming.recv().await {
                        tokio::spawn(job);
                    }
                });
            });
        match started {
            Ok(_) => Ok(Bridge { jobs }),
            Err(error) => Err(StateError::Remote {
                action: "start the S3 client for",
                location: format!("s3://{bucket}"),
                detail: error.to_string(),
            }),
        }
    }

    /// Run `future` on the bridge's runtime and wait for its output.
    fn run<T: Send + 'static>(
        &self,
        bucket: &str,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StateError> {
        let (done, output) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            let _ = done.send(future.await);
        });
        let unavailable = || StateError::Remote {
            action: "reach",
            location: format!("s3://{bucket}"),
            detail: "the S3 client's runtime is not running".to_string(),
        };
        self.jobs.send(job).map_err(|_| unavailable())?;
        wait_blocking(move || output.recv()).map_err(|_| unavailable())
    }
}

/// Block this thread on `wait`. Inside a multi-thread tokio runtime, tell the
/// runtime first (`block_in_place`) so its other tasks move to other workers;
/// elsewhere (plain threads, a current-thread runtime) just block: the work
/// waited for runs on the bridge's own thread, so nothing deadlocks.
fn wait_blocking<T>(wait: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable_backend() -> S3Backend {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        S3Backend::with_sdk_config(
            &S3Settings {
                bucket: "state".to_string(),
                prefix: "team/".to_string(),
                // Nothing listens on port 9 of loopback.
                endpoint: Some("http://127.0.0.1:9".to_string()),
                ..S3Settings::default()
            },
            &sdk_config,
        )
        .expect("backend")
    }

    #[test]
    fn keys_are_prefix_environment_json_and_lock() {
        let backend = unreachable_backend();
        assert_eq!(backend.state_key("prod").unwrap(), "team/prod.json");
        assert_eq!(backend.lock_key("prod").unwrap(), "team/prod.json.lock");
        assert!(matches!(
            backend.state_key("../prod"),
            Err(StateError::InvalidEnvironmentName { .. })
        ));
        assert_eq!(backend.describe(), "s3://state/team/ at http://127.0.0.1:9");
    }

    #[test]
    fn a_missing_region_is_reported_when_opening() {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let error = S3Backend::with_sdk_config(
            &S3Settings {
                bucket: "state".to_string(),
                ..S3Settings::default()
            },
            &sdk_config,
        )
        .expect_err("no region");
        assert!(error.to_string().contains("no AWS region"), "{error}");
    }

    #[test]
    fn bridge_runs_from_plain_threads_and_from_inside_runtimes() {
        let bridge = Bridge::start("b").expect("bridge");
        assert_eq!(bridge.run("b", async { 1 + 1 }).unwrap(), 2);

        let bridge = Arc::new(bridge);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let from_worker = Arc::clone(&bridge);
        let answer = multi.block_on(async move {
            tokio::spawn(async move { from_worker.run("b", async { 3 }).unwrap() })
                .await
                .unwrap()
        });
        assert_eq!(answer, 3);
        let from_block_on = Arc::clone(&bridge);
        assert_eq!(
            multi.block_on(async move { from_block_on.run("b", async { 4 }).unwrap() }),
            4
        );

        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let from_current = Arc::clone(&bridge);
        assert_eq!(
            current.block_on(async move { from_current.run("b", async { 5 }).unwrap() }),
            5
        );
    }

    #[test]
    fn an_unreachable_store_is_an_error_naming_the_object() {
        let backend = unreachable_backend();
        let error = backend.read("prod").expect_err("nothing listens");
        let message = error.to_string();
        assert!(
            message.starts_with("could not read state object s3://state/team/prod.json: "),
            "{message}"
        );
    }
}

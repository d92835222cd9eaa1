//! The closed sets of words the language accepts (`strategy`, `on_failure`,
//! `no_data`, ...) as enums, each with the list of its words for the schema.
//!
//! The schema check refuses any other word with a location before a value is
//! decoded, so decoding one of these never fails on checked input; after that,
//! decisions match on the enum, never on the text. Files keep the words
//! (serde reads and writes exactly the words listed), so plans and states are
//! unchanged. Nothing here knows what a choice makes slipway do.
//!
//! `open_choice!` is the same for words slipway records rather than reads
//! from configuration (a state history's operations and results): one it does
//! not know is kept, not refused, so an older slipway reads a newer one's
//! state.

/// Defines a closed choice: the enum, its words in order (`NAMES`, for the
/// schema and its messages), `as_str`, `Display` and serde as those words.
/// Used here and for the plan's own choices (`plan::model`).
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant ),+
        }

        impl $name {
            /// Every word this choice accepts, in the order the docs list them.
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// Every value, in the order of [`Self::NAMES`].
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as written in configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use choice;

/// Defines an open choice: like [`choice!`], plus an `Other` variant that
/// keeps a word this build does not know (written by a newer slipway, or by
/// hand) and writes it back as it was, so reading a file never fails on one.
/// For words slipway records rather than reads from configuration (a state
/// file's history). `Other` is only made by reading: it never holds a listed
/// word.
macro_rules! open_choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word this build does not know, kept as it was read.
            Other(String),
        }

        impl $name {
            /// Every word this build knows, in the order the docs list them.
            #[allow(dead_code)]
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// Every known value, in the order of [`Self::NAMES`].
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as written in the file.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $word, )+
                    $name::Other(word) => word,
                }
            }
        }

        impl From<String> for $name {
            fn from(word: String) -> $name {
                match word.as_str() {
                    $( $word => $name::$variant, )+
                    _ => $name::Other(word),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Other(word) => word,
                    known => known.as_str().to_string(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use open_choice;

choice! {
    /// How a rollout moves a change onto its targets.
    pub enum Strategy {
        AllAtOnce = "all_at_once",
        Rolling = "rolling",
        Canary = "canary",
        BlueGreen = "blue_green",
    }
}

impl Strategy {
    /// Canary and blue/green move by traffic steps (`steps`), not host batches.
    pub fn moves_by_steps(self) -> bool {
        matches!(self, Strategy::Canary | Strategy::BlueGreen)
    }
}

choice! {
    /// What a rollout does when a step fails.
    #[derive(Default)]
    pub enum OnFailure {
        #[default]
        Rollback = "rollback",
        Pause = "pause",
        Abort = "abort",
    }
}

choice! {
    /// How a metric gate judges an evaluation that returned no data.
    #[derive(Default)]
    pub enum NoData {
        #[default]
        Fail = "fail",
        Pass = "pass",
        Pause = "pause",
    }
}

choice! {
    /// Which way a metric gets worse, for `tolerance` against a baseline.
    pub enum Direction {
        HigherIsWorse = "higher_is_worse",
        LowerIsWorse = "lower_is_worse",
    }
}

choice! {
    /// What a metric gate compares with.
    pub enum Baseline {
        PreviousVersion = "previous_version",
    }
}

choice! {
    /// Whether an unknown host key is refused or recorded on first use.
    #[derive(Default)]
    pub enum HostKeyPolicy {
        #[default]
        Strict = "strict",
        AcceptNew = "accept-new",
    }
}

choice! {
    /// How apply reaches a VM environment's hosts.
    #[derive(Default)]
    pub enum TransportKind {
        #[default]
        Ssh = "ssh",
        Local = "local",
    }
}

choice! {
    /// How a VM service's artifact reaches its hosts.
    pub enum ArtifactDelivery {
        /// The runner sends it over SSH to every host.
        Push = "push",
        /// Every host downloads it from the source itself (an https URL, or
        /// a presigned URL for an s3 object) and checks its sha256.
        Pull = "pull",
    }
}

choice! {
    /// When a VM hook runs in a host's update.
    pub enum HookWhen {
        BeforeStop = "before_stop",
        AfterStart = "after_start",
        Deregister = "deregister",
        Register = "register",
    }
}

choice! {
    /// Where a command gate runs.
    pub enum CommandOn {
        Hosts = "hosts",
        Runner = "runner",
    }
}

choice! {
    /// The body a notification webhook receives.
    pub enum NotifyFormat {
        Json = "json",
        Slack = "slack",
    }
}

choice! {
    /// ECS launch type of a task definition.
    pub enum LaunchType {
        Fargate = "FARGATE",
        Ec2 = "EC2",
    }
}

choice! {
    /// ECS network mode of a task definition.
    pub enum NetworkMode {
        Awsvpc = "awsvpc",
        Bridge = "bridge",
        Host = "host",
        None = "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_keep_the_words() {
        assert_eq!(
            serde_json::to_string(&Strategy::BlueGreen).unwrap(),
            "\"blue_green\""
        );
        assert_eq!(
            serde_json::from_str::<HostKeyPolicy>("\"accept-new\"").unwrap(),
            HostKeyPolicy::AcceptNew
        );
        assert_eq!(LaunchType::Fargate.to_string(), "FARGATE");
        assert!(serde_json::from_str::<OnFailure>("\"retry\"").is_err());
    }

    #[test]
    fn names_list_every_word_in_order() {
        assert_eq!(
            Strategy::NAMES,
            ["all_at_once", "rolling", "canary", "blue_green"]
        );
        for (index, word) in NoData::NAMES.iter().enumerate() {
            let decoded: NoData = serde_json::from_value(serde_json::json!(word)).unwrap();
            assert_eq!(decoded.as_str(), NoData::NAMES[index]);
        }
    }
}

//! The experiment file as written: serde structures mirroring the YAML, unknown fields
//! refused. Durations and rates stay text (`Text`) so that `validate` reports every bad
//! value at its own position.

use serde::Deserialize;
use std::collections::BTreeMap;
use topology::check::Text;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    pub name: Option<String>,
    /// A path relative to the experiment file, or the topology itself inline.
    pub topology: serde_yaml_ng::Value,
    pub seed: Option<u64>,
    pub roles: Vec<RawRole>,
    #[serde(default)]
    pub prepare: Vec<String>,
    pub stop: RawStop,
    #[serde(default)]
    pub events: Vec<RawEvent>,
    pub scenario: Option<String>,
    pub on_failure: Option<FailurePolicy>,
    /// Cluster mode: what a lost host does to the run.
    pub on_host_failure: Option<FailurePolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Record the failure and go on with the run.
    Continue,
    /// Stop the whole run at the first failure (a process that fails to start, or, for
    /// `on_host_failure`, a host lost).
    Abort,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub name: String,
    /// A node selector: `*`, a group, a node, `group[A-B]`, or a list of these.
    pub nodes: serde_yaml_ng::Value,
    pub command: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub start: RawStart,
    #[serde(default)]
    pub metrics: Vec<RawMetric>,
    pub cpu: Option<Text>,
    pub memory: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStart {
    pub at: Option<Text>,
    pub every: Option<Text>,
    pub jitter: Option<Text>,
    pub order: Option<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// In the order the selector lists the nodes.
    #[default]
    Declared,
    /// Shuffled with the experiment's seed.
    Random,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    pub name: String,
    pub regex: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStop {
    /// Stop once every process of these roles has exited.
    #[serde(default)]
    pub exited: Vec<String>,
    /// Duration cap.
    pub after: Text,
    pub metric: Option<RawMetricStop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetricStop {
    pub name: String,
    pub role: String,
    pub at_least: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub at: Text,
    pub action: String,
    pub nodes: Option<serde_yaml_ng::Value>,
    pub up: Option<Text>,
    pub down: Option<Text>,
    pub latency: Option<Text>,
    pub loss: Option<Text>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub delay: Option<Text>,
}

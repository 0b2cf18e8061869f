//! The topology file as written: serde structures that mirror the YAML, unknown fields
//! rejected. Values with units stay text here; `validate` turns them into numbers so that
//! every bad value can be reported at once, each at its own position.

use crate::check::Text;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    #[serde(default)]
    pub address_plan: RawAddressPlan,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub profiles: BTreeMap<String, RawProfile>,
    pub groups: Vec<RawGroup>,
    #[serde(default)]
    pub delays: Vec<RawDelay>,
    pub delay_matrix: Option<RawMatrix>,
    pub mtu: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAddressPlan {
    pub base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub profile: Option<String>,
    pub delay: Option<Text>,
    pub loss: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub up: Text,
    pub down: Text,
    pub latency: Option<Text>,
    pub loss: Option<Text>,
    pub queue: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    /// A node count (`10`) or a list of node names; checked by the validator.
    pub nodes: serde_yaml_ng::Value,
    pub profile: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelay {
    pub from: String,
    pub to: String,
    pub delay: Option<Text>,
    pub loss: Option<Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatrixFormat {
    /// N lines of N whitespace-separated one-way delays in milliseconds.
    Matrix,
    /// King/Meridian style `i j latency_us` lines, 0-based group indices.
    Triples,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatrix {
    pub file: String,
    pub format: MatrixFormat,
}

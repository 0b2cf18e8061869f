//! The iptables rule that sends traffic between virtual prefixes to the engine's queue,
//! removed again when the guard is dropped, so no rule outlives its engine.

use netctl::iptables::IptablesError;
use std::ops::RangeInclusive;

/// Failure to add or remove the rule.
#[derive(Debug, thiserror::Error)]
#[error("iptables rule `{rule}`: {what}; check that iptables is installed and you are root")]
pub struct RuleError {
    rule: String,
    what: String,
}

/// A `PREROUTING ... -j NFQUEUE` rule of the mangle table (where p2plab's nfqueue backend
/// holds packets: on arrival, so that TCP Small Queues does not count held packets against
/// their sender), deleted on drop.
#[derive(Debug)]
pub struct QueueRule {
    spec: Vec<String>,
}

fn iptables(op: &str, spec: &[String]) -> Result<(), RuleError> {
    let args: Vec<&str> = std::iter::once(op)
        .chain(spec.iter().map(String::as_str))
        .collect();
    netctl::iptables::iptables(&args).map_err(|e| RuleError {
        rule: spec.join(" "),
        what: match e {
            IptablesError::Refused(why) => format!("iptables {op} failed: {why}"),
            other => other.to_string(),
        },
    })
}

impl QueueRule {
    /// Queues arriving packets from `src` to `dst` (CIDR prefixes) to the queues in
    /// `queues`, one engine each. Over several queues the kernel picks by a hash of
    /// (source, destination, protocol), so a pair's packets of one protocol always meet
    /// the same engine and keep their order.
    pub fn prerouting(
        queues: RangeInclusive<u16>,
        src: &str,
        dst: &str,
    ) -> Result<Self, RuleError> {
        let (first, last) = (*queues.start(), *queues.end());
        let target = if first == last {
            ["--queue-num".to_string(), first.to_string()]
        } else {
            ["--queue-balance".to_string(), format!("{first}:{last}")]
        };
        let spec = [
            "PREROUTING",
            "-t",
            "mangle",
            "-s",
            src,
            "-d",
            dst,
            "-j",
            "NFQUEUE",
        ]
        .into_iter()
        .map(String::from)
        .chain(target)
        .collect::<Vec<_>>();
        iptables("-A", &spec)?;
        Ok(Self { spec })
    }

    /// Removes the rule now, reporting failure (drop removes it silently).
    pub fn remove(mut self) -> Result<(), RuleError> {
        let spec = std::mem::take(&mut self.spec);
        iptables("-D", &spec)
    }
}

impl Drop for QueueRule {
    fn drop(&mut self) {
        if !self.spec.is_empty() {
            let _ = iptables("-D", &self.spec);
        }
    }
}

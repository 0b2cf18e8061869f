//! The NFQUEUE rules of the nfqueue backend: a chain of our own in the mangle table, jumped
//! to from PREROUTING, sending packets from a virtual prefix to the delay engine's queue.
//! Applied and removed with one `iptables-restore --noflush` each.
//!
//! PREROUTING, not OUTPUT: a packet the engine holds in OUTPUT still belongs to its sending
//! socket, and TCP Small Queues lets a socket have only about two packets below it, so a
//! TCP flow with 1500-byte packets through a 60 ms hold ran at 2 packets per 60 ms (0.38 of
//! a 2 mbit link). On arrival (after `lo`, after the download shaping) the packet is
//! orphaned, and the sender's window, not the hold, paces it.
//!
//! ICMP is held in OUTPUT instead: a packet's receive timestamp (`SO_TIMESTAMP`, which
//! `ping` reads) is taken when it reaches the host, before PREROUTING, so a hold there is
//! invisible to it and `ping` showed half the round trip. ICMP has no Small Queues.

use crate::objects::{net, Layout};
use netctl::iptables::{iptables, iptables_restore, IptablesError};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use topology::LinkModel;

/// One network's NFQUEUE rules.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct QueueRules {
    /// Our chain in the mangle table.
    pub chain: String,
    /// Queue number the engine listens on.
    pub queue: u16,
    /// Source prefixes whose packets are queued.
    pub prefixes: Vec<(Ipv4Addr, u8)>,
}

/// Where the chain is jumped to from: (built-in chain, match).
const JUMPS: [(&str, &str); 2] = [("PREROUTING", "! -p icmp"), ("OUTPUT", "-p icmp")];

impl QueueRules {
    /// The rules of a network laid out as `layout`: every group prefix of `model` to the
    /// queue of the network's slot.
    pub(crate) fn of(model: &LinkModel, layout: &Layout) -> Self {
        QueueRules {
            chain: format!("P2PLAB{}", layout.slot),
            queue: layout.queue_num(),
            prefixes: model.groups.iter().map(|g| net(g.prefix)).collect(),
        }
    }

    /// The rules as `iptables-restore` input that adds them.
    pub fn add_script(&self) -> String {
        let mut s = format!("*mangle\n:{} - [0:0]\n", self.chain);
        for (ip, len) in &self.prefixes {
            s += &format!(
                "-A {} -s {ip}/{len} -j NFQUEUE --queue-num {}\n",
                self.chain, self.queue
            );
        }
        for (from, matching) in JUMPS {
            s += &format!("-A {from} {matching} -j {}\n", self.chain);
        }
        s += "COMMIT\n";
        s
    }

    /// Equivalent commands, for `--dry-run`.
    pub fn commands(&self) -> Vec<String> {
        let mut v = vec![format!("iptables -t mangle -N {}", self.chain)];
        v.extend(
            self.add_script()
                .lines()
                .filter(|l| l.starts_with("-A"))
                .map(|l| format!("iptables -t mangle {l}")),
        );
        v
    }

    /// Installs the rules.
    pub fn add(&self) -> Result<(), String> {
        restore(&self.add_script())
    }

    /// Removes the rules if present (idempotent).
    pub fn remove(&self) -> Result<(), String> {
        match iptables(&["-t", "mangle", "-S", &self.chain]) {
            Ok(()) => {}
            Err(IptablesError::Refused(_)) => return Ok(()),
            Err(e) => return Err(format!("{e}; install the iptables package")),
        }
        let mut s = "*mangle\n".to_string();
        for (from, matching) in JUMPS {
            let mut check = vec!["-t", "mangle", "-C", from];
            check.extend(matching.split(' '));
            check.extend(["-j", &self.chain]);
            if iptables(&check).is_ok() {
                s += &format!("-D {from} {matching} -j {}\n", self.chain);
            }
        }
        s += &format!("-F {c}\n-X {c}\nCOMMIT\n", c = self.chain);
        restore(&s)
    }
}

fn restore(script: &str) -> Result<(), String> {
    iptables_restore(script).map_err(|e| match e {
        IptablesError::Refused(why) => format!("iptables-restore refused the rules: {why}"),
        IptablesError::Spawn { .. } => format!("{e}; install the iptables package"),
        IptablesError::Io(_) => e.to_string(),
    })
}

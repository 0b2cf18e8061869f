//! Capability probe for `p2plab doctor` and backend selection: tries, in a scratch network
//! namespace that lives only as long as the probe, to create each kind of object shaping
//! needs (cgroups are crate `cgroup`'s to describe).

use crate::iptables::{iptables, IptablesError};
use crate::object::{Field, Handle, Object, Parent, QdiscKind, Target, U32};
use crate::{Host, Op};
use std::net::Ipv4Addr;

/// The result of one probe: `Ok` or what failed, in words.
pub type Check = Result<(), String>;

/// What this kernel can do.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// HTB qdisc and classes.
    pub htb: Check,
    /// IFB devices.
    pub ifb: Check,
    /// clsact qdisc with u32 filters and mirred redirect.
    pub clsact_mirred: Check,
    /// u32 hash tables.
    pub u32_hash: Check,
    /// netem qdisc (`sch_netem`).
    pub netem: Check,
    /// An iptables NFQUEUE rule, and a queue bound to it (by the caller's engine).
    pub nfqueue: Check,
}

/// Shaping backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// HTB + IFB rates, netem delay and loss.
    Netem,
    /// HTB + IFB rates, delay and loss in the userspace NFQUEUE engine.
    Nfqueue,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Netem => "netem",
            Backend::Nfqueue => "nfqueue",
        })
    }
}

impl Capabilities {
    fn rates(&self) -> Check {
        self.htb.clone()?;
        self.ifb.clone()?;
        self.clsact_mirred.clone()?;
        self.u32_hash.clone()
    }

    /// Whether `backend` can run here, or the missing piece and what to install.
    pub fn supports(&self, backend: Backend) -> Check {
        self.rates()?;
        match backend {
            Backend::Netem => self.netem.clone().map_err(|e| {
                format!("{e}; load sch_netem (Debian: part of linux-image-*, RHEL: kernel-modules-extra) or use --shaping nfqueue")
            }),
            Backend::Nfqueue => self.nfqueue.clone().map_err(|e| {
                format!("{e}; install iptables and the nfnetlink_queue/xt_NFQUEUE modules")
            }),
        }
    }

    /// The backend `--shaping auto` picks: netem where it works, else nfqueue.
    pub fn pick(&self) -> Result<Backend, String> {
        [Backend::Netem, Backend::Nfqueue]
            .into_iter()
            .find(|b| self.supports(*b).is_ok())
            .ok_or_else(|| self.supports(Backend::Nfqueue).unwrap_err())
    }
}

/// Runs every probe in a scratch namespace (needs root); `bind_queue` binds and releases
/// NFQUEUE queue 7 there, as the delay engine would (proving `nfnetlink_queue` is there).
pub fn probe(bind_queue: fn() -> Check) -> Capabilities {
    let res = crate::scratch::in_new_netns(move || probe_here(bind_queue))
        .map_err(|e| format!("cannot create a scratch network namespace: {e}; run as root"));
    res.unwrap_or_else(|e| Capabilities {
        htb: Err(e.clone()),
        ifb: Err(e.clone()),
        clsact_mirred: Err(e.clone()),
        u32_hash: Err(e.clone()),
        netem: Err(e.clone()),
        nfqueue: Err(e),
    })
}

fn try_create(host: &mut Option<Host>, objs: &[Object]) -> Check {
    let h = host.as_mut().ok_or("netlink socket unavailable")?;
    h.apply(objs, Op::Create).map_err(|e| e.to_string())
}

fn probe_here(bind_queue: fn() -> Check) -> Capabilities {
    let mut host = Host::open().ok();
    let lo = || "lo".to_string();
    let htb = try_create(
        &mut host,
        &[
            Object::htb_root("lo", 100),
            Object::HtbClass {
                dev: lo(),
                classid: Handle::new(1, 1),
                parent: Handle::new(1, 0),
                rate_bps: 1_000_000,
            },
        ],
    );
    let ifb = try_create(
        &mut host,
        &[Object::Ifb {
            name: "p2pprobe".into(),
            txqueuelen: 100,
            group: 0,
        }],
    );
    let any = (Ipv4Addr::UNSPECIFIED, 0);
    let clsact_mirred = try_create(
        &mut host,
        &[
            Object::clsact("lo"),
            Object::Filter {
                dev: lo(),
                parent: Parent::Ingress,
                prio: 1,
                u32: U32::Entry {
                    ht: None,
                    node: 0,
                    field: Field::Dst,
                    net: any,
                    target: Target::Redirect("p2pprobe".into()),
                },
            },
        ],
    );
    let u32_hash = try_create(
        &mut host,
        &[
            Object::Filter {
                dev: lo(),
                parent: Parent::Of(Handle::new(1, 0)),
                prio: 1,
                u32: U32::Table {
                    id: 1,
                    divisor: 256,
                },
            },
            Object::Filter {
                dev: lo(),
                parent: Parent::Of(Handle::new(1, 0)),
                prio: 1,
                u32: U32::Entry {
                    ht: None,
                    node: 0,
                    field: Field::Src,
                    net: any,
                    target: Target::Link {
                        table: 1,
                        key: Field::Src,
                        mask: 0xff,
                    },
                },
            },
        ],
    );
    let netem = try_create(
        &mut host,
        &[Object::Qdisc {
            dev: lo(),
            parent: Parent::Of(Handle::new(1, 1)),
            handle: 2,
            kind: QdiscKind::Netem {
                delay_us: 1000,
                loss: 0.0,
                limit: 100,
            },
        }],
    )
    .map_err(|e| format!("netem qdisc: {e}"));
    Capabilities {
        htb,
        ifb,
        clsact_mirred,
        u32_hash,
        netem,
        nfqueue: nfqueue_rule().and_then(|()| bind_queue()),
    }
}

/// Adds an NFQUEUE rule in this thread's (scratch) namespace.
fn nfqueue_rule() -> Check {
    iptables(&[
        "-t",
        "mangle",
        "-A",
        "OUTPUT",
        "-d",
        "10.255.255.255",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "7",
    ])
    .map_err(|e| match e {
        IptablesError::Refused(why) => format!("iptables NFQUEUE rule refused: {why}"),
        other => other.to_string(),
    })
}

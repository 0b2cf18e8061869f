//! `p2plab doctor`: what this kernel can do (probed in a scratch namespace, and cgroup
//! BPF in a scratch cgroup) and the shaping backend `up` will use.

use anyhow::{bail, Result};
use clap::Args;
use shaping::Backend;
use std::fmt::Write as _;

/// Probe what this kernel can do and which shaping backend `up` will use.
#[derive(Args)]
#[command(
    after_help = "Example:\n  sudo p2plab doctor\n\nEvery probe runs in a scratch network namespace: nothing on this host changes."
)]
pub struct DoctorArgs {}

pub fn doctor(_: &DoctorArgs) -> Result<()> {
    if !shaping::is_net_admin() {
        bail!("p2plab doctor probes in a scratch network namespace and needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it with sudo");
    }
    let caps = shaping::probe();
    let line = |what: &str, c: &netctl::probe::Check| match c {
        Ok(()) => format!("  {what:<28} yes\n"),
        Err(e) => format!("  {what:<28} NO: {e}\n"),
    };
    let mut s = String::from("kernel features (tried in a scratch namespace):\n");
    s += &line("HTB qdisc and classes", &caps.htb);
    s += &line("IFB devices", &caps.ifb);
    s += &line("clsact + u32 + mirred", &caps.clsact_mirred);
    s += &line("u32 hash tables", &caps.u32_hash);
    s += &line("netem (sch_netem)", &caps.netem);
    s += &line("NFQUEUE rule and queue bind", &caps.nfqueue);
    let hierarchies = cgroup::Hierarchies::detect();
    // tried in a scratch cgroup: what `wrap --isolation bpf` needs
    let bpf = match &hierarchies {
        Ok(h) => {
            sockbpf::probe(h, &format!("doctor-{}", std::process::id())).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("cannot read /proc/self/mountinfo: {e}")),
    };
    s += &line("cgroup sock_addr BPF", &bpf);
    match hierarchies {
        Ok(h) => {
            let _ = writeln!(s, "{}", h.describe());
        }
        Err(e) => {
            let _ = writeln!(s, "cgroups: cannot read /proc/self/mountinfo: {e}");
        }
    }
    match caps.pick() {
        Ok(b) => {
            let _ = writeln!(s, "`p2plab up` will use the {b} backend");
            for other in [Backend::Netem, Backend::Nfqueue] {
                if let Err(e) = caps.supports(other) {
                    let _ = writeln!(s, "for the {other} backend: {e}");
                }
            }
        }
        Err(e) => {
            let _ = writeln!(s, "no shaping backend works here: {e}");
        }
    }
    crate::output::emit(&s)
}

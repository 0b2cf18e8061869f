//! `p2plab doctor`: what this kernel can do (probed in a scratch namespace) and the
//! shaping backend `up` will use.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use shaping::Backend;
use std::fmt::Write as _;

/// Probe what this kernel can do and which shaping backend `up` will use.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  sudo p2plab doctor\n  sudo p2plab doctor --json | jq .backend\n\nEvery probe runs in a scratch network namespace: nothing on this host changes."
)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn doctor(args: &DoctorArgs) -> Result<()> {
    if !shaping::is_net_admin() {
        bail!("p2plab doctor probes in a scratch network namespace and needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run it with sudo");
    }
    let caps = shaping::probe();
    let hierarchies = cgroup::Hierarchies::detect();
    // tried in a scratch cgroup: what `wrap --isolation bpf` needs
    let bpf: netctl::probe::Check = match &hierarchies {
        Ok(h) => {
            sockbpf::probe(h, &format!("doctor-{}", std::process::id())).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("cannot read /proc/self/mountinfo: {e}")),
    };
    let features = [
        ("htb", "HTB qdisc and classes", &caps.htb),
        ("ifb", "IFB devices", &caps.ifb),
        (
            "clsact_mirred",
            "clsact + u32 + mirred",
            &caps.clsact_mirred,
        ),
        ("u32_hash", "u32 hash tables", &caps.u32_hash),
        ("netem", "netem (sch_netem)", &caps.netem),
        ("nfqueue", "NFQUEUE rule and queue bind", &caps.nfqueue),
        ("cgroup_bpf", "cgroup sock_addr BPF", &bpf),
    ];
    let cgroups = match hierarchies {
        Ok(h) => h.describe(),
        Err(e) => format!("cgroups: cannot read /proc/self/mountinfo: {e}"),
    };
    let picked = caps.pick();
    // why each backend that does not work here does not
    let unusable: Vec<(Backend, String)> = [Backend::Netem, Backend::Nfqueue]
        .into_iter()
        .filter_map(|b| caps.supports(b).err().map(|e| (b, e.to_string())))
        .collect();
    if args.json {
        let mut f = serde_json::Map::new();
        for (key, _, c) in features {
            let v = match c {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            };
            f.insert(key.into(), v);
        }
        let mut why = serde_json::Map::new();
        for (b, e) in &unusable {
            why.insert(b.to_string(), json!(e));
        }
        return crate::output::emit_json(&json!({
            "features": f,
            "cgroups": cgroups.trim_end(),
            "backend": picked.as_ref().ok(),
            "no_backend": picked.as_ref().err().map(ToString::to_string),
            "unusable": why,
        }));
    }
    let mut s = String::from("kernel features (tried in a scratch namespace):\n");
    for (_, what, c) in features {
        s += &match c {
            Ok(()) => format!("  {what:<28} yes\n"),
            Err(e) => format!("  {what:<28} NO: {e}\n"),
        };
    }
    let _ = writeln!(s, "{cgroups}");
    match picked {
        Ok(b) => {
            let _ = writeln!(s, "`p2plab up` will use the {b} backend");
            for (other, e) in &unusable {
                let _ = writeln!(s, "for the {other} backend: {e}");
            }
        }
        Err(e) => {
            let _ = writeln!(s, "no shaping backend works here: {e}");
        }
    }
    crate::output::emit(&s)
}

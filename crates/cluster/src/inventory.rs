//! The inventory (`--hosts FILE`): the machines of a cluster run, how to reach them over
//! SSH, and how the topology's nodes are spread over them.
//!
//! ```yaml
//! ssh:                            # every field optional
//!   user: root                    # default root
//!   port: 22                      # default 22
//!   identity_file: ~/.ssh/id_ed25519   # default none: the SSH agent's keys are used
//!   known_hosts: ~/.ssh/known_hosts    # default ~/.ssh/known_hosts
//!   dev: eth0                     # the hosts' default `dev` (default eth0)
//! hosts:
//!   - {name: node-1, address: 192.168.1.11, dev: eth0}
//!   - {name: node-2, address: node-2.cluster, capacity: 200}
//! placement: round_robin          # or by_group, fill, or a map {node-1: 'a[1-250]', ...}
//! ```
//! A host's `name` keys its directories and messages (letters, digits, `-`, `_`, `.`);
//! `address` is what SSH connects to, and must resolve to an IPv4 address: the gateway
//! other hosts route this host's nodes through; `dev` is the interface experiment traffic
//! uses; `capacity` caps how many nodes it runs. Instead of a list, `hosts: {from: slurm}`
//! takes the nodes of the Slurm job it runs in (`scontrol show hostnames
//! "$SLURM_JOB_NODELIST"`), and `hosts: {from: oar}` those of the OAR job (`$OAR_NODEFILE`,
//! one host a line, repeats dropped, order kept); each host is then named by its host name
//! and uses `ssh.dev`. Paths may start with `~` (`$HOME`); relative ones are relative to the
//! inventory's directory. Authentication is by key or agent only: no field holds a password.
//! The placements are described in [`crate::placement`]; a map's selectors are checked
//! against the topology when nodes are placed.
//!
//! Every problem is reported at once with file, line, column, field and fix, as for
//! topology and experiment files.

use crate::placement::Placement;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use topology::check::{self, known, Checker};
use topology::Diagnostics;

/// The SSH user when the inventory names none.
pub const DEFAULT_USER: &str = "root";
/// The SSH port when the inventory names none.
pub const DEFAULT_PORT: u16 = 22;
/// A host's interface for experiment traffic when neither it nor `ssh.dev` names one.
pub const DEFAULT_DEV: &str = "eth0";
/// What messages call the file.
const KIND: &str = "host inventory";
/// The known-hosts file when the inventory names none.
const DEFAULT_KNOWN_HOSTS: &str = "~/.ssh/known_hosts";

/// A checked inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The inventory file, as given.
    pub file: PathBuf,
    pub ssh: SshSettings,
    /// Every host, in the file's (or the job's) order; at least one.
    pub hosts: Vec<HostEntry>,
    pub placement: Placement,
}

/// How to log in to every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    /// The private key; `None`: the SSH agent's keys.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
}

/// One machine of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub name: String,
    /// As written, what SSH connects to.
    pub address: String,
    /// Resolved IPv4 address: the gateway other hosts route this host's nodes through.
    pub ip: Ipv4Addr,
    pub dev: String,
    pub capacity: Option<usize>,
}

/// Whether a key is there at all, whatever its value (even empty).
#[derive(Default)]
struct Given(bool);

impl<'de> Deserialize<'de> for Given {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Given(true))
    }
}

/// The inventory as written; `H` is the host list or `{from: ...}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory<H> {
    #[serde(default)]
    ssh: RawSsh,
    hosts: H,
    placement: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<String>,
    known_hosts: Option<String>,
    dev: Option<String>,
    /// Refused with its own message.
    #[serde(default)]
    password: Given,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    address: String,
    dev: Option<String>,
    capacity: Option<usize>,
    /// Refused with its own message.
    #[serde(default)]
    password: Given,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrom {
    from: Scheduler,
}

/// The batch schedulers whose job's nodes can be the hosts.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scheduler {
    Slurm,
    Oar,
}

/// What loading an inventory asks of the machine, so that tests can fake it: environment
/// variables, a command's standard output, and name resolution.
struct Machine<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    run: &'a dyn Fn(&[&str]) -> io::Result<String>,
    resolve: &'a dyn Fn(&str) -> io::Result<Vec<IpAddr>>,
}

/// The standard output of `command`; an error when it cannot start or does not succeed.
fn run(command: &[&str]) -> io::Result<String> {
    let (program, args) = command.split_first().unwrap_or((&"", &[]));
    let out = std::process::Command::new(program).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "it ended with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn resolve(name: &str) -> io::Result<Vec<IpAddr>> {
    Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
}

/// Reads and checks the inventory at `path`, resolving host addresses (and asking Slurm or
/// OAR for the job's hosts when it says so).
pub fn load(path: &Path) -> Result<Inventory, Diagnostics> {
    load_with(path, &|name| std::env::var(name).ok(), &run, &resolve)
}

/// A host as the checks see it: where it was written, and its fields.
struct Written {
    /// The field path errors about this host point at.
    at: String,
    name: String,
    address: String,
    dev: String,
    capacity: Option<usize>,
}

/// [`load`], asking `env` for environment variables, `run` for a command's standard output
/// and `resolve` for a name's addresses.
pub(crate) fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    run: &dyn Fn(&[&str]) -> io::Result<String>,
    resolve: &dyn Fn(&str) -> io::Result<Vec<IpAddr>>,
) -> Result<Inventory, Diagnostics> {
    let machine = &Machine { env, run, resolve };
    let source = check::read(path, KIND)?;
    // `hosts:` is either a list or `{from: ...}`: parse with the shape it has, so that each
    // shape gets its own messages.
    let from = serde_yaml_ng::from_str::<Value>(&source)
        .ok()
        .and_then(|v| v.get("hosts").map(|h| h.get("from").is_some()))
        .unwrap_or(false);
    let mut c = Checker::new(path, &source);
    let (ssh, hosts, placement) = if from {
        let raw: RawInventory<RawFrom> = check::parse(path, &source, KIND)?;
        let default_dev = raw.ssh.dev.clone().unwrap_or(DEFAULT_DEV.into());
        let hosts = job_hosts(&mut c, raw.hosts.from, machine)
            .into_iter()
            .map(|name| Written {
                at: "hosts.from".into(),
                address: name.clone(),
                name,
                dev: default_dev.clone(),
                capacity: None,
            })
            .collect();
        (raw.ssh, hosts, raw.placement)
    } else {
        let raw: RawInventory<Vec<RawHost>> = check::parse(path, &source, KIND)?;
        let default_dev = raw.ssh.dev.clone().unwrap_or(DEFAULT_DEV.into());
        if raw.hosts.is_empty() {
            c.error(
                "hosts",
                "the inventory lists no host",
                "add at least one host under `hosts:`",
            );
        }
        let hosts = raw
            .hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let at = format!("hosts[{i}]");
                refuse_password(&mut c, &at, &h.password);
                if let Some(dev) = &h.dev {
                    check_dev(&mut c, &format!("{at}.dev"), dev);
                }
                Written {
                    at,
                    name: h.name,
                    address: h.address,
                    dev: h.dev.unwrap_or(default_dev.clone()),
                    capacity: h.capacity,
                }
            })
            .collect();
        (raw.ssh, hosts, raw.placement)
    };
    let ssh = ssh_settings(&mut c, path, ssh, machine);
    let hosts = check_hosts(&mut c, hosts, machine);
    let placement = placement_of(&mut c, placement.as_ref(), &hosts);
    match c.take() {
        Some(errors) => Err(errors),
        None => Ok(Inventory {
            file: path.to_path_buf(),
            ssh,
            hosts,
            placement,
        }),
    }
}

/// Refuses a `password` key in the mapping at `at`.
fn refuse_password(c: &mut Checker<'_>, at: &str, password: &Given) {
    if password.0 {
        c.error(
            &format!("{at}.password"),
            "an inventory holds no password: p2plab logs in by key or agent authentication only",
            "remove it, and give `ssh.identity_file` or load the key into ssh-agent",
        );
    }
}

/// The host names of the batch job p2plab runs in, in the job's order without repeats.
fn job_hosts(c: &mut Checker<'_>, from: Scheduler, machine: &Machine<'_>) -> Vec<String> {
    let at = "hosts.from";
    let (variable, scheduler, job) = match from {
        Scheduler::Slurm => (
            "SLURM_JOB_NODELIST",
            "slurm",
            "a Slurm job (sbatch, salloc)",
        ),
        Scheduler::Oar => ("OAR_NODEFILE", "oar", "an OAR job (oarsub)"),
    };
    let Some(value) = (machine.env)(variable).filter(|v| !v.trim().is_empty()) else {
        c.error(
            at,
            format!("`from: {scheduler}` takes the job's nodes from ${variable}, which is not set"),
            format!("run p2plab inside {job}, or list the hosts"),
        );
        return Vec::new();
    };
    let listed = match from {
        Scheduler::Slurm => (machine.run)(&["scontrol", "show", "hostnames", &value])
            .map_err(|e| {
                (
                    format!("`scontrol show hostnames {value}` failed: {e}"),
                    "run p2plab where Slurm's `scontrol` works (a node of the job), or list the hosts",
                )
            }),
        Scheduler::Oar => std::fs::read_to_string(&value).map_err(|e| {
            (
                format!("cannot read the OAR node file {value} ($OAR_NODEFILE): {e}"),
                "run p2plab inside the OAR job that made it, or list the hosts",
            )
        }),
    };
    let text = match listed {
        Ok(text) => text,
        Err((message, fix)) => {
            c.error(at, message, fix);
            return Vec::new();
        }
    };
    let mut seen = HashSet::new();
    let hosts: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && seen.insert(*l))
        .map(str::to_string)
        .collect();
    if hosts.is_empty() {
        c.error(
            at,
            format!("the {scheduler} job lists no node"),
            format!("run p2plab inside {job} that has nodes, or list the hosts"),
        );
    }
    hosts
}

/// `text` as a path: `~` is `$HOME`, and relative paths start at the inventory's directory.
fn expand(
    c: &mut Checker<'_>,
    at: &str,
    file: &Path,
    text: &str,
    machine: &Machine<'_>,
) -> PathBuf {
    let mut home = |rest: &str| match (machine.env)("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Path::new(&home).join(rest),
        None => {
            c.error(
                at,
                format!("`{text}` starts with `~`, but $HOME is not set"),
                "write the full path",
            );
            PathBuf::from(text)
        }
    };
    if text == "~" {
        home("")
    } else if let Some(rest) = text.strip_prefix("~/") {
        home(rest)
    } else {
        file.parent().unwrap_or(Path::new("")).join(text)
    }
}

fn ssh_settings(
    c: &mut Checker<'_>,
    file: &Path,
    raw: RawSsh,
    machine: &Machine<'_>,
) -> SshSettings {
    refuse_password(c, "ssh", &raw.password);
    let user = raw.user.unwrap_or(DEFAULT_USER.into());
    if user.is_empty() || user.contains(|ch: char| ch.is_whitespace() || ch == '@') {
        c.error(
            "ssh.user",
            format!("`{user}` is not a user name"),
            "write the login name on the hosts, e.g. `root`",
        );
    }
    let port = raw.port.unwrap_or(DEFAULT_PORT);
    if port == 0 {
        c.error(
            "ssh.port",
            "port 0 is not a port",
            "write sshd's port, e.g. 22",
        );
    }
    if let Some(dev) = &raw.dev {
        check_dev(c, "ssh.dev", dev);
    }
    let identity_file = raw
        .identity_file
        .map(|f| expand(c, "ssh.identity_file", file, &f, machine));
    let known_hosts = raw.known_hosts.as_deref().unwrap_or(DEFAULT_KNOWN_HOSTS);
    let known_hosts = expand(c, "ssh.known_hosts", file, known_hosts, machine);
    SshSettings {
        user,
        port,
        identity_file,
        known_hosts,
    }
}

/// Refuses `dev` unless it can name a network interface.
fn check_dev(c: &mut Checker<'_>, at: &str, dev: &str) {
    let fits = (1..16).contains(&dev.len())
        && !dev.contains(|ch: char| ch.is_whitespace() || ch == '/' || ch == ':');
    if !fits {
        c.error(
            at,
            format!("`{dev}` is not a network interface name"),
            "write the interface experiment traffic uses on the host, e.g. `eth0`",
        );
    }
}

/// The first IPv4 address `address` resolves to.
fn ipv4(address: &str, machine: &Machine<'_>) -> Result<Ipv4Addr, String> {
    match (machine.resolve)(address) {
        Err(e) => Err(format!("address `{address}` does not resolve: {e}")),
        Ok(ips) => ips
            .into_iter()
            .find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| format!("address `{address}` has no IPv4 address")),
    }
}

/// Checks every host (names, addresses, capacities) and resolves its address.
fn check_hosts(c: &mut Checker<'_>, hosts: Vec<Written>, machine: &Machine<'_>) -> Vec<HostEntry> {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, usize> = HashMap::new();
    let mut out: Vec<HostEntry> = Vec::with_capacity(hosts.len());
    for (i, h) in hosts.into_iter().enumerate() {
        let field = |f: &str| {
            if h.at.starts_with("hosts[") {
                format!("{}.{f}", h.at)
            } else {
                h.at.clone()
            }
        };
        c.name(&field("name"), "host", &h.name);
        if h.name == "." || h.name == ".." {
            c.error(
                &field("name"),
                format!("host name `{}` cannot name a directory", h.name),
                "give the host a name with a letter or digit",
            );
        }
        if let Some(first) = names.insert(h.name.clone(), i) {
            c.error(
                &field("name"),
                format!(
                    "host name `{}` is used twice (first by hosts[{first}])",
                    h.name
                ),
                "give every host its own name",
            );
        }
        if h.capacity == Some(0) {
            c.error(
                &field("capacity"),
                "a capacity of 0 runs no node",
                "give at least 1, or remove the host",
            );
        }
        let ip = match ipv4(&h.address, machine) {
            Ok(ip) => ip,
            Err(message) => {
                c.error(
                    &field("address"),
                    message,
                    "give an IPv4 address or a name that resolves to one",
                );
                Ipv4Addr::UNSPECIFIED
            }
        };
        if !ip.is_unspecified() {
            if let Some(first) = ips.insert(ip, i) {
                c.error(
                    &field("address"),
                    format!(
                        "`{}` is {ip}, the address of host `{}` too",
                        h.address, out[first].name
                    ),
                    "list each machine once: other hosts route this host's nodes through its address",
                );
            }
        }
        out.push(HostEntry {
            name: h.name,
            address: h.address,
            ip,
            dev: h.dev,
            capacity: h.capacity,
        });
    }
    out
}

/// The placement written at `placement:` (round_robin when there is none).
fn placement_of(c: &mut Checker<'_>, value: Option<&Value>, hosts: &[HostEntry]) -> Placement {
    let syntax =
        "write `round_robin`, `by_group`, `fill`, or a map from host names to node selectors";
    let mapping = match value {
        None => return Placement::RoundRobin,
        Some(Value::String(name)) => {
            return match name.as_str() {
                "round_robin" => Placement::RoundRobin,
                "by_group" => Placement::ByGroup,
                "fill" => Placement::Fill,
                _ => {
                    c.error("placement", format!("unknown placement `{name}`"), syntax);
                    Placement::RoundRobin
                }
            }
        }
        Some(Value::Mapping(m)) if !m.is_empty() => m,
        Some(_) => {
            c.error("placement", "expected a placement", syntax);
            return Placement::RoundRobin;
        }
    };
    let mut map = Vec::with_capacity(mapping.len());
    for (key, selector) in mapping {
        let Some(host) = key.as_str() else {
            c.error(
                "placement",
                "a key of the placement map is not a host name",
                syntax,
            );
            continue;
        };
        let at = format!("placement.{host}");
        if !hosts.iter().any(|h| h.name == host) {
            c.error(
                &at,
                format!("`{host}` is not a host of the inventory"),
                format!(
                    "use one of: {}",
                    known(hosts.iter().map(|h| h.name.clone()))
                ),
            );
        }
        let terms: Option<Vec<&str>> = match selector {
            Value::String(s) => Some(vec![s.as_str()]),
            Value::Sequence(items) => items.iter().map(Value::as_str).collect(),
            _ => None,
        };
        match terms {
            Some(terms) if !terms.is_empty() => map.push((host.to_string(), terms.join(","))),
            _ => c.error(&at, "expected a node selector", topology::select::SYNTAX),
        }
    }
    Placement::Map(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A machine where `vars` are the environment, the commands' output is `output` (and
    /// each command run is recorded), and names resolve by a fixed table.
    struct Fake {
        vars: Vec<(&'static str, String)>,
        output: io::Result<String>,
        ran: RefCell<Vec<String>>,
    }

    impl Fake {
        fn new(vars: &[(&'static str, &str)]) -> Fake {
            let mut vars: Vec<_> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
            if !vars.iter().any(|(k, _)| *k == "HOME") {
                vars.push(("HOME", "/home/u".into()));
            }
            Fake {
                vars,
                output: Ok(String::new()),
                ran: RefCell::new(Vec::new()),
            }
        }

        /// Loads the inventory `yaml`, written as `hosts.yaml` in a fresh directory.
        fn load(&self, yaml: &str) -> (PathBuf, Result<Inventory, Diagnostics>) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hosts.yaml");
            std::fs::write(&path, yaml).unwrap();
            (path.clone(), self.load_file(&path))
        }

        fn load_file(&self, path: &Path) -> Result<Inventory, Diagnostics> {
            let env = |name: &str| {
                self.vars
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            };
            let run = |command: &[&str]| {
                self.ran.borrow_mut().push(command.join(" "));
                match &self.output {
                    Ok(text) => Ok(text.clone()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                }
            };
            let resolve = |name: &str| -> io::Result<Vec<IpAddr>> {
                match name {
                    "node-a" => Ok(vec!["10.9.0.1".parse().unwrap()]),
                    "node-b" => Ok(vec!["::2".parse().unwrap(), "10.9.0.2".parse().unwrap()]),
                    "only-v6" => Ok(vec!["::1".parse().unwrap()]),
                    _ => name.parse::<IpAddr>().map(|ip| vec![ip]).map_err(|_| {
                        io::Error::new(io::ErrorKind::NotFound, "name or service not known")
                    }),
                }
            };
            load_with(path, &env, &run, &resolve)
        }

        /// The diagnostics of `yaml`, one a line, without the file name.
        fn errors(&self, yaml: &str) -> Vec<String> {
            let (path, loaded) = self.load(yaml);
            let prefix = format!("{}:", path.display());
            match loaded {
                Ok(inventory) => panic!("{yaml} loads: {inventory:?}"),
                Err(d) => d
                    .iter()
                    .map(|d| d.to_string().replace(&prefix, ""))
                    .collect(),
            }
        }
    }

    fn host(
        name: &str,
        address: &str,
        ip: [u8; 4],
        dev: &str,
        capacity: Option<usize>,
    ) -> HostEntry {
        HostEntry {
            name: name.into(),
            address: address.into(),
            ip: ip.into(),
            dev: dev.into(),
            capacity,
        }
    }

    #[test]
    fn the_example_inventory_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/hosts.example.yaml");
        let home = std::env::var("HOME").unwrap_or_default();
        // A known $HOME, so that the expanded paths are known.
        let inventory = Fake::new(&[("HOME", "/home/u")]).load_file(&file);
        let inventory = inventory.unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(
            inventory.ssh,
            SshSettings {
                user: "root".into(),
                port: 22,
                identity_file: Some("/home/u/.ssh/id_ed25519".into()),
                known_hosts: "/home/u/.ssh/known_hosts".into(),
            }
        );
        assert_eq!(
            inventory.hosts,
            [
                host("node-1", "192.168.1.11", [192, 168, 1, 11], "eth0", None),
                host(
                    "node-2",
                    "192.168.1.12",
                    [192, 168, 1, 12],
                    "eth0",
                    Some(200)
                ),
                host("node-3", "192.168.1.13", [192, 168, 1, 13], "eth0", None),
            ]
        );
        assert_eq!(inventory.placement, Placement::RoundRobin);
        // And through `load`, with the real resolver and environment.
        let real = load(&file).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(real.hosts, inventory.hosts);
        assert_eq!(
            real.ssh.known_hosts,
            Path::new(&home).join(".ssh/known_hosts")
        );
    }

    #[test]
    fn defaults_fill_what_the_inventory_leaves_out() {
        let fake = Fake::new(&[]);
        let (path, loaded) = fake.load("hosts:\n  - {name: a, address: node-a}\n  - {name: b.1, address: node-b, dev: ens3, capacity: 7}\n");
        let inventory = loaded.unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(inventory.file, path);
        assert_eq!(
            inventory.ssh,
            SshSettings {
                user: "root".into(),
                port: 22,
                identity_file: None,
                known_hosts: "/home/u/.ssh/known_hosts".into(),
            }
        );
        assert_eq!(
            inventory.hosts,
            [
                host("a", "node-a", [10, 9, 0, 1], "eth0", None),
                // The first IPv4 address of the name.
                host("b.1", "node-b", [10, 9, 0, 2], "ens3", Some(7)),
            ]
        );
        assert_eq!(inventory.placement, Placement::RoundRobin);
    }

    #[test]
    fn paths_expand_home_and_start_at_the_inventory() {
        let fake = Fake::new(&[("HOME", "/h")]);
        let (path, loaded) = fake.load("ssh: {user: lab, port: 2222, identity_file: keys/id, known_hosts: '~', dev: ib0}\nhosts:\n  - {name: a, address: 10.0.0.1}\n");
        let inventory = loaded.unwrap_or_else(|d| panic!("{d}"));
        let dir = path.parent().unwrap();
        assert_eq!(
            inventory.ssh,
            SshSettings {
                user: "lab".into(),
                port: 2222,
                identity_file: Some(dir.join("keys/id")),
                known_hosts: "/h".into(),
            }
        );
        assert_eq!(inventory.hosts[0].dev, "ib0");
        let (_, loaded) =
            fake.load("ssh: {identity_file: /etc/k}\nhosts: [{name: a, address: 10.0.0.1}]\n");
        assert_eq!(loaded.unwrap().ssh.identity_file, Some("/etc/k".into()));
        // Without $HOME, `~` cannot be expanded: said where it is written (or for the default).
        let mut homeless = Fake::new(&[]);
        homeless.vars.clear();
        assert_eq!(
            homeless.errors("ssh:\n  identity_file: ~/.ssh/id\nhosts: [{name: a, address: 10.0.0.1}]\n"),
            [
                "2:3: ssh.known_hosts: `~/.ssh/known_hosts` starts with `~`, but $HOME is not set; write the full path",
                "2:18: ssh.identity_file: `~/.ssh/id` starts with `~`, but $HOME is not set; write the full path",
            ]
        );
        assert_eq!(
            homeless.errors("ssh:\n  known_hosts: ~/kh\nhosts: [{name: a, address: 10.0.0.1}]\n"),
            [
                "2:16: ssh.known_hosts: `~/kh` starts with `~`, but $HOME is not set; write the full path",
            ]
        );
    }

    #[test]
    fn placements_are_read_by_name_or_as_a_map() {
        let fake = Fake::new(&[]);
        let hosts = "hosts:\n  - {name: a, address: 10.0.0.1}\n  - {name: b, address: 10.0.0.2}\n";
        for (written, placement) in [
            ("round_robin", Placement::RoundRobin),
            ("by_group", Placement::ByGroup),
            ("fill", Placement::Fill),
            (
                "{b: 'g1[1-5],g2', a: [g0, 'g1[6-9]']}",
                Placement::Map(vec![
                    ("b".into(), "g1[1-5],g2".into()),
                    ("a".into(), "g0,g1[6-9]".into()),
                ]),
            ),
        ] {
            let (_, loaded) = fake.load(&format!("{hosts}placement: {written}\n"));
            assert_eq!(loaded.map(|i| i.placement), Ok(placement), "{written}");
        }
        assert_eq!(
            fake.errors(&format!("{hosts}placement: spread\n")),
            ["4:12: placement: unknown placement `spread`; write `round_robin`, `by_group`, `fill`, or a map from host names to node selectors"]
        );
        assert_eq!(
            fake.errors(&format!("{hosts}placement: [a, b]\n")),
            ["4:1: placement: expected a placement; write `round_robin`, `by_group`, `fill`, or a map from host names to node selectors"]
        );
        assert_eq!(
            fake.errors(&format!("{hosts}placement:\n  a: '*'\n  c: g0\n  b: 3\n")),
            [
                "6:6: placement.c: `c` is not a host of the inventory; use one of: a, b",
                "7:6: placement.b: expected a node selector; write `*`, a group, a node, `group[A-B]` or a list of these",
            ]
        );
        assert_eq!(
            fake.errors(&format!("{hosts}placement:\n  b: g0\n  b: g1\n")),
            ["6:3: placement.b: this key is given twice (first on line 5); keep one of them: the second would replace the first"]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_at_its_place() {
        let fake = Fake::new(&[]);
        let yaml = "\
ssh: {user: '', port: 0, dev: 'a very long interface name'}
hosts:
  - {name: node-1, address: node-a, capacity: 0}
  - {name: node-1, address: 10.9.0.1}
  - {name: 'bad/name', address: nowhere.invalid, dev: eth1}
  - {name: '..', address: only-v6}
  - {name: c, address: 10.0.0.3, dev: ''}
";
        assert_eq!(
            fake.errors(yaml),
            [
                "1:13: ssh.user: `` is not a user name; write the login name on the hosts, e.g. `root`",
                "1:23: ssh.port: port 0 is not a port; write sshd's port, e.g. 22",
                "1:31: ssh.dev: `a very long interface name` is not a network interface name; write the interface experiment traffic uses on the host, e.g. `eth0`",
                "3:47: hosts[0].capacity: a capacity of 0 runs no node; give at least 1, or remove the host",
                "4:12: hosts[1].name: host name `node-1` is used twice (first by hosts[0]); give every host its own name",
                "4:29: hosts[1].address: `10.9.0.1` is 10.9.0.1, the address of host `node-1` too; list each machine once: other hosts route this host's nodes through its address",
                "5:12: hosts[2].name: host name `bad/name` is not a plain name; use only letters, digits, `-`, `_` and `.`",
                "5:33: hosts[2].address: address `nowhere.invalid` does not resolve: name or service not known; give an IPv4 address or a name that resolves to one",
                "6:12: hosts[3].name: host name `..` cannot name a directory; give the host a name with a letter or digit",
                "6:27: hosts[3].address: address `only-v6` has no IPv4 address; give an IPv4 address or a name that resolves to one",
                "7:39: hosts[4].dev: `` is not a network interface name; write the interface experiment traffic uses on the host, e.g. `eth0`",
            ]
        );
    }

    #[test]
    fn structural_errors_come_all_at_once_too() {
        let fake = Fake::new(&[]);
        let yaml = "\
ssh: {user: root, key: x}
hosts:
  - {name: a, address: 10.0.0.1, capacity: many}
  - {name: b, address: 10.0.0.2, ip: 10.0.0.2}
extra: 1
";
        assert_eq!(
            fake.errors(yaml),
            [
                "1:19: ssh: unknown field `key`, expected one of `user`, `port`, `identity_file`, `known_hosts`, `dev`, `password`; remove it or correct its spelling",
                "3:44: hosts[0].capacity: invalid type: string \"many\", expected usize; see the format in the README",
                "4:38: hosts[1]: unknown field `ip`, expected one of `name`, `address`, `dev`, `capacity`, `password`; remove it or correct its spelling",
                "5:8: unknown field `extra`, expected one of `ssh`, `hosts`, `placement`; remove it or correct its spelling",
            ]
        );
        // Keys given twice stop the search (the YAML cannot be read further).
        assert_eq!(
            fake.errors("hosts:\n  - {name: b, name: c, address: 10.0.0.3}\n"),
            ["2:15: hosts[0].name: this key is given twice (first on line 2); keep one of them: the second would replace the first"]
        );
        assert_eq!(
            fake.errors("hosts: []\n"),
            ["1:1: hosts: the inventory lists no host; add at least one host under `hosts:`"]
        );
        assert_eq!(
            fake.errors("ssh: {}\n"),
            ["1:1: missing field `hosts`; add it"]
        );
        assert_eq!(
            fake.errors("hosts: node-1\n"),
            ["1:8: hosts: invalid type: string \"node-1\", expected a sequence; see the format in the README"]
        );
    }

    #[test]
    fn passwords_are_refused_wherever_they_are() {
        let fake = Fake::new(&[]);
        let yaml = "ssh:\n  password: hunter2\nhosts:\n  - {name: a, address: 10.0.0.1, password: secret}\n";
        assert_eq!(
            fake.errors(yaml),
            [
                "2:13: ssh.password: an inventory holds no password: p2plab logs in by key or agent authentication only; remove it, and give `ssh.identity_file` or load the key into ssh-agent",
                "4:44: hosts[0].password: an inventory holds no password: p2plab logs in by key or agent authentication only; remove it, and give `ssh.identity_file` or load the key into ssh-agent",
            ]
        );
    }

    #[test]
    fn empty_tabbed_and_binary_files_are_refused_as_such() {
        let fake = Fake::new(&[]);
        assert_eq!(
            fake.errors("# hosts to come\n"),
            ["1:1: the file is empty: it holds no host inventory; write the file as the README's format section shows"]
        );
        let tabbed = fake.errors("hosts:\n\t- {name: a, address: 10.0.0.1}\n");
        assert_eq!(
            tabbed.last().map(String::as_str),
            Some("2:1: a tab indents this line, and YAML indents with spaces only; replace the tab with spaces"),
            "{tabbed:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yaml");
        std::fs::write(&path, b"hosts:\0").unwrap();
        let d = fake.load_file(&path).unwrap_err();
        assert_eq!(
            d.0[0].message,
            "this is not a text file (it has a NUL byte): it cannot be a host inventory file"
        );
        let d = fake
            .load_file(&dir.path().join("missing.yaml"))
            .unwrap_err();
        assert!(
            d.0[0]
                .message
                .starts_with("cannot read the host inventory file: "),
            "{d}"
        );
    }

    #[test]
    fn slurm_jobs_give_their_nodes() {
        let mut fake = Fake::new(&[("SLURM_JOB_NODELIST", "node-[a-b]")]);
        fake.output = Ok("node-a\nnode-b\n".into());
        let (_, loaded) =
            fake.load("ssh: {dev: ib0}\nhosts: {from: slurm}\nplacement: {node-b: '*'}\n");
        let inventory = loaded.unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(*fake.ran.borrow(), ["scontrol show hostnames node-[a-b]"]);
        assert_eq!(
            inventory.hosts,
            [
                host("node-a", "node-a", [10, 9, 0, 1], "ib0", None),
                host("node-b", "node-b", [10, 9, 0, 2], "ib0", None),
            ]
        );
        assert_eq!(
            inventory.placement,
            Placement::Map(vec![("node-b".into(), "*".into())])
        );
        // Without `ssh.dev`, eth0.
        let (_, loaded) = fake.load("hosts: {from: slurm}\n");
        assert_eq!(loaded.unwrap().hosts[1].dev, "eth0");
        // A name that does not resolve is named.
        fake.output = Ok("node-a\nnode-z\n".into());
        assert_eq!(
            fake.errors("hosts: {from: slurm}\n"),
            ["1:15: hosts.from: address `node-z` does not resolve: name or service not known; give an IPv4 address or a name that resolves to one"]
        );
    }

    #[test]
    fn slurm_outside_a_job_or_without_scontrol_is_refused() {
        let yaml = "hosts: {from: slurm}\n";
        assert_eq!(
            Fake::new(&[]).errors(yaml),
            ["1:15: hosts.from: `from: slurm` takes the job's nodes from $SLURM_JOB_NODELIST, which is not set; run p2plab inside a Slurm job (sbatch, salloc), or list the hosts"]
        );
        let mut fake = Fake::new(&[("SLURM_JOB_NODELIST", "n[1-4]")]);
        fake.output = Err(io::Error::new(
            io::ErrorKind::NotFound,
            "No such file or directory",
        ));
        assert_eq!(
            fake.errors(yaml),
            ["1:15: hosts.from: `scontrol show hostnames n[1-4]` failed: No such file or directory; run p2plab where Slurm's `scontrol` works (a node of the job), or list the hosts"]
        );
        fake.output = Ok("\n".into());
        assert_eq!(
            fake.errors(yaml),
            ["1:15: hosts.from: the slurm job lists no node; run p2plab inside a Slurm job (sbatch, salloc) that has nodes, or list the hosts"]
        );
    }

    #[test]
    fn oar_jobs_give_their_nodes_once_each_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let nodefile = dir.path().join("nodes");
        std::fs::write(&nodefile, "node-b\nnode-b\nnode-a\n\nnode-b\nnode-a\n").unwrap();
        let fake = Fake::new(&[("OAR_NODEFILE", nodefile.to_str().unwrap())]);
        let (_, loaded) = fake.load("hosts: {from: oar}\nplacement: by_group\n");
        let inventory = loaded.unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(
            inventory.hosts,
            [
                host("node-b", "node-b", [10, 9, 0, 2], "eth0", None),
                host("node-a", "node-a", [10, 9, 0, 1], "eth0", None),
            ]
        );
        assert_eq!(inventory.placement, Placement::ByGroup);
        assert!(fake.ran.borrow().is_empty());
    }

    #[test]
    fn oar_outside_a_job_and_unknown_schedulers_are_refused() {
        assert_eq!(
            Fake::new(&[]).errors("hosts: {from: oar}\n"),
            ["1:15: hosts.from: `from: oar` takes the job's nodes from $OAR_NODEFILE, which is not set; run p2plab inside an OAR job (oarsub), or list the hosts"]
        );
        let errors = Fake::new(&[("OAR_NODEFILE", "/nonexistent/p2plab-nodes")])
            .errors("hosts: {from: oar}\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("1:15: hosts.from: cannot read the OAR node file /nonexistent/p2plab-nodes ($OAR_NODEFILE): "),
            "{errors:?}"
        );
        assert_eq!(
            Fake::new(&[]).errors("hosts: {from: pbs, user: x}\n"),
            [
                "1:15: hosts.from: unknown variant `pbs`, expected `slurm` or `oar`; see the format in the README",
                "1:26: hosts: unknown field `user`, expected `from`; remove it or correct its spelling",
            ]
        );
    }

    #[test]
    fn the_real_machine_runs_commands_and_resolves_names() {
        assert_eq!(run(&["sh", "-c", "echo node-1"]).unwrap(), "node-1\n");
        let failed = run(&["sh", "-c", "echo no job >&2; exit 3"]).unwrap_err();
        assert_eq!(failed.to_string(), "it ended with exit status: 3: no job");
        assert!(run(&["/nonexistent/scontrol"]).is_err());
        assert_eq!(
            resolve("192.0.2.7").unwrap(),
            ["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn the_batch_scripts_write_inventories_that_load() {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster");
        for (script, scheduler) in [
            ("slurm.sbatch", "SLURM_JOB_NODELIST"),
            ("oar.sh", "OAR_NODEFILE"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let nodefile = dir.path().join("nodes");
            std::fs::write(&nodefile, "node-a\nnode-a\nnode-b\n").unwrap();
            let job = [
                ("SLURM_JOB_NODELIST", "node-[a-b]"),
                ("OAR_NODEFILE", nodefile.to_str().unwrap()),
            ];
            // The stubs (`scontrol`, and a `p2plab` that says how it was called) are made by
            // the shell that runs the script, so that no thread of this test process holds
            // them open for writing when they run.
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(
                    r#"mkdir stubs &&
                    printf '#!/bin/sh\nprintf "node-a\\nnode-b\\n"\n' > stubs/scontrol &&
                    printf '#!/bin/sh\necho "$@" > called\n' > stubs/p2plab &&
                    chmod +x stubs/scontrol stubs/p2plab &&
                    PATH="$PWD/stubs:$PATH" exec bash "$0" exp.yaml --quiet"#,
                )
                .arg(scripts.join(script))
                .current_dir(dir.path())
                .envs([
                    ("SLURM_SUBMIT_DIR", dir.path().as_os_str()),
                    ("OAR_WORKDIR", dir.path().as_os_str()),
                ])
                .envs(job)
                .envs([
                    ("SLURM_JOB_ID", "7"),
                    ("OAR_JOB_ID", "7"),
                    ("P2PLAB_DEV", "ib0"),
                    ("P2PLAB_PLACEMENT", "by_group"),
                    ("P2PLAB_SSH_IDENTITY", "/keys/id"),
                ])
                .env_remove("P2PLAB_SSH_USER")
                .env_remove("P2PLAB_KNOWN_HOSTS")
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}: {out:?}");
            let called = std::fs::read_to_string(dir.path().join("called")).unwrap();
            assert_eq!(called, "run exp.yaml --hosts p2plab-hosts-7.yaml --quiet\n");
            // Only this scheduler's job, so that the inventory must name it.
            let mut fake = Fake::new(
                &job.iter()
                    .copied()
                    .filter(|(k, _)| *k == scheduler)
                    .collect::<Vec<_>>(),
            );
            fake.output = Ok("node-a\nnode-b\n".into());
            let inventory = fake
                .load_file(&dir.path().join("p2plab-hosts-7.yaml"))
                .unwrap_or_else(|d| panic!("{script}: {d}"));
            assert_eq!(
                inventory.hosts,
                [
                    host("node-a", "node-a", [10, 9, 0, 1], "ib0", None),
                    host("node-b", "node-b", [10, 9, 0, 2], "ib0", None),
                ],
                "{script}"
            );
            assert_eq!(inventory.placement, Placement::ByGroup, "{script}");
            assert_eq!(
                inventory.ssh.identity_file,
                Some("/keys/id".into()),
                "{script}"
            );
            assert_eq!(inventory.ssh.user, "root", "{script}");
        }
    }
}

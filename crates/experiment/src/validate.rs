//! From an experiment file to an `Experiment`: the topology (a file or inline), roles,
//! commands and their programs, schedule, events (YAML and scenario file), stop rule and
//! metrics, all checked together so that every problem is reported before a run starts.

use crate::actions;
use crate::model::{Event, Experiment, Metric, MetricStop, Role, Start, StopRule};
use crate::raw::{FailurePolicy, Order, RawExperiment};
use crate::{scenario, selector, template};
use std::path::{Path, PathBuf};
use topology::change::{ChangeError, Part, Written};
use topology::check::{known, Checker, Text};
use topology::units::parse_time_us;
use topology::{Diagnostics, Plan};

/// The seed when the file gives none, so that runs are reproducible by default.
pub const DEFAULT_SEED: u64 = 1;

/// Loads the topology: a path relative to the experiment, or an inline mapping whose
/// diagnostics are moved to their place in the experiment file.
fn topology(
    c: &mut Checker<'_>,
    file: &Path,
    value: &serde_yaml_ng::Value,
) -> Option<(Plan, Option<PathBuf>)> {
    match value {
        serde_yaml_ng::Value::String(rel) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(rel);
            match topology::load(&path) {
                Ok(plan) => Some((plan, Some(path))),
                Err(d) => {
                    c.errors.extend(d.0);
                    None
                }
            }
        }
        serde_yaml_ng::Value::Mapping(_) => {
            let text = serde_yaml_ng::to_string(value).unwrap_or_default();
            match topology::parse(file, &text) {
                Ok(plan) => Some((plan, None)),
                Err(d) => {
                    for diag in d.0 {
                        if diag.file == file {
                            let at = format!("topology.{}", diag.path)
                                .trim_end_matches('.')
                                .to_string();
                            c.error(&at, diag.message, diag.fix);
                        } else {
                            c.errors.push(diag);
                        }
                    }
                    None
                }
            }
        }
        _ => {
            c.error(
                "topology",
                "expected a topology file path or an inline topology",
                "write `topology: topologies/quickstart.yaml`",
            );
            None
        }
    }
}

/// The executable file `program` names, found the way a spawned process finds it: a path
/// (relative to the current directory), or a name looked up on `PATH`.
pub fn resolve_program(program: impl AsRef<std::ffi::OsStr>) -> Option<PathBuf> {
    which::which(program).ok()
}

/// Whether a program found on disk can run as a node (the preload shim reaches it); `Err`
/// says why not, in a sentence that names the file and what to do.
pub type Reachable<'a> = &'a dyn Fn(&Path) -> Result<(), String>;

/// Refuses, at `at`, a program that is not installed or that cannot run as a node.
fn check_program(c: &mut Checker<'_>, at: &str, program: &str, reachable: Reachable<'_>) {
    match resolve_program(program) {
        None => c.error(
            at,
            format!("program `{program}` is not installed or not executable"),
            "install it, or give its full path",
        ),
        Some(path) => {
            if let Err(why) = reachable(&path) {
                c.error(at, why, "");
            }
        }
    }
}

/// Whether the program word `arg` names a file the run itself makes (in its result or a
/// node's directory), which cannot be checked before the run.
fn made_by_the_run(arg: &template::Arg) -> bool {
    arg.iter().any(|piece| {
        matches!(
            piece,
            template::Piece::Dir(template::RunDir::Run)
                | template::Piece::Own(template::NodeField::Dir)
                | template::Piece::Of(_, template::NodeField::Dir)
        )
    })
}

/// A memory size in bytes: `512M`, `1G`, `64MiB`, `100000K` (binary multiples).
fn parse_memory(text: &str) -> Result<u64, (String, String)> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let factor = match t[digits..]
        .trim()
        .trim_end_matches("iB")
        .trim_end_matches('B')
    {
        "K" | "k" => 1u64 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => 0,
    };
    match t[..digits].parse::<f64>() {
        Ok(n) if n > 0.0 && factor > 0 => Ok((n * factor as f64) as u64),
        _ => Err((
            format!("`{text}` is not a memory size"),
            "write e.g. `256M` or `1G`".into(),
        )),
    }
}

/// A CPU limit in percent of one core, e.g. `50%` (half a core) or `200%` (two cores).
fn parse_cpu(text: &str) -> Result<f64, (String, String)> {
    match text
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
    {
        Some(p) if p > 0.0 => Ok(p),
        _ => Err((
            format!("`{text}` is not a CPU share"),
            "write a percentage of one core, e.g. `50%`".into(),
        )),
    }
}

fn limit<T>(
    c: &mut Checker<'_>,
    at: &str,
    text: Option<&Text>,
    parse: fn(&str) -> Result<T, (String, String)>,
) -> Option<T> {
    let text = text?;
    parse(&text.0).map_err(|(m, f)| c.error(at, m, f)).ok()
}

/// Validates the experiment in `source`, read from `file`; each role's program must be
/// installed and `reachable`.
pub fn build(
    file: &Path,
    source: &str,
    reachable: Reachable<'_>,
) -> Result<Experiment, Diagnostics> {
    let raw: RawExperiment = topology::check::parse(file, source, "experiment")?;
    let mut c = Checker::new(file, source);
    let Some((plan, topology_file)) = topology(&mut c, file, &raw.topology) else {
        return Err(c.take().unwrap_or_default());
    };

    let names: Vec<&str> = raw.roles.iter().map(|r| r.name.as_str()).collect();
    let role_list = || known(names.iter().map(|n| n.to_string()));
    let role_index = |c: &mut Checker<'_>, at: &str, name: &str| {
        let found = names.iter().position(|n| *n == name);
        if found.is_none() {
            c.error(
                at,
                format!("unknown role `{name}`"),
                format!("use one of: {}", role_list()),
            );
        }
        found
    };
    let seed = raw.seed.unwrap_or(DEFAULT_SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut roles = Vec::with_capacity(raw.roles.len());
    let mut starts = Vec::new();
    for (r, role) in raw.roles.iter().enumerate() {
        let at = format!("roles[{r}]");
        c.name(&format!("{at}.name"), "role", &role.name);
        if names[..r].contains(&role.name.as_str()) {
            c.error(
                &format!("{at}.name"),
                format!("role name `{}` is used twice", role.name),
                "give every role its own name",
            );
        }
        let mut nodes = selector::resolve(&plan, &role.nodes).unwrap_or_else(|errs| {
            for (suffix, m, f) in errs {
                c.error(&format!("{at}.nodes{suffix}"), m, f);
            }
            Vec::new()
        });
        let command = template::parse(&role.command, &names, Some(r), |i| {
            raw.roles[i].port.is_some()
        })
        .unwrap_or_else(|(m, f)| {
            c.error(&format!("{at}.command"), m, f);
            Vec::new()
        });
        if let Some(template::Piece::Text(program)) = command
            .first()
            .and_then(|arg| (arg.len() == 1).then(|| &arg[0]))
        {
            check_program(&mut c, &format!("{at}.command"), program, reachable);
        }
        let metrics = role
            .metrics
            .iter()
            .enumerate()
            .filter_map(|(m, metric)| {
                c.name(&format!("{at}.metrics[{m}].name"), "metric", &metric.name);
                match regex::Regex::new(&metric.regex) {
                    Ok(re) if re.captures_len() >= 2 => Some(Metric {
                        name: metric.name.clone(),
                        regex: re,
                    }),
                    Ok(_) => {
                        c.error(
                            &format!("{at}.metrics[{m}].regex"),
                            "the regex has no capture group",
                            "capture the number, e.g. `\\((\\d+)%\\)`",
                        );
                        None
                    }
                    Err(e) => {
                        let first = e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or("invalid")
                            .trim()
                            .to_string();
                        c.error(
                            &format!("{at}.metrics[{m}].regex"),
                            format!("the regex does not compile: {first}"),
                            "fix the regular expression",
                        );
                        None
                    }
                }
            })
            .collect();
        let start_at = c.value(
            &format!("{at}.start.at"),
            role.start.at.as_ref(),
            parse_time_us,
            0,
        );
        let every = c.value(
            &format!("{at}.start.every"),
            role.start.every.as_ref(),
            parse_time_us,
            0,
        );
        let jitter = c.value(
            &format!("{at}.start.jitter"),
            role.start.jitter.as_ref(),
            parse_time_us,
            0,
        );
        if role.start.order.unwrap_or_default() == Order::Random {
            rng.shuffle(&mut nodes);
        }
        for (i, &node) in nodes.iter().enumerate() {
            let offset = if jitter > 0 { rng.u64(0..=jitter) } else { 0 };
            starts.push(Start {
                at_us: start_at + i as u64 * every + offset,
                role: r,
                node,
            });
        }
        roles.push(Role {
            name: role.name.clone(),
            nodes,
            command_line: role.command.clone(),
            command,
            port: role.port,
            env: role
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            files: role.files.iter().map(PathBuf::from).collect(),
            metrics,
            cpu_percent: limit(&mut c, &format!("{at}.cpu"), role.cpu.as_ref(), parse_cpu),
            memory_bytes: limit(
                &mut c,
                &format!("{at}.memory"),
                role.memory.as_ref(),
                parse_memory,
            ),
        });
    }
    starts.sort_by_key(|s| s.at_us);
    // One role per node: a node's logs, cgroup and events belong to one program.
    let mut owner: Vec<Option<usize>> = vec![None; plan.link.nodes.len()];
    for (r, role) in roles.iter().enumerate() {
        for &n in &role.nodes {
            if let Some(first) = owner[n].replace(r) {
                c.error(
                    &format!("roles[{r}].nodes"),
                    format!(
                        "node `{}` is already in role `{}`",
                        plan.link.nodes[n].name, roles[first].name
                    ),
                    "give each node one role; add nodes to the topology for more processes",
                );
                break;
            }
        }
    }

    let prepare = raw
        .prepare
        .iter()
        .enumerate()
        .map(|(i, cmd)| {
            template::parse(cmd, &names, None, |r| raw.roles[r].port.is_some()).unwrap_or_else(
                |(m, f)| {
                    c.error(&format!("prepare[{i}]"), m, f);
                    Vec::new()
                },
            )
        })
        .collect();

    let mut events = Vec::new();
    for (i, e) in raw.events.iter().enumerate() {
        let at = format!("events[{i}]");
        let at_us = c.value(&format!("{at}.at"), Some(&e.at), parse_time_us, 0);
        let params: Vec<(&str, &str)> = [
            ("up", &e.up),
            ("down", &e.down),
            ("latency", &e.latency),
            ("loss", &e.loss),
            ("delay", &e.delay),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.0.as_str())))
        .chain(
            [("from", &e.from), ("to", &e.to)]
                .into_iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (k, v))),
        )
        .collect();
        // A selector that is neither a string nor a list stands for no nodes, and is
        // refused once the action is known to take some.
        let terms = e.nodes.as_ref().map(selector::terms);
        let written = Written {
            action: &e.action,
            nodes: terms
                .as_ref()
                .map(|t| t.as_ref().map_or(&[][..], |t| &t.texts[..])),
            params: &params,
        };
        match actions::build(&plan, &written) {
            Ok(action) => match terms {
                Some(Err((m, f))) => c.error(&format!("{at}.nodes"), m, f),
                _ => events.push(Event { at_us, action }),
            },
            Err(errs) => {
                for ChangeError { part, message, fix } in errs {
                    let path = match part {
                        Part::Whole => at.clone(),
                        Part::Action => format!("{at}.action"),
                        Part::Selector => format!("{at}.nodes"),
                        Part::Term(i) => {
                            let suffix = match &terms {
                                Some(Ok(t)) => t.suffix(i),
                                _ => String::new(),
                            };
                            format!("{at}.nodes{suffix}")
                        }
                        Part::Param(key) => format!("{at}.{key}"),
                    };
                    c.error(&path, message, fix);
                }
            }
        }
    }
    let scenario_file = raw
        .scenario
        .as_ref()
        .map(|rel| file.parent().unwrap_or(Path::new(".")).join(rel));
    if let Some(path) = &scenario_file {
        match std::fs::read_to_string(path) {
            Ok(text) => match scenario::parse(&plan, path, &text) {
                Ok(found) => events.extend(found),
                Err(errs) => c.errors.extend(errs),
            },
            Err(e) => c.error(
                "scenario",
                format!("cannot read `{}`: {e}", path.display()),
                "give a path relative to the experiment file",
            ),
        }
    }
    events.sort_by_key(|e| e.at_us);

    let after_us = c.value("stop.after", Some(&raw.stop.after), parse_time_us, 0);
    if after_us == 0 && parse_time_us(&raw.stop.after.0).is_ok() {
        c.error(
            "stop.after",
            "the duration cap is 0",
            "give the longest the run may take, e.g. `10m`",
        );
    }
    let exited = raw
        .stop
        .exited
        .iter()
        .enumerate()
        .filter_map(|(i, name)| role_index(&mut c, &format!("stop.exited[{i}]"), name))
        .collect();
    let metric = raw.stop.metric.as_ref().and_then(|m| {
        // Any name may arrive through the `P2PLAB name=value` line protocol, so the metric
        // need not be one of the role's regexes.
        let role = role_index(&mut c, "stop.metric.role", &m.role)?;
        Some(MetricStop {
            name: m.name.clone(),
            role,
            at_least: m.at_least,
        })
    });

    if let Some(found) = c.take() {
        return Err(found);
    }
    let name = raw.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map_or("experiment".into(), |s| s.to_string_lossy().into_owned())
    });
    let experiment = Experiment {
        name,
        file: file.to_path_buf(),
        topology_file,
        scenario_file,
        plan,
        seed,
        roles,
        prepare,
        starts,
        events,
        stop: StopRule {
            exited,
            after_us,
            metric,
        },
        on_failure: raw.on_failure.unwrap_or(FailurePolicy::Continue),
        on_host_failure: raw.on_host_failure.unwrap_or(FailurePolicy::Abort),
    };
    // A program named through placeholders, checked as its first node will run it.
    for (r, role) in experiment.roles.iter().enumerate() {
        let (Some(&node), Some(word)) = (role.nodes.first(), role.command.first()) else {
            continue;
        };
        let plain = word.len() == 1 && matches!(word[0], template::Piece::Text(_));
        if !plain && !made_by_the_run(word) {
            let program = experiment.command(r, node, Path::new("/")).swap_remove(0);
            check_program(&mut c, &format!("roles[{r}].command"), &program, reachable);
        }
    }
    match c.take() {
        Some(found) => Err(found),
        None => Ok(experiment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_binary_multiples() {
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("1G"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5g"), Ok(3 << 29));
        assert_eq!(parse_memory("64MiB"), Ok(64 << 20));
        assert_eq!(parse_memory("100000K"), Ok(102_400_000));
        assert_eq!(parse_memory(" 2 kB "), Ok(2048));
        for bad in ["0M", "12", "5T", "lots", "M"] {
            assert_eq!(
                parse_memory(bad).unwrap_err().0,
                format!("`{bad}` is not a memory size")
            );
        }
    }

    #[test]
    fn cpu_shares_are_positive_percentages() {
        assert_eq!(parse_cpu("50%"), Ok(50.0));
        assert_eq!(parse_cpu(" 250 % "), Ok(250.0));
        for bad in ["0%", "-5%", "50", "half%"] {
            assert_eq!(
                parse_cpu(bad).unwrap_err().0,
                format!("`{bad}` is not a CPU share")
            );
        }
    }

    #[test]
    fn a_program_is_an_executable_file_by_path_or_on_path() {
        assert_eq!(resolve_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        let sh = resolve_program("sh").expect("sh is on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        // Readable but not executable, a directory (which has execute bits), missing.
        assert_eq!(resolve_program("/etc/passwd"), None);
        assert_eq!(resolve_program("/bin"), None);
        assert_eq!(resolve_program("/no/such/program"), None);
        assert_eq!(resolve_program("no-such-program-p2plab"), None);
    }
}

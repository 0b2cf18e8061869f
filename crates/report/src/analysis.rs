//! The statistics of one run: counts and completion times per group, fairness of
//! co-located identical processes (same role and group), what metrics were recorded, and
//! the signs of an overloaded host: how late processes started, how busy its CPUs were;
//! and, for a run over several machines, the same per host.
//! Groups and roles keep the order in which `processes.csv` first names them.

use crate::stats::{self, Distribution};
use results::{HostCpu, HostRun, Process, Results, RunInfo, Status};
use serde::Serialize;

/// Everything the report states, in the shape `p2plab report --format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// `run.json` as read.
    pub run: RunInfo,
    pub totals: Counts,
    /// Completion times (s) of all processes that exited with code 0.
    pub completion_s: Option<Distribution>,
    /// One entry per topology group.
    pub groups: Vec<GroupSummary>,
    /// One entry per (role, group).
    pub fairness: Vec<Fairness>,
    pub metrics: Vec<MetricSummary>,
    /// Start lag (s), `start_s - planned_s`, of every process whose planned start is known.
    pub start_lag_s: Option<Distribution>,
    /// How busy the host's CPUs were, when recorded.
    pub host_cpu: Option<HostLoad>,
    /// One entry per host of a run over several machines (absent on one host).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSummary>,
}

/// One host of a run over several machines: what it ran, how busy it was and how its
/// processes fared. The hosts of `run.json` in its order, then any other host that
/// `processes.csv` names (a run that ended before `run.json` listed its hosts), whose
/// address, nodes and clock offset are then unknown.
#[derive(Debug, Clone, Serialize)]
pub struct HostSummary {
    pub host: String,
    pub address: Option<String>,
    /// The nodes placed on the host: its folding ratio.
    pub nodes: Option<usize>,
    /// How the host's processes (`processes.csv`'s rows naming it) ended.
    #[serde(flatten)]
    pub counts: Counts,
    /// Completion times (s) of its processes that exited with code 0.
    pub completion_s: Option<Distribution>,
    /// Jain's index and CV of those completion times.
    pub fairness: Option<Spread>,
    /// How busy its CPUs were, when recorded.
    pub cpu: Option<HostLoad>,
    /// The host's clock minus the controller's (ms).
    pub clock_offset_ms: Option<f64>,
    /// Why the host was lost during the run, if it was.
    pub failure: Option<String>,
}

/// How busy the host's CPUs were over the run: the first sign, with start lag, that a
/// machine hosts too many peers for its measurements to hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostLoad {
    pub cpus: u32,
    /// Busy share over the whole run, `0..=1`.
    pub mean_busy: f64,
    /// The largest busy share of one sample (about a second).
    pub max_busy: f64,
    /// Seconds of the run in samples at least [`SATURATED`] busy.
    pub saturated_s: f64,
    pub samples: usize,
}

/// The busy share from which a host counts as saturated.
pub const SATURATED: f64 = 0.9;

impl HostLoad {
    /// Each sample covers the time since the one before (since the run's start for the
    /// first).
    fn of(cpu: &HostCpu) -> HostLoad {
        let mut before = 0.0;
        let mut saturated_s = 0.0;
        for &(t, busy) in &cpu.samples {
            if busy >= SATURATED {
                saturated_s += t - before;
            }
            before = t;
        }
        HostLoad {
            cpus: cpu.cpus,
            mean_busy: cpu.mean_busy,
            max_busy: cpu.max_busy,
            saturated_s,
            samples: cpu.samples.len(),
        }
    }
}

/// How the processes of a set ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub processes: usize,
    /// Exited with code 0.
    pub exited_ok: usize,
    /// Failed to start, exited with a non-zero code, or killed by a signal p2plab did not
    /// send.
    pub failed: usize,
    /// Ended by a signal p2plab sent (a stop rule, an event, a stop signal to the run).
    pub stopped: usize,
    pub running: usize,
}

impl Counts {
    fn of<'a>(processes: impl IntoIterator<Item = &'a Process>) -> Counts {
        let mut c = Counts::default();
        for p in processes {
            c.processes += 1;
            if p.failed() {
                c.failed += 1;
            } else {
                match p.status {
                    Status::Exited => c.exited_ok += 1,
                    Status::Stopped => c.stopped += 1,
                    Status::Running => c.running += 1,
                    Status::FailedToStart | Status::Killed => {
                        unreachable!("counted as failed above")
                    }
                }
            }
        }
        c
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub group: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Completion times (s) of the group's processes that exited with code 0.
    pub completion_s: Option<Distribution>,
}

/// Fairness among the processes of one role in one group.
#[derive(Debug, Clone, Serialize)]
pub struct Fairness {
    pub role: String,
    pub group: String,
    pub processes: usize,
    /// Over completion times of the processes that exited with code 0.
    pub completion: Option<Spread>,
    /// Over CPU time (user + system) of the processes where it was measured.
    pub cpu: Option<Spread>,
}

/// Jain's index and coefficient of variation of `n` values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    pub jain: Option<f64>,
    pub cv: Option<f64>,
}

impl Spread {
    fn of(xs: &[f64]) -> Option<Spread> {
        (!xs.is_empty()).then(|| Spread {
            n: xs.len(),
            jain: stats::jain_index(xs),
            cv: stats::coefficient_of_variation(xs),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricSummary {
    pub name: String,
    pub nodes: usize,
    pub samples: usize,
    pub first_s: f64,
    pub last_s: f64,
}

/// Computes every figure of the report.
pub fn analyse(results: &Results) -> Analysis {
    let processes = &results.processes;
    let groups = group_by(processes, |p| p.group.clone())
        .into_iter()
        .map(|(group, members)| GroupSummary {
            group,
            counts: Counts::of(members.iter().copied()),
            completion_s: stats::describe(&completions(&members)),
        })
        .collect();
    let fairness = group_by(processes, |p| (p.role.clone(), p.group.clone()))
        .into_iter()
        .map(|((role, group), members)| Fairness {
            role,
            group,
            processes: members.len(),
            completion: Spread::of(&completions(&members)),
            cpu: Spread::of(&members.iter().filter_map(|p| p.cpu_s()).collect::<Vec<_>>()),
        })
        .collect();
    let metrics = group_by(&results.metrics, |m| m.name.clone())
        .into_iter()
        .map(|(name, samples)| MetricSummary {
            name,
            nodes: group_by(&samples, |m| (m.node.clone(), m.role.clone())).len(),
            samples: samples.len(),
            first_s: samples
                .iter()
                .map(|m| m.time_s)
                .fold(f64::INFINITY, f64::min),
            last_s: samples
                .iter()
                .map(|m| m.time_s)
                .fold(f64::NEG_INFINITY, f64::max),
        })
        .collect();
    Analysis {
        run: results.run.clone(),
        totals: Counts::of(processes),
        completion_s: stats::describe(&completions(&processes.iter().collect::<Vec<_>>())),
        groups,
        fairness,
        metrics,
        start_lag_s: stats::describe(&lags(processes).iter().map(|l| l.1).collect::<Vec<_>>()),
        host_cpu: results.run.host_cpu.as_ref().map(HostLoad::of),
        hosts: hosts(results),
    }
}

/// The hosts of `run.json`, then the other hosts `processes.csv` names, with their
/// processes.
fn hosts(results: &Results) -> Vec<HostSummary> {
    let by_host = group_by(results.processes.iter().filter(|p| p.host.is_some()), |p| {
        p.host.clone().unwrap_or_default()
    });
    let members = |name: &str| {
        by_host
            .iter()
            .find(|(host, _)| host == name)
            .map_or(&[][..], |(_, m)| &m[..])
    };
    let summary = |host: &str, run: Option<&HostRun>| {
        let members = members(host);
        let done = completions(members);
        HostSummary {
            host: host.to_string(),
            address: run.map(|h| h.address.clone()),
            nodes: run.map(|h| h.nodes),
            counts: Counts::of(members.iter().copied()),
            completion_s: stats::describe(&done),
            fairness: Spread::of(&done),
            cpu: run.and_then(|h| h.host_cpu.as_ref()).map(HostLoad::of),
            clock_offset_ms: run.map(|h| h.clock_offset_ms),
            failure: run.and_then(|h| h.failure.clone()),
        }
    };
    let listed = &results.run.hosts;
    let others = by_host
        .iter()
        .filter(|(host, _)| !listed.iter().any(|h| &h.name == host));
    listed
        .iter()
        .map(|h| summary(&h.name, Some(h)))
        .chain(others.map(|(host, _)| summary(host, None)))
        .collect()
}

/// `(planned_s, lag)` of every process whose planned start is known.
pub(crate) fn lags(processes: &[Process]) -> Vec<(f64, f64)> {
    processes
        .iter()
        .filter_map(|p| Some((p.planned_s?, p.start_lag_s()?)))
        .collect()
}

/// The processes expected to complete: those of the roles that end by themselves (at
/// least one of their processes exited, or failed). Roles whose processes p2plab stops
/// (trackers, seeds) are left out.
pub(crate) fn expected_to_complete(processes: &[Process]) -> Vec<&Process> {
    let mut completing: Vec<&str> = processes
        .iter()
        .filter(|p| p.status == Status::Exited || p.failed())
        .map(|p| p.role.as_str())
        .collect();
    completing.sort_unstable();
    completing.dedup();
    processes
        .iter()
        .filter(|p| completing.contains(&p.role.as_str()))
        .collect()
}

/// Completion times of the processes that exited with code 0.
pub(crate) fn completions(processes: &[&Process]) -> Vec<f64> {
    processes.iter().filter_map(|p| p.completion_s()).collect()
}

/// Splits `items` by `key`, keys in order of first appearance.
pub(crate) fn group_by<'a, T, K: Eq + std::hash::Hash + Clone>(
    items: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
) -> Vec<(K, Vec<&'a T>)>
where
    T: 'a,
{
    let mut index = std::collections::HashMap::new();
    let mut groups: Vec<(K, Vec<&T>)> = Vec::new();
    for item in items {
        let k = key(item);
        let i = *index.entry(k.clone()).or_insert_with(|| {
            groups.push((k, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(item);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use results::Backend;

    /// Eight processes: two seeds and a leech in `east` that exit with 0 after 3, 6 and 9 s,
    /// and in `west` a leech of each other ending (exit 1, stopped by p2plab, running, not
    /// started, killed by SIGSEGV).
    const PROCESSES: &str = "node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received
e1,seed,east,10.0.0.1,1,1,4,exited,0,,1,0.5,,,
e2,seed,east,10.0.0.2,2,1,7,exited,0,,2,1,,,
w1,leech,west,10.0.0.5,3,0,2,exited,1,,0.25,0.25,,,
w2,leech,west,10.0.0.6,4,0,5,stopped,,9,,,,,
w3,leech,west,10.0.0.7,5,0,,running,,,1,0,,,
w4,leech,west,10.0.0.8,,0,,failed_to_start,,,,,,,
w5,leech,west,10.0.0.9,7,0,1,killed,,11,,,,,
e3,leech,east,10.0.0.3,6,0,9,exited,0,,3,0,,,
";

    /// Samples out of time order; `progress` from e1 as seed and as leech, and from e2.
    const METRICS: &str = "time_s,node,role,name,value
3,e1,seed,progress,1
4,e3,leech,rate,1
1,e1,seed,progress,1
2.5,e1,leech,progress,1
2,e2,seed,progress,1
0.5,e3,leech,rate,1
";

    /// The records of a CSV text with its header line.
    fn rows<T: serde::de::DeserializeOwned>(csv: &str) -> Vec<T> {
        csv::Reader::from_reader(csv.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A run of the processes and metrics above.
    fn results() -> Results {
        Results {
            dir: "/r".into(),
            run: RunInfo {
                name: "r".into(),
                started_unix: 0.0,
                duration_s: 10.0,
                topology: "t.yaml".into(),
                backend: Backend::None,
                kernel: "k".into(),
                p2plab_version: "0".into(),
                seed: 1,
                stopped: String::new(),
                experiment: serde_json::Value::Null,
                command_line: vec![],
                resolved_topology: serde_json::Value::Null,
                host_cpu: None,
                hosts: vec![],
            },
            processes: rows(PROCESSES),
            metrics: rows(METRICS),
        }
    }

    /// Counts whose remaining processes are running.
    fn counts(processes: usize, exited_ok: usize, failed: usize, stopped: usize) -> Counts {
        Counts {
            processes,
            exited_ok,
            failed,
            stopped,
            running: processes - exited_ok - failed - stopped,
        }
    }

    #[test]
    fn counts_and_completion_times_per_group() {
        let a = analyse(&results());
        // Exit 1, a failed start and a crash are failures; p2plab's own signal is a stop.
        assert_eq!(a.totals, counts(8, 3, 3, 1));
        let all = a.completion_s.unwrap();
        assert_eq!((all.n, all.min, all.max, all.mean), (3, 3.0, 9.0, 6.0));
        let groups: Vec<(&str, &Counts)> = a
            .groups
            .iter()
            .map(|g| (g.group.as_str(), &g.counts))
            .collect();
        assert_eq!(
            groups,
            [("east", &counts(3, 3, 0, 0)), ("west", &counts(5, 0, 3, 1))]
        );
        let east = a.groups[0].completion_s.as_ref().unwrap();
        assert_eq!((east.n, east.min, east.p50, east.max), (3, 3.0, 6.0, 9.0));
        assert_eq!(a.groups[1].completion_s, None);
    }

    #[test]
    fn fairness_per_role_and_group() {
        let a = analyse(&results());
        let keys: Vec<(&str, &str, usize)> = a
            .fairness
            .iter()
            .map(|f| (f.role.as_str(), f.group.as_str(), f.processes))
            .collect();
        assert_eq!(
            keys,
            [
                ("seed", "east", 2),
                ("leech", "west", 5),
                ("leech", "east", 1)
            ]
        );
        // Completions 3 and 6: 9² / (2 · 45) = 0.9; mean 4.5, population sd 1.5.
        let seeds = &a.fairness[0];
        let spread = seeds.completion.as_ref().unwrap();
        assert_eq!((spread.n, spread.jain), (2, Some(0.9)));
        assert!((spread.cv.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // CPU 1.5 and 3 s: the same shape scaled by 1/2.
        let cpu = seeds.cpu.as_ref().unwrap();
        assert_eq!((cpu.n, cpu.jain), (2, Some(0.9)));
        assert!((cpu.cv.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // No west leech exited with 0; two of them have CPU times (0.5 and 1 s).
        let west = &a.fairness[1];
        assert_eq!(west.completion, None);
        let cpu = west.cpu.as_ref().unwrap();
        assert_eq!((cpu.n, cpu.jain), (2, Some(2.25 / 2.5)));
        let lone = a.fairness[2].completion.as_ref().unwrap();
        assert_eq!(
            lone,
            &Spread {
                n: 1,
                jain: Some(1.0),
                cv: Some(0.0)
            }
        );
    }

    #[test]
    fn metrics_count_nodes_samples_and_their_time_span() {
        let a = analyse(&results());
        let metrics: Vec<(&str, usize, usize, f64, f64)> = a
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.nodes, m.samples, m.first_s, m.last_s))
            .collect();
        // `progress` comes from e1 as seed, e1 as leech and e2: three (node, role) pairs.
        assert_eq!(
            metrics,
            [("progress", 3, 4, 1.0, 3.0), ("rate", 1, 2, 0.5, 4.0)]
        );
    }

    #[test]
    fn start_lag_is_start_minus_planned_of_every_process_with_a_plan() {
        let mut r = results();
        // Lags 0.25, 0, 0.5 (a failed start lags too), 0 and 1; the last row has no plan
        // (older results).
        r.processes = rows(
            "node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received
a1,p,a,10.0.0.1,1,0,0.25,1,exited,0,,,,,,
a2,p,a,10.0.0.2,2,1,1,2,exited,0,,,,,,
a3,p,a,10.0.0.3,,2,2.5,2.5,failed_to_start,,,,,,,
a4,p,a,10.0.0.4,4,3,3,,running,,,,,,,
a5,p,a,10.0.0.5,5,4,5,6,exited,0,,,,,,
a6,p,a,10.0.0.6,6,,9,10,exited,0,,,,,,
",
        );
        let lag = analyse(&r).start_lag_s.unwrap();
        assert_eq!(
            (lag.n, lag.min, lag.p50, lag.mean, lag.p99, lag.max),
            (5, 0.0, 0.25, 0.35, 1.0, 1.0)
        );
        assert_eq!(analyse(&results()).start_lag_s, None);
    }

    #[test]
    fn host_load_counts_the_time_in_saturated_samples() {
        let mut r = results();
        assert_eq!(analyse(&r).host_cpu, None);
        r.run.host_cpu = Some(HostCpu {
            cpus: 8,
            mean_busy: 0.6,
            max_busy: 0.95,
            samples: vec![(1.0, 0.5), (2.0, 0.95), (2.5, 0.9), (4.0, 0.2)],
        });
        // Saturated from 1 to 2 s and from 2 to 2.5 s.
        assert_eq!(
            analyse(&r).host_cpu,
            Some(HostLoad {
                cpus: 8,
                mean_busy: 0.6,
                max_busy: 0.95,
                saturated_s: 1.5,
                samples: 4,
            })
        );
    }
}

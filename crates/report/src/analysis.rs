//! The statistics of one run: counts and completion times per group, fairness of
//! co-located identical processes (same role and group), and what metrics were recorded.
//! Groups and roles keep the order in which `processes.csv` first names them.

use crate::read::{Process, Results, RunInfo, Status};
use crate::stats::{self, Distribution};
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
}

/// How the processes of a set ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub processes: usize,
    /// Exited with code 0.
    pub exited_ok: usize,
    /// Failed to start or exited with a non-zero code.
    pub failed: usize,
    /// Ended by a signal.
    pub killed: usize,
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
                    Status::Killed => c.killed += 1,
                    Status::Running => c.running += 1,
                    Status::FailedToStart => unreachable!("counted as failed above"),
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
    }
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

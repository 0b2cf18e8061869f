//! The run record: what a run started that a network's state file does not cover (its
//! cgroups and results directory), written before any process starts, next to the state
//! file, so that `p2plab down` can end the run's processes after the controller died.

use cgroup::CgroupDir;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// The controller's pid.
    pub pid: u32,
    pub results: PathBuf,
    /// The run's cgroup directories, `v2:` or `v1:` then the path.
    pub cgroups: Vec<String>,
}

fn path(name: &str) -> PathBuf {
    shaping::run_dir().join(format!("{name}.run.json"))
}

pub fn encode(places: &[CgroupDir]) -> Vec<String> {
    places
        .iter()
        .map(|p| match p {
            CgroupDir::V2(d) => format!("v2:{}", d.display()),
            CgroupDir::V1(d) => format!("v1:{}", d.display()),
        })
        .collect()
}

fn decode(text: &str) -> Option<CgroupDir> {
    let (kind, dir) = text.split_once(':')?;
    match kind {
        "v2" => Some(CgroupDir::V2(dir.into())),
        "v1" => Some(CgroupDir::V1(dir.into())),
        _ => None,
    }
}

pub fn save(name: &str, record: &RunRecord) -> std::io::Result<()> {
    let p = path(name);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &p,
        serde_json::to_string_pretty(record).map_err(std::io::Error::other)?,
    )
}

pub fn remove(name: &str) {
    let _ = std::fs::remove_file(path(name));
}

/// Ends every process of run `name` (its cgroups) and forgets the run. `Ok(false)` when
/// no run of that name was recorded.
pub fn end(name: &str) -> std::io::Result<bool> {
    let p = path(name);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(false);
    };
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?;
    let places: Vec<CgroupDir> = record.cgroups.iter().filter_map(|c| decode(c)).collect();
    if !places.is_empty() {
        cgroup::RunGroup::reopen(places).remove()?;
    }
    std::fs::remove_file(&p)?;
    Ok(true)
}

/// Whether a run record exists for `name`.
pub fn exists(name: &str) -> bool {
    Path::new(&path(name)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_places_survive_the_record() {
        let places = [
            CgroupDir::V2("/sys/fs/cgroup/p2plab/swarm-7".into()),
            CgroupDir::V1("/sys/fs/cgroup/cpu,cpuacct/p2plab/swarm-7".into()),
            CgroupDir::V2("/odd/dir:with a colon".into()),
        ];
        let text = encode(&places);
        assert_eq!(
            text,
            [
                "v2:/sys/fs/cgroup/p2plab/swarm-7",
                "v1:/sys/fs/cgroup/cpu,cpuacct/p2plab/swarm-7",
                "v2:/odd/dir:with a colon",
            ]
        );
        let back: Vec<CgroupDir> = text.iter().filter_map(|t| decode(t)).collect();
        assert_eq!(back, places);
    }

    #[test]
    fn an_entry_of_no_known_version_is_skipped() {
        assert_eq!(decode("v3:/sys/fs/cgroup/x"), None);
        assert_eq!(decode("/sys/fs/cgroup/x"), None);
    }
}

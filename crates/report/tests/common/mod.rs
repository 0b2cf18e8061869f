//! What the report's integration tests share: a result directory written from text.

/// A result directory of `run` (`run.json`), `processes` (`processes.csv`) and no metric
/// sample, read.
pub fn results_of(run: &str, processes: &str) -> (tempfile::TempDir, results::Results) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("run.json"), run).unwrap();
    std::fs::write(tmp.path().join("processes.csv"), processes).unwrap();
    std::fs::write(
        tmp.path().join("metrics.csv"),
        "time_s,node,role,name,value\n",
    )
    .unwrap();
    let results = results::load(tmp.path()).unwrap();
    (tmp, results)
}

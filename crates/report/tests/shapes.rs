//! Result directories of unusual shapes render without panicking and say what they show:
//! a run with no rows at all, and one with more groups and nodes than a chart has lines.

use std::fmt::Write;
use std::path::Path;

const RUN: &str = r#"{"name": "r", "started_unix": 0, "duration_s": 10, "topology": "t.yaml",
 "backend": "none", "kernel": "k", "p2plab_version": "0", "seed": 1, "experiment": null}"#;
const HEADER: &str = "node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n";

fn write(dir: &Path, processes: &str, metrics: &str) {
    std::fs::write(dir.join("run.json"), RUN).unwrap();
    std::fs::write(dir.join("processes.csv"), format!("{HEADER}{processes}")).unwrap();
    std::fs::write(
        dir.join("metrics.csv"),
        format!("time_s,node,role,name,value\n{metrics}"),
    )
    .unwrap();
}

#[test]
fn an_empty_run_renders_without_charts() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "", "");
    let path = report::write_html(tmp.path()).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    assert!(!html.contains("<svg"));
    for text in [
        "No process exited with code 0.",
        "No processes were recorded.",
        "No metric samples were recorded.",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    let analysis = report::analyse(&results::load(tmp.path()).unwrap());
    assert_eq!(analysis.totals.processes, 0);
    assert!(analysis.completion_s.is_none());
    assert!(report::text(&analysis).contains("0 processes: 0 exited ok"));
}

#[test]
fn many_groups_and_nodes_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut processes, mut metrics) = (String::new(), String::new());
    for i in 0..40 {
        let _ = writeln!(
            processes,
            "n{i},peer,g{i},10.0.0.{i},{i},0,{},exited,0,,1,0,1,1,1",
            1 + i % 7
        );
        for t in 0..5 {
            let _ = writeln!(metrics, "{t},n{i},peer,rate,{}", t * i);
        }
    }
    write(tmp.path(), &processes, &metrics);
    let results = results::load(tmp.path()).unwrap();
    let html = report::html(&results, &report::analyse(&results)).unwrap();
    assert!(html.contains("Completion time CDF (12 largest of 40 groups)"));
    assert!(html
        .contains("rate: 200 samples from 40 nodes (spread across the nodes that have reported"));
    assert!(html.contains("p10 to p90"));
}

#[test]
fn a_group_where_nothing_completed_keeps_its_cdf_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "a1,peer,alive,10.0.0.1,1,0,4,exited,0,,1,0,1,1,1\n\
         d1,peer,dead,10.0.1.1,2,0,1,exited,1,,1,0,1,1,1\n\
         d2,peer,dead,10.0.1.2,,0,,failed_to_start,,,,,,,\n",
        "",
    );
    let html = std::fs::read_to_string(report::write_html(tmp.path()).unwrap()).unwrap();
    assert!(html.contains("alive: 1 of 1 completed"), "{html}");
    assert!(html.contains("dead: 0 of 2 completed"), "{html}");
}

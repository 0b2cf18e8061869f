//! What `report.html` shows a researcher on a synthetic run of 1,000 processes: a metric
//! chart whose median reaches the end (finished nodes keep their last value), failures
//! grouped by reason with links to their logs, a CDF saying how many completed, intended
//! stops not called kills, an ISO date, human byte units, the topology with its delay
//! heatmap, the command line that reproduces the run, and no table of every process.

mod synthetic;

#[test]
fn a_large_run_reads_as_a_researcher_expects() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write(tmp.path(), 1000, 20_000).unwrap();
    let path = report::write_html(tmp.path()).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    let results = results::load(tmp.path()).unwrap();
    let failed: Vec<_> = results.processes.iter().filter(|p| p.failed()).collect();
    let exit_1 = failed.iter().filter(|p| p.exit_code == Some(1)).count();
    let not_started = failed.len() - exit_1;
    for text in [
        // the date, the command line, the topology
        "started 2026-11-18T11:06:40Z",
        "<code>p2plab run synthetic.yaml --results &#39;/data/my runs&#39;</code>",
        "<td>adsl</td><td>128 kbit/s</td><td>2 Mbit/s</td><td>30 ms</td><td>0.1%</td>",
        "<svg id=\"chart-delays-svg\"",
        "<title>g0 to g7: 40 ms</title>",
        // failures grouped by reason, with their logs
        &format!("<td>exited with code 1</td><td>{exit_1}</td>"),
        &format!("<td>did not start</td><td>{not_started}</td>"),
        "<a href=\"logs/",
        // per group: how many of its leechers completed
        "g1: ",
        " completed",
        // processes over time instead of a bar per process; no full table
        "<svg id=\"chart-processes-svg\"",
        "The 1000 processes are in <a href=\"processes.csv\">processes.csv</a>",
        // units
        "progress (%)",
        " MB</td>",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    // At 20 processes every process is listed: the seeds as stopped by p2plab, by SIGTERM,
    // and a bar per process on the timeline.
    let small = tempfile::tempdir().unwrap();
    synthetic::write(small.path(), 20, 400).unwrap();
    let html_20 = std::fs::read_to_string(report::write_html(small.path()).unwrap()).unwrap();
    for text in [
        "<td>stopped by p2plab</td><td>-</td><td>SIGTERM</td>",
        "<svg id=\"chart-timeline-svg\"",
        "All 20 processes",
    ] {
        assert!(html_20.contains(text), "missing {text:?}");
    }
    assert!(!html.contains("Process timeline"));
    // The seeds (stopped by p2plab) are not in the CDF: 125 processes per group, one a
    // seed, so each group's line counts 124.
    assert!(html.contains(" of 124 completed"), "the CDF's counts");
    // The only red in the page is failure's.
    for red in ["#d62728", "#D62728", "rgb(214,39,40)", "#FF0000", "#ff0000"] {
        assert!(!html.contains(red), "{red} is not failure's colour");
    }
}

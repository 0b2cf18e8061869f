//! A run that recorded its planned starts and the host's CPU: the text, the JSON and the
//! HTML page state the start lag and the host's load.

mod common;
use common::results_of;

const RUN: &str = r#"{"name": "r", "started_unix": 0, "duration_s": 4, "topology": "t.yaml",
 "backend": "none", "kernel": "k", "p2plab_version": "0", "seed": 1, "experiment": null,
 "command_line": ["p2plab", "run", "e.yaml"], "resolved_topology": {"nodes": 3},
 "host_cpu": {"cpus": 2, "mean_busy": 0.55, "max_busy": 0.95,
              "samples": [[1, 0.2], [2, 0.95], [3.5, 0.5]]}}"#;
const PROCESSES: &str = "node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received
a-1,p,a,10.0.0.1,1,0,0.5,3,exited,0,,,,,,
a-2,p,a,10.0.0.2,2,1,1,3,exited,0,,,,,,
a-3,p,a,10.0.0.3,3,2,2.25,3,exited,0,,,,,,
";

#[test]
fn text_json_and_html_show_the_start_lag_and_the_hosts_load() {
    let (_tmp, results) = results_of(RUN, PROCESSES);
    let analysis = report::analyse(&results);

    let text = report::text(&analysis);
    let lag = "start lag: median 0.250 s, p99 0.500 s, max 0.500 s over 3 scheduled starts";
    let load = "host CPU: 55% busy on average, 95% at most, 1.0 s at 90% or more (2 CPUs)";
    for line in [lag, load] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }

    let json: serde_json::Value = serde_json::from_str(&report::json(&analysis)).unwrap();
    assert_eq!(json["start_lag_s"]["p50"], 0.25);
    assert_eq!(json["start_lag_s"]["max"], 0.5);
    assert_eq!(json["host_cpu"]["mean_busy"], 0.55);
    assert_eq!(json["host_cpu"]["saturated_s"], 1.0);
    assert_eq!(json["run"]["command_line"][1], "run");

    let html = report::html(&results, &analysis).unwrap();
    for shown in [
        lag,
        load,
        "Host CPU busy (2 CPUs)",
        "Start lag (3 scheduled starts)",
        "<code>p2plab run e.yaml</code>",
        "Resolved topology",
    ] {
        assert!(html.contains(shown), "missing {shown:?}");
    }
    assert!(!html.contains("<script"));
}

#[test]
fn many_start_lags_are_drawn_as_the_median_and_largest_of_each_few() {
    let mut processes = PROCESSES.lines().next().unwrap().to_string() + "\n";
    for i in 0..700 {
        let planned = f64::from(i) * 0.01;
        processes += &format!(
            "n{i},p,a,10.0.0.1,{i},{planned},{},9,exited,0,,,,,,\n",
            planned + 0.001 * f64::from(i % 7)
        );
    }
    let (_tmp, results) = results_of(RUN, &processes);
    let html = report::html(&results, &report::analyse(&results)).unwrap();
    // 700 starts in bins of 3: one line each for the median and the largest lag.
    for label in ["largest of each 3 starts", "median of each 3 starts"] {
        assert!(html.contains(label), "missing {label:?}");
    }
    assert!(!html.contains("<circle"));
}

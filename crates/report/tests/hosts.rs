//! A run over several machines: the text, the JSON and the HTML page add a table with a
//! row per host (processes, folding ratio, CPU busy, median completion, Jain's index,
//! clock offset, why it was lost); a run on one host has none.

mod common;
use common::results_of;

/// Two hosts in `run.json`: `h1` with its CPU recorded, `h2` lost during the run.
const RUN: &str = r#"{"name": "spread", "started_unix": 0, "duration_s": 12, "topology": "t.yaml",
 "backend": "nfqueue", "kernel": "6.1", "p2plab_version": "0", "seed": 1, "experiment": null,
 "hosts": [
  {"name": "h1", "address": "172.31.9.11", "nodes": 3, "backend": "nfqueue", "kernel": "6.1",
   "clock_offset_ms": -0.25,
   "host_cpu": {"cpus": 2, "mean_busy": 0.4, "max_busy": 0.875, "samples": [[1, 0.4]]}},
  {"name": "h2", "address": "172.31.9.12", "nodes": 2, "backend": "nfqueue", "kernel": "6.1",
   "clock_offset_ms": 3, "failure": "its agent stopped answering (no heartbeat for 10 s)"}]}"#;

/// `h1` runs three processes that complete in 2, 4 and 6 s; `h2` one that completes in
/// 3 s and one marked failed when the host was lost; `h3`, which `run.json` does not list,
/// one; and a row without a host.
const PROCESSES: &str = "node,role,group,ip,pid,planned_s,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received,host
a-1,p,a,10.0.0.1,1,0,0,2,exited,0,,,,,,,h1
a-2,p,a,10.0.0.2,2,0,0,4,exited,0,,,,,,,h1
a-3,p,a,10.0.0.3,3,0,0,6,exited,0,,,,,,,h1
b-1,p,b,10.0.1.1,4,0,1,4,exited,0,,,,,,,h2
b-2,p,b,10.0.1.2,,0,1,,failed_to_start,,,,,,,,h2
c-1,p,c,10.0.2.1,6,0,0,5,exited,0,,,,,,,h3
d-1,p,d,10.0.3.1,7,0,0,5,exited,0,,,,,,,
";

#[test]
fn a_run_over_hosts_reports_a_row_per_host_and_one_on_one_host_none() {
    let (_tmp, results) = results_of(RUN, PROCESSES);
    let analysis = report::analyse(&results);

    let text = report::text(&analysis);
    // Jain's index of 2, 4 and 6 s: 144 / (3 · 56) = 0.857; of one value: 1.
    let table = "\
host  address      nodes  processes  exited_ok  failed  cpu_mean  cpu_max  median_s   jain  offset_ms
h1    172.31.9.11      3          3          3       0       40%      88%      4.00  0.857       -0.2
h2    172.31.9.12      2          2          1       1         -        -      3.00  1.000        3.0
h3    -                -          1          1       0         -        -      5.00  1.000          -
host h2 was lost: its agent stopped answering (no heartbeat for 10 s)
";
    assert!(text.contains(table), "no host table:\n{table}in\n{text}");

    let json: serde_json::Value = serde_json::from_str(&report::json(&analysis)).unwrap();
    let h1 = &json["hosts"][0];
    assert_eq!(
        (&h1["host"], &h1["nodes"], &h1["processes"]),
        (&"h1".into(), &3.into(), &3.into())
    );
    assert_eq!(h1["completion_s"]["p50"], 4.0);
    assert_eq!(h1["cpu"]["max_busy"], 0.875);
    assert_eq!(h1["clock_offset_ms"], -0.25);
    assert_eq!(json["hosts"][1]["failed"], 1);
    assert_eq!(
        json["hosts"][1]["failure"],
        "its agent stopped answering (no heartbeat for 10 s)"
    );
    assert_eq!(json["hosts"][2]["address"], serde_json::Value::Null);
    assert_eq!(json["hosts"].as_array().unwrap().len(), 3);

    let html = report::html(&results, &analysis).unwrap();
    for shown in [
        "<h2>Hosts</h2>",
        "<th>nodes (folding ratio)</th>",
        "<tr><td>h1</td><td>172.31.9.11</td><td>3</td><td>3</td><td>3</td><td>0</td><td>40%</td><td>88%</td><td>4.00</td><td>0.857</td><td>-0.2</td><td></td></tr>",
        "<tr class=\"failed\"><td>h2</td>",
        "<td>its agent stopped answering (no heartbeat for 10 s)</td>",
        "<th>node</th><th>host</th><th>role</th>",
        "<td>b-2</td><td>h2</td>",
        "<td>d-1</td><td>-</td>",
    ] {
        assert!(html.contains(shown), "missing {shown:?}");
    }

    // The same run on one host: no host table, no host column.
    let one_host = RUN.split(",\n \"hosts\"").next().unwrap().to_string() + "}";
    let processes: String = PROCESSES
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let (_one, results) = results_of(&one_host, &processes);
    let analysis = report::analyse(&results);
    assert!(!report::text(&analysis).contains("per host"));
    let json: serde_json::Value = serde_json::from_str(&report::json(&analysis)).unwrap();
    assert_eq!(json.get("hosts"), None);
    assert_eq!(json["run"].get("hosts"), None);
    let html = report::html(&results, &analysis).unwrap();
    assert!(!html.contains("<h2>Hosts</h2>"));
    assert!(html.contains("<th>node</th><th>role</th>"));
}

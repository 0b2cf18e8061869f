//! `p2plab report` on a small hand-made result directory: the figures in the JSON, the
//! terminal summary, the charts and values in report.html, and one-line errors naming the
//! file, line and column of a bad row.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const RUN: &str = r#"{"name": "swarm", "started_unix": 1795000000.5, "duration_s": 60.0,
 "topology": "topologies/quickstart.yaml", "backend": "nfqueue", "kernel": "6.1.0-test",
 "p2plab_version": "0.1.0", "seed": 7, "experiment": {"roles": ["tracker", "seed", "leecher"]}}"#;

const HEADER: &str = "node,role,group,ip,pid,start_s,end_s,status,exit_code,signal,cpu_user_s,cpu_sys_s,peak_rss_kb,bytes_sent,bytes_received\n";

// dsl leechers complete in 10, 20 and 30 s; l4 exits with 1, l5 never starts.
// fiber leechers complete in 5 and 6 s; tracker and seed are stopped at the end.
const PROCESSES: &str = "\
tracker,tracker,core,10.0.0.1,100,0,60,stopped,,15,0.5,0.25,2048,1000,2000
seed,seed,core,10.0.0.2,101,0,60,stopped,,15,2,1,4096,5000000,10000
l1,leecher,dsl,10.0.1.1,102,1,11,exited,0,,1,0.5,3000,100,2000000
l2,leecher,dsl,10.0.1.2,103,2,22,exited,0,,1.5,0.5,3000,100,2000000
l3,leecher,dsl,10.0.1.3,104,3,33,exited,0,,2,1,3000,100,2000000
l4,leecher,dsl,10.0.1.4,105,4,9,exited,1,,0.5,0.5,3000,100,1000
l5,leecher,dsl,10.0.1.5,,5,,failed_to_start,,,,,,,
f1,leecher,fiber,10.0.2.1,106,1,6,exited,0,,1,1,3000,100,2000000
f2,leecher,fiber,10.0.2.2,107,2,8,exited,0,,1,1,3000,100,2000000
";

const METRICS: &str = "time_s,node,role,name,value
2,l1,leecher,progress,10
6,l1,leecher,progress,60
11,l1,leecher,progress,100
3,l2,leecher,progress,5
12,l2,leecher,progress,50
22,l2,leecher,progress,100
2,f1,leecher,progress,50
6,f1,leecher,progress,100
5,seed,seed,upload_kbps,120.5
10,seed,seed,upload_kbps,127
";

fn write_results(dir: &Path, processes: &str, metrics: &str) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("run.json"), RUN).unwrap();
    std::fs::write(dir.join("processes.csv"), format!("{HEADER}{processes}")).unwrap();
    std::fs::write(dir.join("metrics.csv"), metrics).unwrap();
}

fn report(dir: &Path, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .args(["report", dir.to_str().unwrap(), "--format", format])
        .output()
        .unwrap()
}

fn stdout_of(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn close(v: &Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() < 1e-9, "{x} != {expected}");
}

#[test]
fn json_has_the_hand_computed_figures() {
    let tmp = tempfile::tempdir().unwrap();
    write_results(tmp.path(), PROCESSES, METRICS);
    let json: Value = serde_json::from_str(&stdout_of(report(tmp.path(), "json"))).unwrap();

    assert_eq!(json["run"]["backend"], "nfqueue");
    assert_eq!(json["run"]["kernel"], "6.1.0-test");
    let totals = &json["totals"];
    assert_eq!(
        [
            &totals["processes"],
            &totals["exited_ok"],
            &totals["failed"],
            &totals["stopped"],
            &totals["running"]
        ],
        [9, 5, 2, 2, 0]
    );
    // All completions 5, 6, 10, 20, 30: the median is the 3rd value.
    close(&json["completion_s"]["p50"], 10.0);

    let groups = json["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["core", "dsl", "fiber"]);
    assert!(groups[0]["completion_s"].is_null());
    let dsl = &groups[1];
    assert_eq!(
        [&dsl["processes"], &dsl["exited_ok"], &dsl["failed"]],
        [5, 3, 2]
    );
    // 10, 20, 30: rule-8 median h = 2 gives 20; p90 h = 3.33 clamps to the maximum.
    close(&dsl["completion_s"]["p50"], 20.0);
    close(&dsl["completion_s"]["p90"], 30.0);
    close(&dsl["completion_s"]["mean"], 20.0);
    close(&dsl["completion_s"]["stddev"], (200.0f64 / 3.0).sqrt());
    // 5 and 6: h = 1.5, halfway.
    close(&groups[2]["completion_s"]["p50"], 5.5);

    let fairness = json["fairness"].as_array().unwrap();
    let leechers_dsl = fairness
        .iter()
        .find(|f| f["role"] == "leecher" && f["group"] == "dsl")
        .unwrap();
    assert_eq!(leechers_dsl["processes"], 5);
    assert_eq!(leechers_dsl["completion"]["n"], 3);
    // (10+20+30)² / (3 · (100+400+900)) = 6/7; CV = sqrt(200/3) / 20.
    close(&leechers_dsl["completion"]["jain"], 6.0 / 7.0);
    close(
        &leechers_dsl["completion"]["cv"],
        (200.0f64 / 3.0).sqrt() / 20.0,
    );
    // CPU 1.5, 2, 3 and 1 (l5 never ran): 7.5² / (4 · 16.25).
    assert_eq!(leechers_dsl["cpu"]["n"], 4);
    close(&leechers_dsl["cpu"]["jain"], 56.25 / 65.0);
    let fiber = fairness.iter().find(|f| f["group"] == "fiber").unwrap();
    close(&fiber["completion"]["jain"], 121.0 / 122.0);

    let metrics = json["metrics"].as_array().unwrap();
    assert_eq!(metrics[0]["name"], "progress");
    assert_eq!(
        (&metrics[0]["nodes"], &metrics[0]["samples"]),
        (&3.into(), &8.into())
    );
    assert_eq!(metrics[1]["name"], "upload_kbps");
}

#[test]
fn text_summarises_groups_and_fairness() {
    let tmp = tempfile::tempdir().unwrap();
    write_results(tmp.path(), PROCESSES, METRICS);
    let text = stdout_of(report(tmp.path(), "text"));
    assert!(
        text.contains("backend nfqueue, kernel 6.1.0-test"),
        "{text}"
    );
    assert!(
        text.contains("9 processes: 5 exited ok, 2 failed, 2 stopped, 0 running"),
        "{text}"
    );
    let dsl: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("dsl "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(dsl, ["dsl", "5", "3", "2", "0", "0", "20.00", "30.00"]);
    let fair: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("leecher") && l.contains(" dsl "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fair,
        ["leecher", "dsl", "5", "3", "0.857", "0.408", "4", "0.865", "0.394"]
    );
}

#[test]
fn html_holds_the_charts_and_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    write_results(tmp.path(), PROCESSES, METRICS);
    let printed = stdout_of(report(tmp.path(), "html"));
    let path = tmp.path().join("report.html");
    assert_eq!(printed.trim_end(), path.to_str().unwrap());
    let html = std::fs::read_to_string(&path).unwrap();

    // CDF, timeline and one chart per metric, inline, no script.
    assert_eq!(html.matches("<svg").count(), 4, "{html}");
    assert!(!html.contains("<script"));
    for text in [
        "Completion time CDF",
        "Process timeline (9 processes)",
        "progress: 8 samples from 3 nodes",
        "upload_kbps: 2 samples from 1 nodes",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    // The summary row of dsl: 5 processes, 3 ok, 2 failed, median 20, p90 30.
    assert!(html.contains(
        "<tr><td>dsl</td><td>5</td><td>3</td><td>2</td><td>0</td><td>0</td><td>20.00</td><td>30.00</td></tr>"
    ));
    assert!(html.contains("<b>nfqueue</b>") && html.contains("<b>6.1.0-test</b>"));
    assert!(
        html.contains("&quot;leecher&quot;"),
        "the experiment inputs are shown"
    );
    // Jain's index of the dsl leechers and the failed processes with their logs.
    assert!(html.contains("<td>0.857</td>"));
    assert!(html.contains("Failures"));
    assert!(html.contains("<a href=\"logs/l4.out\">out</a>"));

    // Rendering again replaces the file.
    std::fs::write(&path, "old").unwrap();
    stdout_of(report(tmp.path(), "html"));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
}

#[test]
fn several_directories_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let (before, after) = (tmp.path().join("before"), tmp.path().join("after"));
    write_results(&before, PROCESSES, METRICS);
    // After: the dsl leechers take twice as long, l4 now completes.
    let slower = PROCESSES
        .replace(",1,11,exited", ",1,21,exited")
        .replace(",2,22,exited", ",2,42,exited")
        .replace(",3,33,exited", ",3,63,exited")
        .replace(",4,9,exited,1,", ",4,9,exited,0,");
    write_results(&after, &slower, METRICS);
    let compare = |format: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_p2plab"))
            .args(["report", before.to_str().unwrap(), after.to_str().unwrap()])
            .args(["--format", format])
            .args(extra)
            .output()
            .unwrap()
    };
    let json: Value = serde_json::from_str(&stdout_of(compare("json", &[]))).unwrap();
    // Leechers only (tracker and seed are stopped): before 5, 6, 10, 20, 30 of 7; after
    // 5, 5, 6, 20, 40, 60 of 7.
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(
        (&runs[0]["processes"], &runs[0]["completed"]),
        (&7.into(), &5.into())
    );
    assert_eq!(
        (&runs[1]["processes"], &runs[1]["completed"]),
        (&7.into(), &6.into())
    );
    close(&runs[0]["completion_s"]["p50"], 10.0);
    let pair = &json["pairs"][0];
    assert_eq!((&pair["a"], &pair["b"]), (&0.into(), &1.into()));
    // The CDFs (out of 7, the 2 that did not complete never do) differ by 1/7 at most:
    // at 5 s (1 against 2), 6 s (2, 3), 30 s (5, 4) and 60 s (5, 6).
    close(&pair["ks_distance"], 1.0 / 7.0);
    let text = stdout_of(compare("text", &[]));
    assert!(
        text.contains("1 swarm") && text.contains("2 swarm"),
        "{text}"
    );
    assert!(text.contains("5 of 7") && text.contains("6 of 7"), "{text}");
    let page = tmp.path().join("compare.html");
    let printed = stdout_of(compare("html", &["--out", page.to_str().unwrap()]));
    assert_eq!(printed.trim_end(), page.to_str().unwrap());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"chart-compare-svg\""), "{html}");
    assert!(html.contains("1 swarm: 5 of 7 completed"), "{html}");
    // A bare file name lands in the current directory.
    let out = Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .current_dir(tmp.path())
        .args([
            "report",
            "before",
            "after",
            "--format",
            "html",
            "--out",
            "here.html",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout_of(out), "here.html\n");
    assert!(tmp.path().join("here.html").is_file());
    // --out names the comparison's page: with one directory, or text, it is refused.
    for args in [
        vec!["report", "before", "--format", "html", "--out", "x.html"],
        vec!["report", "before", "after", "--out", "x.html"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_p2plab"))
            .current_dir(tmp.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with("--out x.html is where the page comparing several runs goes"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!tmp.path().join("x.html").exists());
    }
}

/// Runs `p2plab report` on a result directory with these CSV bodies and checks that it
/// fails with the one line `<dir>/<file><rest>` on stderr.
fn expect_error(processes: &str, metrics: &[u8], file: &str, rest: &str) {
    let tmp = tempfile::tempdir().unwrap();
    write_results(tmp.path(), processes, "");
    std::fs::write(tmp.path().join("metrics.csv"), metrics).unwrap();
    let out = report(tmp.path(), "json");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let expected = format!("{}{rest}\n", tmp.path().join(file).display());
    assert_eq!(String::from_utf8(out.stderr).unwrap(), expected);
}

#[test]
fn a_bad_row_names_file_line_and_column() {
    let l2 = "l2,leecher,dsl,10.0.1.2,103,2,22,exited,";
    expect_error(
        &PROCESSES.replace(&format!("{l2}0,"), &format!("{l2}zero,")),
        METRICS.as_bytes(),
        "processes.csv",
        ":5: column 9 `exit_code`: invalid digit found in string; fix the value or remove the row",
    );
    expect_error(
        &PROCESSES.replace("stopped,,15,2,1", "ended,,15,2,1"),
        METRICS.as_bytes(),
        "processes.csv",
        ":3: column 8 `status`: `ended` is not one of exited, stopped, killed, failed_to_start, running",
    );
    expect_error(
        &PROCESSES.replace("10.0.2.2,107,2,8", "10.0.2.2,107,9,8"),
        METRICS.as_bytes(),
        "processes.csv",
        ":10: column 7 `end_s`: 8 is before start_s 9; times are seconds since the run started",
    );
    expect_error(
        PROCESSES,
        format!("{METRICS}20,l1,leecher,progress,NaN\n").as_bytes(),
        "metrics.csv",
        ":12: column 5 `value`: `NaN` is not a finite number",
    );
    expect_error(
        PROCESSES,
        format!("{METRICS}20,l1,leecher,progress\n").as_bytes(),
        "metrics.csv",
        ":12: the row has 4 fields but the header row has 5; fix or remove the row",
    );
    expect_error(
        PROCESSES,
        &[METRICS.as_bytes(), b"20,l\xff1,leecher,progress,1\n"].concat(),
        "metrics.csv",
        ":12: column 2 `node`: not valid UTF-8; write the file as UTF-8",
    );
}

#[test]
fn a_missing_or_broken_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_results(tmp.path(), PROCESSES, METRICS);
    std::fs::write(
        tmp.path().join("run.json"),
        RUN.replace("\"nfqueue\"", "\"tc\""),
    )
    .unwrap();
    let err = String::from_utf8(report(tmp.path(), "text").stderr).unwrap();
    let run_json = tmp.path().join("run.json");
    assert!(
        err.starts_with(&format!(
            "{}:2:58: unknown variant `tc`",
            run_json.display()
        )),
        "{err}"
    );

    std::fs::remove_file(tmp.path().join("metrics.csv")).unwrap();
    std::fs::write(&run_json, RUN).unwrap();
    let err = String::from_utf8(report(tmp.path(), "text").stderr).unwrap();
    assert_eq!(
        err,
        format!(
            "cannot read {}: No such file or directory (os error 2); is {} the result directory of a p2plab run?\n",
            tmp.path().join("metrics.csv").display(),
            tmp.path().display()
        )
    );
}

//! `p2plab check`, `plan` and `completions` as a user runs them: exit codes, the error
//! lines on stderr, and the JSON that scripts read.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn p2plab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap()
}

#[test]
fn check_accepts_every_shipped_topology() {
    for file in ["quickstart", "p2plab-bittorrent", "p2plab-5760"] {
        let out = p2plab(&["check", &format!("topologies/{file}.yaml")]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("valid"), "{text}");
    }
    let out = p2plab(&["check", "topologies/p2plab-5760.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("8 groups, 5760 nodes"), "{text}");
    assert!(text.contains("min 15ms, median 80ms, max 160ms"), "{text}");
}

#[test]
fn check_fails_with_every_error_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "profiles:\n  p: {up: 1mbit, down: 2mbit}\ngroups:\n  - {name: a, nodes: 2, profile: x}\n  - {name: b, nodes: 0, profile: p}\n").unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let f = file.display();
    assert_eq!(
        lines,
        [
            format!("{f}:4:34: groups[0].profile: unknown profile `x`; use one of: p"),
            format!("{f}:5:22: groups[1].nodes: expected a node count of at least 1 or a list of node names; write e.g. `nodes: 10` or `nodes: [tracker, seed]`"),
            format!("2 errors in {f}"),
        ]
    );
}

#[test]
fn plan_json_lists_every_node() {
    let out = p2plab(&["plan", "topologies/quickstart.yaml", "--format", "json"]);
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    assert_eq!(
        nodes[0],
        serde_json::json!({"name": "east-1", "ip": "10.10.0.1", "group": "east", "up_bps": 20_000_000,
            "down_bps": 20_000_000, "latency_us": 500, "loss": 0.0, "queue_packets": 1000})
    );
    assert_eq!(plan["groups"][1]["name"], "west");
    assert_eq!(
        plan["groups"][1]["delay_us"],
        serde_json::json!([10_000, 0])
    );
}

#[test]
fn plan_table_has_one_line_per_node_and_completions_work() {
    let out = p2plab(&["plan", "topologies/p2plab-bittorrent.yaml"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1 + 165);
    assert!(text
        .lines()
        .any(|l| l.starts_with("tracker ") && l.contains("10.20.0.1 ")));
    let out = p2plab(&["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("p2plab"));
}

#[test]
fn check_validates_an_experiment_with_its_topology() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.yaml");
    let topo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../topologies/quickstart.yaml");
    let body = format!("topology: {}\nroles:\n  - {{name: peer, nodes: west, command: 'sleep {{index}}', start: {{every: 1s}}}}\nstop: {{after: 1m}}\n", topo.display());
    std::fs::write(&file, &body).unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("role peer             10 processes, starting 0.00s .. 9.00s"),
        "{text}"
    );

    std::fs::write(&file, body.replace("sleep", "no-such-program-p2plab")).unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(":3:40: roles[0].command: program `no-such-program-p2plab` is not installed"),
        "{err}"
    );
}

/// A statically linked program `static` and a script `script` run by it, built in `w`.
fn unreachable_programs(w: &std::path::Path) -> (String, String) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(w.join("static.c"), "int main(void) { return 0; }\n").unwrap();
    let gcc = Command::new("gcc")
        .args(["-static", "-o"])
        .arg(w.join("static"))
        .arg(w.join("static.c"))
        .status()
        .unwrap();
    assert!(gcc.success(), "gcc -static");
    let program = w.join("static").display().to_string();
    let script = w.join("script");
    std::fs::write(&script, format!("#!{program}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program, script.display().to_string())
}

/// An experiment file of one group `g` of `nodes` nodes, with `roles`.
fn experiment_file(nodes: usize, roles: &str) -> String {
    format!(
        "name: check-says-run\ntopology:\n  profiles: {{p: {{up: 1mbit, down: 1mbit}}}}\n  defaults: {{profile: p}}\n  address_plan: {{base: 172.31.173.0/24}}\n  groups: [{{name: g, nodes: {nodes}}}]\nroles:\n{roles}stop: {{after: 1m}}\n"
    )
}

#[test]
fn check_refuses_every_program_run_refuses_all_at_once_where_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path();
    let (program, script) = unreachable_programs(w);
    let file = w.join("exp.yaml");
    std::fs::write(
        &file,
        experiment_file(
            4,
            &format!("  - {{name: a, nodes: 'g[1-1]', command: {program}}}\n  - {{name: b, nodes: 'g[2-2]', command: {script}}}\n  - {{name: c, nodes: 'g[3-3]', command: no-such-program-p2plab}}\n  - {{name: d, nodes: 'g[4-4]', command: 'echo {{ip'}}\n"),
        ),
    )
    .unwrap();
    let f = file.display();
    let check = p2plab(&["check", &file.to_string_lossy()]);
    assert_eq!(check.status.code(), Some(2));
    let err = String::from_utf8(check.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{f}:8:41: roles[0].command: {program} is statically linked: LD_PRELOAD cannot reach it, so it would use the host's address; run a dynamically linked build"),
            format!("{f}:9:41: roles[1].command: {program} is statically linked: LD_PRELOAD cannot reach it, so it would use the host's address; run a dynamically linked build"),
            format!("{f}:10:41: roles[2].command: program `no-such-program-p2plab` is not installed or not executable; install it, or give its full path"),
            format!("{f}:11:41: roles[3].command: unclosed `{{` in `{{ip`; end the placeholder with `}}`, or write `{{{{` for a literal brace"),
            format!("4 errors in {f}"),
        ],
    );

    // `run` refuses the same, in the same words, before it sets anything up.
    let run = Command::new("unshare")
        .args([
            "-n",
            env!("CARGO_BIN_EXE_p2plab"),
            "run",
            "--quiet",
            "exp.yaml",
        ])
        .env("P2PLAB_RUN_DIR", w.join("state"))
        .current_dir(w)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let run_err = String::from_utf8(run.stderr).unwrap();
    let relative: Vec<String> = lines[..4]
        .iter()
        .map(|l| l.replace(&f.to_string(), "exp.yaml"))
        .collect();
    assert_eq!(run_err.lines().collect::<Vec<_>>(), relative);
    assert!(!w.join("results").exists() && !w.join("state").exists());

    // A program named through a placeholder is checked as its first node runs it.
    std::fs::write(
        &file,
        experiment_file(
            1,
            "  - {name: a, nodes: g, command: '{experiment_dir}/static'}\n",
        ),
    )
    .unwrap();
    let check = p2plab(&["check", &file.to_string_lossy()]);
    assert_eq!(check.status.code(), Some(2));
    let err = String::from_utf8(check.stderr).unwrap();
    assert!(
        err.starts_with(&format!(
            "{f}:8:34: roles[0].command: {program} is statically linked"
        )),
        "{err}"
    );
}

#[test]
fn check_refuses_a_go_program_where_it_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let program = common::go_program(dir.path()).display().to_string();
    let file = dir.path().join("exp.yaml");
    let roles = format!("  - {{name: a, nodes: g, command: {program}}}\n");
    std::fs::write(&file, experiment_file(1, &roles)).unwrap();
    let check = p2plab(&["check", &file.to_string_lossy()]);
    assert_eq!(check.status.code(), Some(2));
    let f = file.display();
    assert_eq!(
        String::from_utf8(check.stderr).unwrap().lines().collect::<Vec<_>>(),
        [
            format!("{f}:8:34: roles[0].command: {program} is a Go program: Go makes its socket system calls without libc, so the shim cannot hold it to the node's address; give it an explicit bind address, or run it in a network namespace of its own"),
            format!("1 error in {f}"),
        ]
    );
}

#[test]
fn check_warns_that_run_will_want_the_shim() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.yaml");
    std::fs::write(
        &file,
        experiment_file(1, "  - {name: a, nodes: g, command: 'true'}\n"),
    )
    .unwrap();
    let out = p2plab(&[
        "check",
        "--shim",
        "/nonexistent/libp2plab_shim.so",
        &file.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("p2plab: warning: `p2plab run` will refuse to start here: shim /nonexistent/libp2plab_shim.so not found")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(String::from_utf8(out.stdout).unwrap().contains("valid"));
}

#[test]
fn plan_and_up_name_the_topology_of_an_experiment_and_check_reports_its_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.yaml");
    let f = file.display();
    let t = dir.path().join("net.yaml").display().to_string();
    std::fs::write(
        &file,
        "topology: net.yaml\nroles:\n  - {name: a, nodes: '*', command: 'true'}\nstop: {after: 1m}\n",
    )
    .unwrap();
    for command in ["plan", "up"] {
        let out = p2plab(&[command, &file.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!("{f} is an experiment file (it has `roles`); it names topology {t}: run `p2plab {command} {t}`\n")
        );
    }
    std::fs::write(
        &file,
        "topology: net.yaml\nroles:\n  - name: a\n    nodes: '*'\n    command: echo a: b\nstop: {after: 1m}\n",
    )
    .unwrap();
    let out = p2plab(&["check", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("{f}:5:20: mapping values are not allowed in this context; quote a value that holds `: `, e.g. `command: 'echo a: b'`\n1 error in {f}\n")
    );
}

#[test]
fn check_names_the_cause_of_an_empty_binary_tabbed_or_repeated_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.yaml");
    let f = file.display();
    let check = |content: &[u8]| {
        std::fs::write(&file, content).unwrap();
        let out = p2plab(&["check", &file.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    assert_eq!(
        check(b"\n# to do\n"),
        format!("{f}:1:1: the file is empty: it holds no topology; write the file as the README's format section shows\n1 error in {f}\n")
    );
    assert_eq!(
        check(b"\x7fELF\x02\x01\x01\0\0"),
        format!("{f}:1:8: this is not a text file (it has a NUL byte): it cannot be a topology file; give the topology's YAML file\n1 error in {f}\n")
    );
    let tabbed = check(b"profiles:\n\tp: {up: 1mbit, down: 1mbit}\ngroups: []\n");
    assert!(
        tabbed.contains(&format!("{f}:2:1: a tab indents this line, and YAML indents with spaces only; replace the tab with spaces\n")),
        "{tabbed}"
    );
    assert_eq!(
        check(b"profiles:\n  p: {up: 1mbit, down: 1mbit}\n  p: {up: 2mbit, down: 2mbit}\ngroups: [{name: a, nodes: 2, profile: p}]\n"),
        format!("{f}:3:3: profiles.p: this key is given twice (first on line 2); keep one of them: the second would replace the first\n1 error in {f}\n")
    );
}

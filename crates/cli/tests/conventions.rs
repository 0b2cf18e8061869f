//! The command line's conventions as a user meets them, without a network: the top-level
//! help's first line, every example file the help names exists, completions leave out
//! the hidden subcommands, `check --json` and `plan --json`, `-q` silencing warnings,
//! `NO_COLOR`, and the README's experiment example passing `p2plab check` as written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn p2plab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2plab"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The visible subcommands, as the top-level help lists them.
fn subcommands() -> Vec<String> {
    let help = stdout(&p2plab(&["--help"]));
    let list = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap()
        .to_string();
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_help_opens_with_what_p2plab_does() {
    let help = stdout(&p2plab(&["--help"]));
    let first = help.lines().next().unwrap();
    assert_eq!(
        first, "Emulate networks of thousands of peers on Linux hosts",
        "{help}"
    );
    assert!(!help.contains("library crates"), "{help}");
}

#[test]
fn every_example_file_the_help_names_exists() {
    let commands = subcommands();
    assert!(commands.len() > 10, "{commands:?}");
    let mut named = 0;
    for c in &commands {
        let help = stdout(&p2plab(&[c, "--help"]));
        let files = help
            .split(|ch: char| ch.is_whitespace() || "'\"(),=".contains(ch))
            .filter(|w| w.ends_with(".yaml") && !w.contains('<'));
        for file in files {
            named += 1;
            assert!(
                root().join(file).is_file(),
                "`p2plab {c} --help` names {file}, which is not in the repository:\n{help}"
            );
        }
    }
    assert!(named >= 10, "only {named} example files named");
}

#[test]
fn completions_leave_out_the_hidden_subcommands() {
    // how each shell's script offers a subcommand, shown with the visible `probe`
    fn bash(c: &str) -> String {
        format!("p2plab,{c})")
    }
    fn zsh(c: &str) -> String {
        format!("'{c}:")
    }
    fn fish(c: &str) -> String {
        format!("-a \"{c}\"")
    }
    for (shell, form) in [
        ("bash", bash as fn(&str) -> String),
        ("zsh", zsh),
        ("fish", fish),
    ] {
        let script = stdout(&p2plab(&["completions", shell]));
        assert!(script.contains(&form("probe")), "{shell}: no probe");
        for hidden in ["engine", "agent"] {
            assert!(
                !script.contains(&form(hidden)),
                "{shell} completes `{hidden}`"
            );
        }
    }
}

#[test]
fn plan_json_is_plan_format_json() {
    let file = "topologies/quickstart.yaml";
    let json = stdout(&p2plab(&["plan", file, "--json"]));
    assert_eq!(json, stdout(&p2plab(&["plan", file, "--format", "json"])));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 20);
}

#[test]
fn check_json_says_valid_or_every_error_with_line_and_field() {
    let out = p2plab(&["check", "topologies/quickstart.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["kind"], "topology");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "profiles:\n  p: {up: 1mbit, down: fast}\ndefaults: {profile: p}\ngroups: [{name: g, nodes: 2}]\n",
    )
    .unwrap();
    let out = p2plab(&["check", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let e = &v["errors"][0];
    assert_eq!(e["line"], 2, "{v}");
    assert!(e["field"].as_str().unwrap().contains("down"), "{v}");
    assert!(!e["message"].as_str().unwrap().is_empty(), "{v}");
}

#[test]
fn quiet_leaves_out_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("quietcheck.yaml");
    std::fs::write(
        &exp,
        "topology:\n  profiles: {p: {up: 1mbit, down: 1mbit}}\n  defaults: {profile: p}\n  groups: [{name: g, nodes: 1}]\nroles:\n  - {name: r, nodes: g, command: sleep 1}\nstop: {after: 5s}\n",
    )
    .unwrap();
    let exp = exp.to_str().unwrap();
    let missing = "/nonexistent/libp2plab_shim.so";
    let loud = p2plab(&["check", exp, "--shim", missing]);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("warning"));
    let quiet = p2plab(&["-q", "check", exp, "--shim", missing]);
    assert_eq!(stdout(&quiet), stdout(&loud));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

#[test]
fn no_color_turns_colours_off() {
    let help = |no_color: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2plab"));
        cmd.arg("--help").env("CLICOLOR_FORCE", "1");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    assert!(help(false).contains('\x1b'));
    assert!(!help(true).contains('\x1b'));
}

/// The first ```yaml block after `## The experiment format` in the README.
fn readme_experiment() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("## The experiment format").nth(1).unwrap();
    let block = section.split("```yaml\n").nth(1).unwrap();
    block.split("```").next().unwrap().to_string()
}

/// Links `dir/name` to the repository's `name`.
fn link(dir: &Path, name: &str) {
    std::os::unix::fs::symlink(root().join(name), dir.join(name)).unwrap();
}

#[test]
fn the_readme_experiment_passes_check_as_written() {
    // saved in `examples/`, as the README says, beside the repository's topologies
    let dir = tempfile::tempdir().unwrap();
    link(dir.path(), "topologies");
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    link(dir.path(), "examples/bittorrent");
    let file = dir.path().join("examples/swarm.yaml");
    std::fs::write(&file, readme_experiment()).unwrap();
    let out = p2plab(&["check", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("valid"), "{text}");
    // what the leechers are given is what the prepare commands make
    let exp = readme_experiment();
    assert!(exp.contains("files: [data.torrent]"), "{exp}");
    assert!(exp.contains("prepare.sh"), "{exp}");
}

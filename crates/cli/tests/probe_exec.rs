//! `p2plab probe`, `exec`, how `down`, `status` and `change` find their network, `down
//! --all`, `--json` of `status` and `doctor`, and `up --dry-run`'s engine model, as a user
//! runs them: each test in a network namespace of its own (nfqueue backend: this kernel may
//! have no netem), on its own /24 of 172.31.210-219, its networks named `cli15-*`.

mod common;

use common::{in_netns, succeeded};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// Held by the tests that measure delays: side by side on 2 busy cores, each would add
/// milliseconds to the other's round trips.
static MEASURING: Mutex<()> = Mutex::new(());

/// Two groups of two nodes (a-1 .1, a-2 .2, b-1 .5, b-2 .6 of `base`.0/24): 8 mbit up and
/// down, 2 ms access latency, `loss`, 10 ms between the groups.
fn topology(dir: &Path, file: &str, base: &str, loss: &str) {
    std::fs::write(
        dir.join(file),
        format!(
            "address_plan:\n  base: {base}.0/24\nprofiles:\n  p:\n    up: 8mbit\n    down: 8mbit\n    latency: 2ms\n    loss: {loss}\n    queue: 1000\ndefaults:\n  profile: p\n  delay: 10ms\ngroups:\n  - name: a\n    nodes: 2\n  - name: b\n    nodes: 2\n"
        ),
    )
    .unwrap();
}

/// Runs `script` in a fresh namespace (state files in `dir/state`, `$UP` bringing up
/// `dir/t.yaml` on nfqueue as `--name`), then takes down whatever is left.
fn run(dir: &Path, script: &str) -> std::process::Output {
    in_netns(
        &format!(
            "UP=\"$P2PLAB up t.yaml --shaping nfqueue\"; {script}; rc=$?; \"$P2PLAB\" down --all >/dev/null; exit $rc"
        ),
        &dir.join("state"),
        dir,
    )
}

/// The number after `key` in `line`.
fn number_after(line: &str, key: &str) -> f64 {
    let rest = line
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("{key}: {line}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// `(rtt min, model rtt, goodput, model rate)` of a probe's output: ms and mbit/s.
fn probed(out: &str) -> (f64, f64, f64, f64) {
    let rtt = out.lines().find(|l| l.contains("rtt ")).unwrap();
    let put = out.lines().find(|l| l.contains("goodput ")).unwrap();
    (
        number_after(rtt, "min "),
        number_after(rtt, "model "),
        number_after(put, "goodput "),
        number_after(put, "model "),
    )
}

#[test]
fn probe_measures_rtt_and_goodput_beside_the_model() {
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    topology(dir.path(), "t.yaml", "172.31.210", "0%");
    let out = run(
        dir.path(),
        "$UP --name cli15-probe >/dev/null && \"$P2PLAB\" probe a-1 b-1 --duration 2s && echo === && \"$P2PLAB\" probe a-2 b-2 --udp --duration 2s && echo === && \"$P2PLAB\" probe --all --duration 2s",
    );
    let text = succeeded(&out);
    let parts: Vec<&str> = text.split("===\n").collect();
    for (proto, part) in ["tcp", "udp"].iter().zip(&parts) {
        assert!(part.contains(&format!(", {proto}, 2s:")), "{part}");
        let (rtt, model_rtt, goodput, rate) = probed(part);
        // 2 + 10 + 2 ms each way
        assert_eq!(model_rtt, 28.0, "{part}");
        assert!(rtt >= model_rtt && rtt <= model_rtt + 1.0, "{part}");
        assert_eq!(rate, 8.0, "{part}");
        assert!((goodput - rate).abs() <= 0.1 * rate, "{part}");
    }
    // --all: one pair per ordered group pair, none departing from the model
    let all = parts[2];
    let pairs: Vec<String> = all
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", w[0], w[2], w[3])
        })
        .collect();
    assert_eq!(
        pairs,
        ["a-1 -> a-2", "a-1 -> b-1", "b-1 -> a-1", "b-1 -> b-2"],
        "{all}"
    );
    assert!(!all.contains("DEPARTS"), "{all}");
}

#[test]
fn probe_all_flags_the_pairs_that_depart_from_the_model() {
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    topology(dir.path(), "t.yaml", "172.31.216", "0%");
    // the state file's model says 40 ms from a to b; the engine holds packets 10 ms
    let out = run(
        dir.path(),
        "$UP --name cli15-depart >/dev/null && sed -i 's/\"delay_us\":\\[0,10000,10000,0\\]/\"delay_us\":[0,40000,10000,0]/' \"$P2PLAB_RUN_DIR\"/netns-*/cli15-depart.json && \"$P2PLAB\" probe --all --duration 1s; echo \"exit: $?\"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(text.ends_with("exit: 1\n"), "{text}{stderr}");
    assert_eq!(
        text.matches("DEPARTS from the model: RTT ").count(),
        2,
        "{text}"
    );
    assert!(
        stderr.contains("2 of 4 pairs depart from the model: a-1 -> b-1, b-1 -> a-1"),
        "{stderr}"
    );
}

#[test]
fn exec_binds_and_connects_from_the_nodes_address() {
    let dir = tempfile::tempdir().unwrap();
    topology(dir.path(), "t.yaml", "172.31.211", "0%");
    // b-1 listens (plainly, on its address) and prints its peer; a-1, run by exec, binds a
    // wildcard address and connects
    let listen = "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('172.31.211.5', 9000)); s.listen(1); s.settimeout(20); c, a = s.accept(); print('peer', a[0])";
    let connect = "import socket; s=socket.socket(); s.bind(('0.0.0.0', 0)); print('bound', s.getsockname()[0]); s.connect(('172.31.211.5', 9000))";
    let out = run(
        dir.path(),
        &format!(
            "$UP --name cli15-exec >/dev/null && (python3 -c \"{listen}\" & sleep 1; \"$P2PLAB\" exec a-1 --shim \"$SHIM\" -- python3 -c \"{connect}\"; wait) && \"$P2PLAB\" exec nosuch --shim \"$SHIM\" -- true; echo \"unknown node: $?\""
        ),
    );
    let text = succeeded(&out);
    assert!(text.contains("bound 172.31.211.1\n"), "{text}");
    assert!(text.contains("peer 172.31.211.1\n"), "{text}");
    assert!(text.contains("unknown node: 2\n"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no node `nosuch` in network cli15-exec"),
        "{stderr}"
    );
}

#[test]
fn commands_find_the_only_network_list_several_and_down_all_takes_all() {
    let dir = tempfile::tempdir().unwrap();
    topology(dir.path(), "t.yaml", "172.31.212", "0%");
    topology(dir.path(), "u.yaml", "172.31.213", "0%");
    let out = run(
        dir.path(),
        "$UP --name cli15-one >/dev/null && \"$P2PLAB\" change cut a-1 && \"$P2PLAB\" status --json && echo === \
         && \"$P2PLAB\" up u.yaml --shaping nfqueue --name cli15-two >/dev/null \
;          \"$P2PLAB\" down; echo \"down: $?\"; \"$P2PLAB\" change restore a-1; echo \"change: $?\"; \
         \"$P2PLAB\" status --name cli15-one --json && echo === && \"$P2PLAB\" down --all && \"$P2PLAB\" status --json",
    );
    let text = succeeded(&out);
    let parts: Vec<&str> = text.split("===\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    // one network: `change` needed no name; `status --json` lists it
    assert!(
        parts[0].starts_with("network cli15-one: cut off 1 node\n"),
        "{text}"
    );
    let list: serde_json::Value =
        serde_json::from_str(parts[0].split_once('\n').unwrap().1).unwrap();
    assert_eq!(list[0]["name"], "cli15-one");
    assert_eq!(list[0]["backend"], "nfqueue");
    // two: `down` and `change` refuse to guess and name both
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(parts[1].contains("down: 2\nchange: 2\n"), "{text}");
    assert_eq!(
        stderr
            .matches("2 networks are up here (cli15-one, cli15-two): name one")
            .count(),
        2,
        "{stderr}"
    );
    let one: serde_json::Value =
        serde_json::from_str(parts[1].split("change: 2\n").nth(1).unwrap()).unwrap();
    assert_eq!(one["name"], "cli15-one");
    assert_eq!(one["cut"][0], "a-1");
    assert_eq!(one["nodes"].as_array().unwrap().len(), 4);
    // down --all: both down, nothing left
    assert!(
        parts[2].contains("network cli15-one is down\nnetwork cli15-two is down\n"),
        "{text}"
    );
    assert!(parts[2].ends_with("[]\n"), "{text}");
}

#[test]
fn doctor_json_names_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = in_netns(
        "\"$P2PLAB\" doctor --json",
        &dir.path().join("state"),
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(v["features"]["htb"]["ok"], true, "{v}");
    assert_eq!(v["features"]["nfqueue"]["ok"], true, "{v}");
    let backend = v["backend"].as_str().unwrap();
    assert!(["netem", "nfqueue"].contains(&backend), "{v}");
}

#[test]
fn dry_run_shows_the_engine_model_and_commands_ip_runs() {
    let dir = tempfile::tempdir().unwrap();
    topology(dir.path(), "t.yaml", "172.31.214", "1%");
    let out = in_netns(
        "\"$P2PLAB\" up t.yaml --name cli15-dry --shaping nfqueue --dry-run",
        &dir.path().join("state"),
        dir.path(),
    );
    let text = succeeded(&out);
    for line in [
        "#   a -> b: delay 10ms, loss 0%\n",
        "#   b -> b: delay 0ms, loss 0%\n",
        "#   a-1 (172.31.214.1): latency 2ms, loss 1%\n",
        "#   b-2 (172.31.214.6): latency 2ms, loss 1%\n",
    ] {
        assert!(text.contains(line), "{line}{text}");
    }
    // its `ip link add` lines run as printed, and `ip -d link` shows the same group
    let adds: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ip link add"))
        .collect();
    assert!(!adds.is_empty(), "{text}");
    let out = in_netns(
        &format!("{} && ip -d link show", adds.join(" && ")),
        &dir.path().join("state"),
        dir.path(),
    );
    let shown = succeeded(&out);
    for add in adds {
        let words: Vec<&str> = add.split_whitespace().collect();
        let at = |k: &str| words[words.iter().position(|w| *w == k).unwrap() + 1];
        let line = shown
            .lines()
            .find(|l| l.contains(&format!(" {}: ", at("add"))))
            .unwrap_or_else(|| panic!("{add}\n{shown}"));
        assert!(line.contains(&format!(" group {} ", at("group"))), "{line}");
    }
}

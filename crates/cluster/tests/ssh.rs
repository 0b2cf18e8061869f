//! The controller's SSH sessions against real sshds: a namespace cluster
//! (`cluster/ns-cluster`) per test, each on its own /24 of 172.31.240-249 (248 is the idle
//! test's), entered on the test's thread so that nothing touches this machine's own
//! network. Commands run on the host they were sent to; installs are content-addressed and
//! copied once; trees round-trip byte for byte; a started command carries lines both ways
//! and says why it ended; unknown and changed host keys, and a client key the host does not
//! know, are refused in one line naming the host; many hosts connect at once; a host given
//! a clock 10 s off shows it.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster::link::Incoming;
use cluster::ssh::{connect_all, Session, SshConfig};
use common::NsCluster;
use sha2::{Digest, Sha256};

fn connect(cluster: &NsCluster, host: usize, cfg: &SshConfig) -> Session {
    let (name, address) = &cluster.hosts[host];
    Session::connect(name, address, cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn stdout(session: &Session, command: &str) -> String {
    let out = session.exec(command).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "`{command}`: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_command_runs_on_the_host_it_was_sent_to() {
    let cluster = NsCluster::up(2, "172.31.240", &[]);
    let _in = cluster.enter();
    for (k, (name, address)) in cluster.hosts.iter().enumerate() {
        let session = connect(&cluster, k, &cluster.ssh_config());
        let out = stdout(&session, "hostname; id -u; ip -4 -o addr show");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(name.as_str()), "{out}");
        assert_eq!(lines.next(), Some("0"), "{out}");
        // its own address and no other host's
        assert!(out.contains(&format!("inet {address}/24")), "{out}");
        for (_, other) in cluster.hosts.iter().filter(|(n, _)| n != name) {
            assert!(!out.contains(&format!("inet {other}/")), "{out}");
        }
        let failed = session.exec("echo oops >&2; exit 3").unwrap();
        assert_eq!((failed.status, failed.success()), (3, false));
        assert_eq!(
            (&failed.stdout[..], &failed.stderr[..]),
            (&b""[..], &b"oops\n"[..])
        );
    }
}

#[test]
fn an_executable_is_installed_once_under_its_checksum_and_runs_there() {
    let cluster = NsCluster::up(1, "172.31.241", &[]);
    let _in = cluster.enter();
    let session = connect(&cluster, 0, &cluster.ssh_config());
    let local = cluster.dir.path().join("hello");
    fs::write(&local, "#!/bin/sh\necho \"hello from $(hostname)\"\n").unwrap();
    fs::set_permissions(&local, fs::Permissions::from_mode(0o755)).unwrap();
    let sum: String = Sha256::digest(fs::read(&local).unwrap())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let remote_dir = cluster.dir.path().join("deploy");
    let remote_dir = remote_dir.to_str().unwrap();
    let want = format!("{remote_dir}/{sum}/hello");

    assert_eq!(
        session.install(&local, remote_dir).unwrap(),
        (want.clone(), true)
    );
    // the second time nothing is written there (a directory's time changes with its entries)
    let changed = || {
        let dir = Path::new(remote_dir).join(&sum);
        fs::metadata(dir).unwrap().modified().unwrap()
    };
    let before = changed();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        session.install(&local, remote_dir).unwrap(),
        (want.clone(), false)
    );
    assert_eq!(changed(), before);
    assert_eq!(stdout(&session, &want), "hello from h1\n");
    // nothing but the file itself (no temporary left)
    let there: Vec<_> = fs::read_dir(Path::new(remote_dir).join(&sum))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(there, ["hello"]);
}

#[test]
fn a_tree_uploaded_then_downloaded_comes_back_byte_for_byte() {
    let cluster = NsCluster::up(1, "172.31.242", &[]);
    let _in = cluster.enter();
    let session = connect(&cluster, 0, &cluster.ssh_config());
    let work = cluster.dir.path();
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("a/deeper")).unwrap();
    fs::create_dir_all(tree.join("empty")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let files: [(&str, &[u8], u32); 4] = [
        ("a/deeper/big.bin", &big, 0o644),
        ("a/run.sh", b"#!/bin/sh\necho ran\n", 0o755),
        ("secret", b"only mine\n", 0o600),
        ("empty-file", b"", 0o644),
    ];
    for (path, content, mode) in files {
        fs::write(tree.join(path), content).unwrap();
        fs::set_permissions(tree.join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    let remote = work.join("remote/copy");
    session.upload(&tree, remote.to_str().unwrap()).unwrap();
    assert_eq!(
        stdout(&session, &format!("{}/a/run.sh", remote.display())),
        "ran\n"
    );
    let back = work.join("back/here");
    let bytes = session.download(remote.to_str().unwrap(), &back).unwrap();

    let total: usize = files.iter().map(|(_, c, _)| c.len()).sum();
    assert_eq!(bytes, total as u64);
    for (path, content, mode) in files {
        assert_eq!(fs::read(back.join(path)).unwrap(), content, "{path}");
        let got = fs::metadata(back.join(path)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, mode, "{path}: mode {got:o}");
    }
    assert!(back.join("empty").is_dir());
}

#[test]
fn a_started_command_carries_lines_both_ways_and_says_why_it_ended() {
    let cluster = NsCluster::up(1, "172.31.243", &[]);
    let _in = cluster.enter();
    let session = connect(&cluster, 0, &cluster.ssh_config());
    let link = session
        .start("cat; echo 'cat is done' >&2; exit 4")
        .unwrap();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        // idle first: the carrier must wake for the line, not find it on its next round
        std::thread::sleep(Duration::from_millis(100));
        let sent = Instant::now();
        link.send.send(format!("line {i}")).unwrap();
        let got = link.recv.recv_timeout(Duration::from_secs(10)).unwrap();
        slowest = slowest.max(sent.elapsed());
        assert_eq!(got, Incoming::Line(format!("line {i}")));
    }
    // well under the carrier's idle sleep of 1 s, even on a busy machine
    assert!(
        slowest < Duration::from_millis(500),
        "a round trip took {slowest:?}"
    );
    // the controller's end of stdin: cat ends, then the command
    drop(link.send);
    match link.recv.recv_timeout(Duration::from_secs(10)).unwrap() {
        Incoming::Closed(why) => {
            assert!(why.contains("host h1 (172.31.243.11)"), "{why}");
            assert!(why.contains("exited with status 4"), "{why}");
            assert!(why.contains("cat is done"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // exactly once, then nothing
    assert_eq!(
        link.recv.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );

    // a host that goes away mid-run ends its links too
    let link = connect(&cluster, 0, &cluster.ssh_config())
        .start("cat")
        .unwrap();
    link.send.send("still there?".into()).unwrap();
    let got = link.recv.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, Incoming::Line("still there?".into()));
    cluster.down();
    match link.recv.recv_timeout(Duration::from_secs(10)).unwrap() {
        Incoming::Closed(why) => assert!(
            why.starts_with("host h1 (172.31.243.11): connection lost: "),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

/// The SHA256 fingerprint `ssh-keygen -l` shows for host K's key.
fn fingerprint(cluster: &NsCluster, k: usize) -> String {
    let key = cluster
        .dir
        .path()
        .join(format!("h{k}/ssh_host_ed25519_key.pub"));
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn an_unknown_host_key_is_refused_and_added_only_when_asked() {
    let cluster = NsCluster::up(1, "172.31.244", &[]);
    let _in = cluster.enter();
    let known_hosts = cluster.dir.path().join("empty_known_hosts");
    fs::write(&known_hosts, "").unwrap();
    let mut cfg = SshConfig {
        known_hosts: known_hosts.clone(),
        ..cluster.ssh_config()
    };
    let Err(e) = Session::connect("h1", "172.31.244.11", &cfg) else {
        panic!("connected")
    };
    assert_eq!(
        e.to_string(),
        format!(
            "host h1 (172.31.244.11): unknown host key ({}); add it to {} or pass --accept-new-host-keys",
            fingerprint(&cluster, 1),
            known_hosts.display()
        )
    );
    assert_eq!(fs::read_to_string(&known_hosts).unwrap(), "");

    cfg.accept_new_host_keys = true;
    let session = connect(&cluster, 0, &cfg);
    assert_eq!(stdout(&session, "hostname"), "h1\n");
    let key = fs::read_to_string(cluster.dir.path().join("h1/ssh_host_ed25519_key.pub")).unwrap();
    let key: Vec<_> = key.split(' ').take(2).collect();
    assert_eq!(
        fs::read_to_string(&known_hosts).unwrap(),
        format!("172.31.244.11 {}\n", key.join(" "))
    );
    // and from now on it is known
    cfg.accept_new_host_keys = false;
    connect(&cluster, 0, &cfg);
}

#[test]
fn a_changed_host_key_is_refused_even_when_accepting_new_ones() {
    let cluster = NsCluster::up(2, "172.31.245", &[]);
    let _in = cluster.enter();
    // h2's key under h1's address
    let key = fs::read_to_string(cluster.dir.path().join("h2/ssh_host_ed25519_key.pub")).unwrap();
    let known_hosts = cluster.dir.path().join("changed_known_hosts");
    let before = format!(
        "172.31.245.11 {}\n",
        key.split(' ').take(2).collect::<Vec<_>>().join(" ")
    );
    fs::write(&known_hosts, &before).unwrap();
    let cfg = SshConfig {
        known_hosts: known_hosts.clone(),
        accept_new_host_keys: true,
        ..cluster.ssh_config()
    };
    let Err(e) = Session::connect("h1", "172.31.245.11", &cfg) else {
        panic!("connected")
    };
    let e = e.to_string();
    assert!(
        e.starts_with(&format!(
            "host h1 (172.31.245.11): host key changed ({}), it is not the one in {}",
            fingerprint(&cluster, 1),
            known_hosts.display()
        )),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(fs::read_to_string(&known_hosts).unwrap(), before);
}

#[test]
fn connect_all_reaches_every_host_and_answers_in_their_order() {
    let cluster = NsCluster::up(4, "172.31.246", &[]);
    let _in = cluster.enter();
    let mut hosts = cluster.hosts.clone();
    // nobody listens there: refused at once, in its place
    hosts.insert(2, ("ghost".into(), "172.31.246.1".into()));
    let sessions = connect_all(&hosts, &cluster.ssh_config());
    assert_eq!(sessions.len(), 5);
    for ((name, address), session) in hosts.iter().zip(&sessions) {
        match session {
            Ok(session) => assert_eq!(stdout(session, "hostname").trim(), name),
            Err(e) => {
                assert_eq!(name, "ghost");
                let e = e.to_string();
                assert!(
                    e.starts_with(&format!("host ghost ({address}): cannot connect")),
                    "{e}"
                );
            }
        }
    }
    assert!(sessions[2].is_err());
}

#[test]
fn a_host_given_a_clock_ten_seconds_off_shows_it() {
    let cluster = NsCluster::up(2, "172.31.247", &["--faketime", "h2=+10s"]);
    let _in = cluster.enter();
    let cfg = cluster.ssh_config();
    let offset = |k: usize| {
        let session = connect(&cluster, k, &cfg);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let there: f64 = stdout(&session, "date +%s.%N").trim().parse().unwrap();
        (session, there - now)
    };
    let (_, off1) = offset(0);
    let (h2, off2) = offset(1);
    assert!(off1.abs() < 2.0, "h1 is {off1} s off");
    assert!((8.0..12.0).contains(&off2), "h2 is {off2} s off");
    // its SFTP works too (it runs under the same wrapper)
    let local = cluster.dir.path().join("h2/sshd_config");
    let remote = cluster.dir.path().join("copied");
    h2.upload(&local, remote.to_str().unwrap()).unwrap();
    assert_eq!(fs::read(&remote).unwrap(), fs::read(&local).unwrap());
}

#[test]
fn a_key_the_host_does_not_know_is_refused_in_one_line() {
    let cluster = NsCluster::up(1, "172.31.249", &[]);
    let _in = cluster.enter();
    let stranger = cluster.dir.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(made.success());
    let cfg = SshConfig {
        identity_file: Some(stranger.clone()),
        ..cluster.ssh_config()
    };
    let Err(e) = Session::connect("h1", "172.31.249.11", &cfg) else {
        panic!("connected")
    };
    let e = e.to_string();
    assert!(
        e.starts_with("host h1 (172.31.249.11): authentication as root refused ("),
        "{e}"
    );
    assert!(e.contains(&stranger.display().to_string()), "{e}");
    assert!(
        e.ends_with("; load a key into the SSH agent or set ssh.identity_file"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

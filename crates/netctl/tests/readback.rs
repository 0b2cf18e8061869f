//! Objects created by our netlink code, read back with the stock `ip` and `tc` tools inside
//! a scratch namespace: the attribute layouts we encode by hand must mean to the kernel
//! exactly what `tc` itself would have sent; so must our `change` and `replace` requests.

use netctl::scratch::in_new_netns;
use netctl::{Error, Field, Handle, Host, Object, Op, PacketSize, Parent, QdiscKind, Target, U32};
use std::net::Ipv4Addr;
use std::process::Command;

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lo() -> String {
    "lo".to_string()
}

/// HTB class `1:minor` under the root of `lo`.
fn class(minor: u16, rate_bps: u64) -> Object {
    Object::HtbClass {
        dev: lo(),
        classid: Handle::new(1, minor),
        parent: Handle::new(1, 0),
        rate_bps,
    }
}

fn ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    in_new_netns(f).expect("tests run as root")
}

#[test]
fn addresses_in_bulk() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let addrs: Vec<Object> = (1..=1000u32)
            .map(|i| Object::Addr {
                dev: lo(),
                ip: Ipv4Addr::from(0x0a00_0000 + i),
                len: 32,
            })
            .collect();
        h.apply(&addrs, Op::Create).unwrap();
        let shown = sh("ip -4 -o addr show dev lo");
        assert_eq!(shown.matches("inet 10.0.").count(), 1000);
        assert!(shown.contains("inet 10.0.3.232/32"));
        // a second create names the first object that already exists
        let err = h.apply(&addrs[5..7], Op::Create).unwrap_err();
        assert_eq!(err.to_string(), "creating `ip addr add 10.0.0.6/32 dev lo` failed: File exists (kernel: ipv4: Address already assigned) (and 1 later requests)");
        h.apply(&addrs, Op::Delete).unwrap();
        h.apply(&addrs, Op::Delete).unwrap(); // idempotent
        assert_eq!(
            sh("ip -4 -o addr show dev lo").matches("inet 10.").count(),
            0
        );
    })
}

#[test]
fn htb_tree_reads_back_like_tc() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let objs = vec![
            Object::htb_root("lo", 1000),
            class(5, 2_000_000),
            Object::HtbClass {
                dev: lo(),
                classid: Handle::new(1, 6),
                parent: Handle::new(1, 0),
                rate_bps: 128_000,
            },
            Object::HtbClass {
                dev: lo(),
                classid: Handle::new(1, 7),
                parent: Handle::new(1, 0),
                rate_bps: 40_000_000_000,
            },
            Object::Qdisc {
                dev: lo(),
                parent: Parent::Of(Handle::new(1, 5)),
                handle: 6,
                kind: QdiscKind::Pfifo { limit: 50 },
            },
        ];
        h.apply(&objs, Op::Create).unwrap();
        let q = sh("tc qdisc show dev lo");
        assert!(q.contains("qdisc htb 1: root refcnt 2 r2q 10 default 0 direct_packets_stat 0 direct_qlen 1000"), "{q}");
        assert!(q.contains("qdisc pfifo 6: parent 1:5 limit 50p"), "{q}");
        let c = sh("tc -s class show dev lo");
        assert!(
            c.contains(
                "class htb 1:5 root leaf 6: prio 0 rate 2Mbit ceil 2Mbit burst 1850b cburst 1850b"
            ),
            "{c}"
        );
        assert!(
            c.contains(
                "class htb 1:6 root prio 0 rate 128Kbit ceil 128Kbit burst 1616b cburst 1616b"
            ),
            "{c}"
        );
        assert!(
            c.contains("class htb 1:7 root prio 0 rate 40Gbit ceil 40Gbit"),
            "{c}"
        );
        // the dry-run text of each object is a command tc accepts with the same meaning
        sh("tc qdisc del dev lo root");
        for o in &objs {
            sh(&o.to_string());
        }
        // tc rounds the 40gbit buffer through its rate table: compare all but the token counts
        let params = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("tokens"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(params(&sh("tc -s class show dev lo")), params(&c));
    })
}

#[test]
fn hashed_u32_filters_and_redirect() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let root = Parent::Of(Handle::new(1, 0));
        let f = |u32| Object::Filter {
            dev: lo(),
            parent: root,
            prio: 1,
            u32,
        };
        let objs = vec![
            Object::Ifb {
                name: "p2ptest0".into(),
                txqueuelen: 100,
                group: 0,
            },
            Object::htb_root("lo", 1000),
            class(5, 2_000_000),
            f(U32::Table {
                id: 2,
                divisor: 256,
            }),
            f(U32::Entry {
                ht: Some((2, 5)),
                node: 1,
                field: Field::Src,
                net: (Ipv4Addr::new(10, 1, 0, 5), 32),
                target: Target::Class(Handle::new(1, 5)),
            }),
            f(U32::Entry {
                ht: None,
                node: 0,
                field: Field::Src,
                net: (Ipv4Addr::new(10, 1, 0, 0), 24),
                target: Target::Link {
                    table: 2,
                    key: Field::Src,
                    mask: 0xff,
                },
            }),
            Object::clsact("lo"),
            Object::Filter {
                dev: lo(),
                parent: Parent::Ingress,
                prio: 7,
                u32: U32::Entry {
                    ht: None,
                    node: 0,
                    field: Field::Dst,
                    net: (Ipv4Addr::new(10, 1, 0, 0), 24),
                    target: Target::Redirect("p2ptest0".into()),
                },
            },
        ];
        h.apply(&objs, Op::Create).unwrap();
        let t = sh("tc filter show dev lo");
        assert!(
            t.contains("filter parent 1: protocol ip pref 1 u32 chain 0 fh 2: ht divisor 256"),
            "{t}"
        );
        assert!(
            t.contains("fh 2:5:1 order 1 key ht 2 bkt 5 *flowid 1:5 not_in_hw"),
            "{t}"
        );
        assert!(t.contains("match 0a010005/ffffffff at 12"), "{t}");
        assert!(t.contains("link 2: not_in_hw"), "{t}");
        assert!(t.contains("match 0a010000/ffffff00 at 12"), "{t}");
        assert!(t.contains("hash mask 000000ff at 12"), "{t}");
        let i = sh("tc filter show dev lo ingress");
        assert!(i.contains("match 0a010000/ffffff00 at 16"), "{i}");
        assert!(
            i.contains("mirred (Egress Redirect to device p2ptest0) stolen"),
            "{i}"
        );
        h.apply(&objs, Op::Delete).unwrap();
        assert!(!sh("ip link").contains("p2ptest0"));
        assert!(!sh("tc qdisc show dev lo").contains("htb"));
    })
}

#[test]
fn refusal_names_object_and_reason() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let class = Object::HtbClass {
            dev: lo(),
            classid: Handle::new(1, 5),
            parent: Handle::new(1, 0),
            rate_bps: 1_000_000,
        };
        let err = h.apply(&[class], Op::Create).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("creating `tc class add dev lo parent 1:0 classid 1:5 htb rate 1mbit"),
            "{err}"
        );
        assert!(matches!(err, Error::Refused { .. }));
        let missing = Object::Addr {
            dev: "nosuch0".into(),
            ip: Ipv4Addr::new(10, 0, 0, 1),
            len: 32,
        };
        let err = h.apply(&[missing], Op::Create).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device nosuch0 not found; check `ip link` or pass another --dev"
        );
    })
}

#[test]
fn probe_finds_this_kernels_pieces() {
    let caps = netctl::probe::probe(|| Ok(()));
    assert_eq!(caps.htb, Ok(()));
    assert_eq!(caps.ifb, Ok(()));
    assert_eq!(caps.clsact_mirred, Ok(()));
    assert_eq!(caps.u32_hash, Ok(()));
    // whether netem is there depends on the kernel; the probe must agree with tc itself
    let tc_netem = in_new_netns(|| {
        Command::new("tc")
            .args(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            .status()
            .unwrap()
            .success()
    })
    .unwrap();
    assert_eq!(caps.netem.is_ok(), tc_netem, "{:?}", caps.netem);
}

#[test]
fn route_for_a_virtual_prefix() {
    ns(|| {
        sh("ip link add p2pv0 type veth peer name p2pv1 && ip addr add 172.31.0.1/24 dev p2pv0 && ip link set p2pv0 up && ip link set p2pv1 up");
        let mut h = Host::open().unwrap();
        let route = Object::Route {
            dst: (Ipv4Addr::new(10, 77, 0, 0), 16),
            via: Ipv4Addr::new(172, 31, 0, 2),
            dev: "p2pv0".into(),
        };
        h.apply(std::slice::from_ref(&route), Op::Create).unwrap();
        let r = sh("ip -4 route show");
        assert!(
            r.contains("10.77.0.0/16 via 172.31.0.2 dev p2pv0 proto static"),
            "{r}"
        );
        h.apply(&[route], Op::Delete).unwrap();
        assert!(!sh("ip -4 route show").contains("10.77.0.0"));
    })
}

#[test]
fn change_and_replace_mean_what_tc_change_and_replace_mean() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let leaf = |minor: u16, handle: u16, limit: u32| Object::Qdisc {
            dev: lo(),
            parent: Parent::Of(Handle::new(1, minor)),
            handle,
            kind: QdiscKind::Pfifo { limit },
        };
        let objs = vec![
            Object::htb_root("lo", 1000),
            class(2, 2_000_000),
            class(3, 2_000_000),
            leaf(2, 3, 100),
            leaf(3, 4, 100),
        ];
        h.apply(&objs, Op::Create).unwrap();
        // ours on 1:2, tc's own on 1:3, from the command line we print for it
        h.apply(&[class(2, 64_000)], Op::Change).unwrap();
        sh(&class(3, 64_000).command(Op::Change));
        let classes = sh("tc -d class show dev lo");
        let line = |text: &str, key: &str| -> String {
            text.lines()
                .find(|l| l.contains(key))
                .unwrap_or_else(|| panic!("no {key} in {text}"))
                .to_string()
        };
        let same = |minor: u16, leaf: u16| {
            line(&classes, &format!("class htb 1:{minor} "))
                .replace(&format!("1:{minor} root leaf {leaf}:"), "1:N root leaf L:")
        };
        assert_eq!(same(2, 3), same(3, 4));
        assert!(classes.contains("rate 64Kbit ceil 64Kbit"), "{classes}");
        h.apply(&[leaf(2, 0x1002, 0)], Op::Replace).unwrap();
        sh(&leaf(3, 0x1003, 0).command(Op::Replace));
        let qdiscs = sh("tc qdisc show dev lo");
        assert!(
            qdiscs.contains("qdisc pfifo 1002: parent 1:2 limit 0p"),
            "{qdiscs}"
        );
        assert!(
            qdiscs.contains("qdisc pfifo 1003: parent 1:3 limit 0p"),
            "{qdiscs}"
        );
        assert!(
            !qdiscs.contains("pfifo 3:"),
            "the old leaf stayed: {qdiscs}"
        );
        let err = h.apply(&[class(9, 64_000)], Op::Change).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "changing `tc class change dev lo parent 1:0 classid 1:9 htb rate 64kbit"
            ),
            "{err}"
        );
        h.apply(&objs[..1], Op::Delete).unwrap();
    })
}

#[test]
fn packet_size_is_set_and_restored() {
    ns(|| {
        let mut h = Host::open().unwrap();
        let before = h.packet_size("lo").unwrap();
        let shown = |h: &mut Host| {
            let d = sh("ip -d link show dev lo");
            let field = |name: &str| {
                let at = d.find(&format!(" {name} ")).unwrap() + name.len() + 2;
                d[at..].split_whitespace().next().unwrap().to_string()
            };
            (
                [field("mtu"), field("gso_max_size"), field("gso_max_segs")].join(" "),
                h.packet_size("lo").unwrap().to_string(),
            )
        };
        assert_eq!(
            shown(&mut h).0,
            format!(
                "{} {} {}",
                before.mtu, before.gso_max_size, before.gso_max_segs
            )
        );
        let o = Object::PacketSize {
            dev: lo(),
            set: PacketSize::plain(1500),
            restore: before,
        };
        assert_eq!(
            o.to_string(),
            "ip link set dev lo mtu 1500 gso_max_size 1500 gso_max_segs 1"
        );
        h.apply(std::slice::from_ref(&o), Op::Create).unwrap();
        let (tool, ours) = shown(&mut h);
        assert_eq!(tool, "1500 1500 1");
        assert_eq!(ours, "mtu 1500 gso_max_size 1500 gso_max_segs 1");
        h.apply(&[o], Op::Delete).unwrap();
        assert_eq!(h.packet_size("lo").unwrap(), before);
    });
}

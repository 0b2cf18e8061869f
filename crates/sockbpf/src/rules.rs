//! The rules the programs apply, as one table: the README prints it (a test checks that
//! it prints this very text) and the kernel tests of `p2plab wrap --isolation bpf` try its
//! rows. They are the preload shim's rules for the calls the hooks see.

/// One row: a call, the case, and what the process gets.
pub struct Rule {
    pub call: &'static str,
    pub case: &'static str,
    pub result: &'static str,
}

/// Every rule, in the order the README lists them.
pub const RULES: &[Rule] = &[
    Rule {
        call: "`bind` (IPv4)",
        case: "to `0.0.0.0:P`",
        result: "bound to `NODE:P` (same port)",
    },
    Rule {
        call: "`bind` (IPv6)",
        case: "to `[::]:P` or `[::ffff:0.0.0.0]:P`",
        result: "bound to `[::ffff:NODE]:P` (same port)",
    },
    Rule {
        call: "`bind`",
        case: "to any other address (explicit or loopback)",
        result: "unchanged",
    },
    Rule {
        call: "`connect` (IPv4)",
        case: "unbound socket, destination not in `127.0.0.0/8`",
        result: "bound to `NODE`, port of the kernel's choice, before connecting",
    },
    Rule {
        call: "`connect` (IPv4)",
        case: "to `127.0.0.0/8`, or a socket already bound",
        result: "unchanged",
    },
    Rule {
        call: "`connect` (IPv6)",
        case: "unbound socket, destination v4-mapped and not `[::ffff:127.0.0.0]/104`",
        result: "bound to `[::ffff:NODE]`, port of the kernel's choice, before connecting",
    },
    Rule {
        call: "`connect` (IPv6)",
        case: "to a native IPv6 or v4-mapped loopback peer, or a socket already bound",
        result: "unchanged",
    },
    Rule {
        call: "`sendto`/`sendmsg` (IPv4 UDP, unconnected)",
        case: "no source address yet, destination not in `127.0.0.0/8`",
        result: "sent from `NODE`",
    },
    Rule {
        call: "`sendto`/`sendmsg` (IPv4 UDP, unconnected)",
        case: "a bound socket or `IP_PKTINFO` source, or to `127.0.0.0/8`",
        result: "unchanged",
    },
    Rule {
        call: "any",
        case: "a process in no node's cgroup",
        result: "unchanged",
    },
];

/// The table in Markdown, as the README has it.
pub fn markdown() -> String {
    let mut s = String::from("| call | case | result |\n|---|---|---|\n");
    for r in RULES {
        s += &format!("| {} | {} | {} |\n", r.call, r.case, r.result);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_states_these_rules() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&super::markdown()),
            "README.md must contain, verbatim:\n{}",
            super::markdown()
        );
    }
}

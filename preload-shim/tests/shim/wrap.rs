//! `launch::wrap` (behind `p2plab wrap`) with the real shim: what it refuses, and that the
//! command it builds runs as the node, alongside the program's own `LD_PRELOAD`.

use crate::common::{gcc, run, wait_listening, Running, CLIENT, SERVER};
use crate::netns;
use launch::wrap::{self, Wrap, WrapError};
use std::ffi::OsString;

fn node(ip: &str, command: &[&str]) -> Wrap {
    Wrap {
        ip: ip.parse().unwrap(),
        ip6: None,
        shim: Some(netns::shim()),
        force: false,
        command: command.iter().map(OsString::from).collect(),
    }
}

#[test]
fn static_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hello = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";
    let program = gcc(dir.path(), "hello", hello, &["-static"]);
    let mut wrap = node("10.0.0.1", &[program.to_str().unwrap()]);
    wrap.force = true;
    let err = wrap::command(&wrap).unwrap_err();
    assert!(matches!(err, WrapError::Static(_)), "{err}");
    assert!(err.to_string().contains("statically linked"), "{err}");
}

#[test]
fn unassigned_address_is_refused_unless_forced() {
    netns::enter(&["10.0.0.1/8"]);
    let command = ["true"];
    wrap::command(&node("10.0.0.1", &command)).expect("assigned address accepted");
    let err = wrap::command(&node("10.0.0.9", &command)).unwrap_err();
    assert!(matches!(err, WrapError::NotAssigned(_)), "{err}");
    let mut v6 = node("10.0.0.1", &command);
    v6.ip6 = Some("fd00::9".parse().unwrap());
    assert!(matches!(wrap::command(&v6), Err(WrapError::NotAssigned(_))));
    let mut forced = node("10.0.0.9", &command);
    forced.force = true;
    wrap::command(&forced).expect("--force skips the check");
}

#[test]
fn wrapped_program_keeps_its_own_preload() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let dir = tempfile::tempdir().unwrap();
    // The program's own preload library: counts connect calls, then calls the next one.
    let own = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    int (*next)(int, const struct sockaddr *, socklen_t) = dlsym(RTLD_NEXT, "connect");
    FILE *mark = fopen(getenv("OWN_MARK"), "a");
    if (mark) { fputs("connect\n", mark); fclose(mark); }
    return next(fd, addr, len);
}
"#;
    let own = gcc(dir.path(), "libown.so", own, &["-shared", "-fPIC"]);
    let mark = dir.path().join("mark");

    let server = node("10.0.0.1", &["python3", "-c", SERVER, "9004", "1"]);
    let server = Running::start(&mut wrap::command(&server).unwrap());
    wait_listening(9004);

    let client = node("10.0.0.2", &["python3", "-c", CLIENT, "10.0.0.1", "9004"]);
    let mut cmd = wrap::command(&client).unwrap();
    let shim = netns::shim().canonicalize().unwrap();
    // What `p2plab wrap` computes when started with LD_PRELOAD=libown.so.
    let preload = wrap::ld_preload(Some(own.as_os_str()), &shim);
    assert_eq!(
        preload,
        OsString::from(format!("{}:{}", own.display(), shim.display()))
    );
    let out = run(cmd.env("LD_PRELOAD", &preload).env("OWN_MARK", &mark));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10.0.0.2");
    assert_eq!(
        String::from_utf8_lossy(&server.finish().stdout).trim(),
        "10.0.0.2"
    );
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "connect\n",
        "own preload ran"
    );
}

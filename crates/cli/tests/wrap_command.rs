//! `p2plab wrap` as a user runs it: which shim the wrapped program really has mapped
//! (`--shim PATH`, else `$P2PLAB_SHIM`, else `libp2plab_shim.so` beside the `p2plab`
//! binary; none found is one line and nothing runs), and the refusal, in one line and
//! before anything runs, of a statically linked program and of a script whose
//! interpreter is one, of a Go program, and of a loopback node address.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `p2plab wrap --ip 10.0.0.1 --force ARGS... -- CMD...` run from `bin` with `P2PLAB_SHIM`
/// set to `env_shim` (unset when `None`) and no `LD_PRELOAD` of its own.
fn wrap(bin: &Path, env_shim: Option<&str>, args: &[&str], cmd: &[&str]) -> Output {
    let mut c = Command::new(bin);
    c.args(["wrap", "--ip", "10.0.0.1", "--force"])
        .args(args)
        .arg("--")
        .args(cmd)
        .env_remove("LD_PRELOAD")
        .env_remove("P2PLAB_SHIM");
    if let Some(v) = env_shim {
        c.env("P2PLAB_SHIM", v);
    }
    c.output().unwrap()
}

/// Copies `from` to `dir/name` (executable) and returns the new path.
fn copy_into(from: &Path, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// Asserts that `out` is a refusal: exit status `code` (1 for the machine, 2 for the
/// program asked for), nothing on stdout (the command did not run), and exactly `line` on
/// stderr.
fn assert_refused(out: &Output, code: i32, line: &str) {
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(code), format!("{line}\n").as_str())
    );
    assert!(out.stdout.is_empty(), "the command ran: {out:?}");
}

#[test]
fn the_shim_is_looked_up_by_flag_then_environment_then_beside_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = copy_into(
        Path::new(env!("CARGO_BIN_EXE_p2plab")),
        &d.join("bin"),
        "p2plab",
    );
    let [beside, by_env, by_flag] = ["bin", "env", "flag"]
        .map(|sub| copy_into(&common::shim(), &d.join(sub), "libp2plab_shim.so"));
    // every copy of the shim `cat` has mapped, as the loader reports it
    let mapped = |out: Output| -> Vec<String> {
        assert!(out.status.success(), "{out:?}");
        let mut libs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.ends_with("/libp2plab_shim.so"))
            .map(str::to_string)
            .collect();
        libs.dedup();
        libs
    };
    let maps = ["cat", "/proc/self/maps"];
    let path = |p: &PathBuf| vec![p.to_str().unwrap().to_string()];
    let (flag, env) = (by_flag.to_str().unwrap(), by_env.to_str().unwrap());
    for (env_shim, args, want) in [
        (Some(env), vec!["--shim", flag], &by_flag),
        (None, vec!["--shim", flag], &by_flag),
        (Some(env), vec![], &by_env),
        (None, vec![], &beside),
        (Some(""), vec![], &beside),
    ] {
        let got = mapped(wrap(&bin, env_shim, &args, &maps));
        assert_eq!(got, path(want), "P2PLAB_SHIM={env_shim:?} {args:?}");
    }
    std::fs::remove_file(&beside).unwrap();
    assert_refused(
        &wrap(&bin, None, &[], &maps),
        1,
        &format!(
            "shim {} not found: build it (`cargo build -p preload-shim`) or point --shim / P2PLAB_SHIM at libp2plab_shim.so",
            beside.display()
        ),
    );
}

#[test]
fn a_static_program_or_a_script_run_by_one_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ran.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"ran\"); return 0; }\n",
    )
    .unwrap();
    let program = dir.path().join("ran");
    let gcc = Command::new("gcc")
        .args(["-static", "-o"])
        .arg(&program)
        .arg(&src)
        .output()
        .unwrap();
    assert!(gcc.status.success(), "gcc -static: {gcc:?}");
    let script = dir.path().join("script");
    std::fs::write(&script, format!("#!{}\n", program.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shim = common::shim();
    let refusal = format!("{} is statically linked: LD_PRELOAD cannot reach it, so it would use the host's address; run a dynamically linked build", program.display());
    for cmd in [&program, &script] {
        let out = wrap(
            Path::new(env!("CARGO_BIN_EXE_p2plab")),
            None,
            &["--shim", shim.to_str().unwrap()],
            &[cmd.to_str().unwrap()],
        );
        assert_refused(&out, 2, &refusal);
    }
    // the script itself runs the program, so the refusal is wrap's, not the kernel's
    let direct = Command::new(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "ran\n");
}

#[test]
fn a_loopback_node_address_is_refused_even_when_forced() {
    let shim = common::shim();
    for (flag, ip) in [
        ("--ip", "127.0.0.1"),
        ("--ip", "127.8.0.1"),
        ("--ip6", "::1"),
    ] {
        let mut args = vec!["wrap", "--shim", shim.to_str().unwrap(), "--force"];
        if flag == "--ip6" {
            args.extend(["--ip", "10.0.0.1"]);
        }
        args.extend([flag, ip, "--", "echo", "ran"]);
        let out = Command::new(env!("CARGO_BIN_EXE_p2plab"))
            .args(&args)
            .output()
            .unwrap();
        assert_refused(
            &out,
            2,
            &format!("address {ip} is a loopback address, which no other node can reach: give the node an address of its own (e.g. --ip 10.0.3.7, added by `p2plab up`)"),
        );
    }
}

#[test]
fn a_dynamically_linked_go_program_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let program = common::go_program(dir.path());
    let shim = common::shim();
    let out = wrap(
        Path::new(env!("CARGO_BIN_EXE_p2plab")),
        None,
        &["--shim", shim.to_str().unwrap()],
        &[program.to_str().unwrap()],
    );
    assert_refused(
        &out,
        2,
        &format!("{} is a Go program: Go makes its socket system calls without libc, so the shim cannot hold it to the node's address; give it an explicit bind address, or run it in a network namespace of its own", program.display()),
    );
}

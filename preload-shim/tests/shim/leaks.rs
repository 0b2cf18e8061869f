//! Ways around the shim that it closes: a library loaded with `RTLD_DEEPBIND`, which would
//! bind to libc directly, and the `SIOCGIFCONF`/`SIOCGIFADDR` ioctls, which list the host's
//! addresses without `getifaddrs`.

use crate::common::{gcc, python, stdout_of, wait_listening, wrapped, Running, CLIENT};
use crate::netns;
use std::process::Command;

/// A PHP server through the sockets extension (which PHP loads with `RTLD_DEEPBIND`): listens
/// on the IPv4 wildcard, says "hi" to one client and prints its address.
const PHP_SERVER: &str = r#"
$s = socket_create(AF_INET, SOCK_STREAM, SOL_TCP);
socket_bind($s, "0.0.0.0", 9502) or exit(1);
socket_listen($s);
$c = socket_accept($s);
socket_write($c, "hi");
socket_getpeername($c, $peer);
echo "$peer\n";
"#;

#[test]
fn php_sockets_listen_on_the_node_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let server = Running::start(&mut wrapped("10.0.0.2", "php", &["-r", PHP_SERVER]));
    let listening = wait_listening(9502);
    assert_eq!(listening[0].local_ip, "10.0.0.2", "{}", listening[0].line);
    let client = stdout_of(&mut python("10.0.0.1", CLIENT, &["10.0.0.2", "9502"]));
    assert_eq!(client, "10.0.0.1\n");
    let out = server.finish();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10.0.0.1\n");
}

/// A plugin that listens on the IPv4 wildcard, as PHP's sockets extension does.
const PLUGIN: &str = r#"
#include <netinet/in.h>
#include <sys/socket.h>
int serve(int port) {
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&any, sizeof any) || listen(s, 8)) return -1;
    return s;
}
"#;

/// Loads the plugin named ARGV[1] with `RTLD_DEEPBIND` (found through its own `RUNPATH`
/// when a bare name), has it listen on ARGV[2], then waits.
const HOST: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
    if (!plugin) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    int (*serve)(int) = (int (*)(int))dlsym(plugin, "serve");
    if (!serve || serve(atoi(argv[2])) < 0) { perror("serve"); return 1; }
    puts("listening");
    fflush(stdout);
    pause();
    return 0;
}
"#;

#[test]
fn a_library_loaded_with_deepbind_listens_on_the_node_address() {
    netns::enter(&["10.0.0.1/8", "10.0.0.2/8"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    let lib = dir.path().join("lib");
    gcc(&lib, "libserve.so", PLUGIN, &["-shared", "-fPIC"]);
    // A bare name found through the program's RUNPATH: dlopen must still see the program
    // as its caller.
    let host = gcc(
        dir.path(),
        "host",
        HOST,
        &["-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags"],
    );
    let host = host.to_str().unwrap();
    // Without the shim, the plugin listens on every address.
    let plain = Running::start(Command::new(host).args(["libserve.so", "9500"]));
    assert_eq!(wait_listening(9500)[0].local_ip, "0.0.0.0");
    drop(plain);
    let node = Running::start(&mut wrapped("10.0.0.2", host, &["libserve.so", "9501"]));
    let listening = wait_listening(9501);
    assert_eq!(listening[0].local_ip, "10.0.0.2", "{}", listening[0].line);
    assert_eq!(String::from_utf8_lossy(&node.stop().stdout), "listening\n");
}

/// Lists the IPv4 interfaces with `SIOCGIFCONF` and asks `SIOCGIFADDR` for `v0`.
const IFCONF: &str = r#"
import array, fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = array.array("B", bytes(40 * 32))
n = struct.unpack("iL", fcntl.ioctl(s, 0x8912, struct.pack("iL", len(buf), buf.buffer_info()[0])))[0]
data = buf.tobytes()
for i in range(0, n, 40):
    print(data[i:i + 16].split(b"\0")[0].decode(), socket.inet_ntoa(data[i + 20:i + 24]))
req = fcntl.ioctl(s, 0x8915, struct.pack("256s", b"v0"))
print("SIOCGIFADDR v0", socket.inet_ntoa(req[20:24]))
"#;

#[test]
fn the_ifconf_ioctl_lists_only_loopback_and_the_node_address() {
    netns::enter(&[]);
    netns::ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    netns::ip(&["link", "set", "v0", "up"]);
    for addr in ["10.0.0.1/8", "10.0.0.2/8", "10.0.0.3/8"] {
        netns::ip(&["addr", "add", addr, "dev", "v0"]);
    }
    let all = stdout_of(Command::new("python3").args(["-c", IFCONF]));
    assert_eq!(
        all,
        "lo 127.0.0.1\nv0 10.0.0.1\nv0 10.0.0.2\nv0 10.0.0.3\nSIOCGIFADDR v0 10.0.0.1\n"
    );
    let own = stdout_of(&mut python("10.0.0.2", IFCONF, &[]));
    assert_eq!(own, "lo 127.0.0.1\nv0 10.0.0.2\nSIOCGIFADDR v0 10.0.0.2\n");
}

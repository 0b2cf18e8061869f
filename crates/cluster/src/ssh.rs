//! The controller's SSH sessions to its hosts (libssh2, through `ssh2`): connect with the
//! host key checked against `known_hosts` and key or agent authentication only, run a
//! command, copy files both ways over SFTP (content-addressed installs of executables), and
//! start a long-lived agent on one exec channel whose stdin and stdout become a
//! [`Link`]. A libssh2 session is not thread-safe: one thread uses a [`Session`] at a time,
//! and [`Session::start`] hands it to a thread of its own. Every wait for the other side is
//! bounded by [`SshConfig::timeout`], except a started agent's, which may be silent for as
//! long as it likes.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sha2::{Digest, Sha256};
use ssh2::{
    BlockDirections, Channel, CheckResult, KnownHostFileKind, MethodType, OpenFlags, OpenType, Sftp,
};

use crate::link::{Incoming, Link};

/// At most this many handshakes in flight in [`connect_all`].
pub const MAX_HANDSHAKES: usize = 64;

/// Host key algorithms in OpenSSH's order of preference, so that the key libssh2 is shown
/// is the one `ssh` recorded in `known_hosts` (libssh2's own order puts ECDSA first).
const HOST_KEY_ORDER: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
                              ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// The files [`digest`] hashed (path, size, modification time) and their digests: every
/// host gets the same binaries, so each is read and hashed once per process, not once per
/// host (60 MB of `p2plab` and shim cost about 40 ms of CPU each time).
type Digests = Vec<((PathBuf, u64, SystemTime), String)>;
static DIGESTS: Mutex<Digests> = Mutex::new(Vec::new());

/// The first 16 hex digits of `local`'s SHA-256, and its size.
fn digest(local: &Path) -> io::Result<(String, u64)> {
    let meta = fs::metadata(local)?;
    let key = (local.to_path_buf(), meta.len(), meta.modified()?);
    // Held while hashing, so that hosts deploying at once wait for one hash.
    let mut known = DIGESTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, d)) = known.iter().find(|(k, _)| *k == key) {
        return Ok((d.clone(), key.1));
    }
    let mut hash = Sha256::new();
    let size = io::copy(&mut fs::File::open(local)?, &mut hash)?;
    let d: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if size == key.1 {
        known.push((key, d.clone()));
    }
    Ok((d, size))
}

/// How many of a started command's last stderr lines its `Closed` reason quotes.
const STDERR_TAIL: usize = 5;

/// The longest an idle started link sleeps before it looks again on its own (it is woken
/// as soon as either side has something).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How to reach the hosts (the inventory's `ssh:` section).
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub user: String,
    pub port: u16,
    /// Tried after the SSH agent (`SSH_AUTH_SOCK`), if any.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// Add an unknown host's key to `known_hosts` instead of refusing it (a changed key is
    /// refused all the same).
    pub accept_new_host_keys: bool,
    /// The longest any SSH operation waits for the other side.
    pub timeout: Duration,
}

/// Something that went wrong with one host, in one line naming it.
#[derive(Debug, thiserror::Error)]
#[error("host {host}: {problem}")]
pub struct SshError {
    /// The host's name and address: `h3 (172.31.240.13)`.
    pub host: String,
    pub problem: Problem,
}

/// What went wrong with a host.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot connect to port {port}: {error}")]
    Connect { port: u16, error: io::Error },
    #[error("unknown host key ({fingerprint}); add it to {} or pass --accept-new-host-keys", known_hosts.display())]
    UnknownHostKey {
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error(
        "host key changed ({fingerprint}), it is not the one in {}: if the host was reinstalled, \
         remove its old line (ssh-keygen -R ADDRESS -f {0}), otherwise someone may be in the middle",
        known_hosts.display()
    )]
    ChangedHostKey {
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error("authentication as {user} refused ({tried}); load a key into the SSH agent or set ssh.identity_file")]
    Auth { user: String, tried: String },
    #[error("no answer for {0:?}")]
    Timeout(Duration),
    #[error("{what}: {error}")]
    Ssh { what: String, error: ssh2::Error },
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
}

/// What a command run with [`Session::exec`] did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its exit status (0 when it was killed by a signal).
    pub status: i32,
    /// The signal that killed it (without `SIG`), if one did.
    pub signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0 && self.signal.is_none()
    }
}

/// One authenticated SSH connection to one host.
pub struct Session {
    session: ssh2::Session,
    /// The connection's socket (a duplicate of libssh2's), to wait on.
    socket: TcpStream,
    /// `name (address)`, for messages.
    host: String,
    timeout: Duration,
}

impl Session {
    /// TCP connect (within the timeout), handshake, host key checked against
    /// `known_hosts` (an unknown key added with `accept_new_host_keys`, a changed key
    /// always refused), then authentication: the SSH agent (if `SSH_AUTH_SOCK` is set),
    /// then the identity file. No passwords.
    pub fn connect(host_name: &str, address: &str, cfg: &SshConfig) -> Result<Session, SshError> {
        let host = format!("{host_name} ({address})");
        let fail = |problem| SshError {
            host: host.clone(),
            problem,
        };
        let ssh = |what: &str| {
            let what = what.to_string();
            move |error| fail(Problem::Ssh { what, error })
        };
        let socket = tcp_connect(address, cfg.port, cfg.timeout).map_err(|error| {
            fail(Problem::Connect {
                port: cfg.port,
                error,
            })
        })?;
        let mut session = ssh2::Session::new().map_err(ssh("cannot make an SSH session"))?;
        session.set_timeout(millis(cfg.timeout));
        session
            .method_pref(MethodType::HostKey, HOST_KEY_ORDER)
            .map_err(ssh("cannot choose host key algorithms"))?;
        let ours = socket.try_clone().map_err(|error| {
            fail(Problem::Io {
                what: "cannot duplicate the socket".into(),
                error,
            })
        })?;
        session.set_tcp_stream(ours);
        session.handshake().map_err(ssh("SSH handshake failed"))?;
        check_host_key(&session, address, cfg).map_err(fail)?;
        authenticate(&session, cfg).map_err(fail)?;
        Ok(Session {
            session,
            socket,
            host,
            timeout: cfg.timeout,
        })
    }

    /// Runs one command (through the user's shell); its exit status, stdout and stderr.
    pub fn exec(&self, command: &str) -> Result<Output, SshError> {
        let mut channel = self.run(command)?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        self.session.set_blocking(false);
        let read = self.read_to_eof(&mut channel, &mut stdout, &mut stderr);
        self.session.set_blocking(true);
        read.map_err(|e| self.io(&format!("reading from `{command}`"), e))?;
        let (status, signal) = self.end(&mut channel, command)?;
        Ok(Output {
            status,
            signal,
            stdout,
            stderr,
        })
    }

    /// Copies a local executable to `<remote_dir>/<first 16 hex digits of its
    /// SHA-256>/<file name>` unless it is already there (uploaded to a temporary name then
    /// renamed, so hosts sharing a file system never see half a file); returns the remote
    /// path and whether this call copied it. A relative `remote_dir` is under the user's
    /// home directory (no `~`: SFTP does not expand it).
    pub fn install(&self, local: &Path, remote_dir: &str) -> Result<(String, bool), SshError> {
        let what = || format!("cannot read {}", local.display());
        let (digest, size) = digest(local).map_err(|e| self.io(&what(), e))?;
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| self.io(&what(), io::Error::other("no file name in UTF-8")))?;
        let dir = format!("{}/{digest}", remote_dir.trim_end_matches('/'));
        let path = format!("{dir}/{name}");
        let sftp = self.sftp()?;
        let there = |sftp: &Sftp| {
            sftp.stat(Path::new(&path))
                .is_ok_and(|s| s.size == Some(size))
        };
        if there(&sftp) {
            return Ok((path, false));
        }
        self.make_dirs(&sftp, &dir)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let temporary = format!("{dir}/.{name}.{}-{nanos}.part", std::process::id());
        self.put_file(&sftp, local, &temporary)?;
        match sftp.rename(Path::new(&temporary), Path::new(&path), None) {
            Ok(()) => Ok((path, true)),
            // another host of a shared file system installed it first
            Err(_) if there(&sftp) => {
                let _ = sftp.unlink(Path::new(&temporary));
                Ok((path, false))
            }
            Err(e) => Err(self.ssh(&format!("cannot rename {temporary} to {path}"), e)),
        }
    }

    /// Copies a local file or directory tree to `remote` (made, with its parents),
    /// preserving modes; symbolic links are followed.
    pub fn upload(&self, local: &Path, remote: &str) -> Result<(), SshError> {
        let sftp = self.sftp()?;
        let meta = fs::metadata(local)
            .map_err(|e| self.io(&format!("cannot read {}", local.display()), e))?;
        if !meta.is_dir() {
            if let Some(parent) = Path::new(remote).parent().and_then(|p| p.to_str()) {
                self.make_dirs(&sftp, parent)?;
            }
            return self.put_file(&sftp, local, remote);
        }
        self.make_dirs(&sftp, remote)?;
        self.put_tree(&sftp, local, Path::new(remote), meta.permissions().mode())
    }

    /// Copies a remote directory tree into `local` (made, with its parents), or a remote
    /// file to `local`, preserving modes; returns the bytes copied. Symbolic links are
    /// followed.
    pub fn download(&self, remote: &str, local: &Path) -> Result<u64, SshError> {
        let sftp = self.sftp()?;
        let stat = sftp
            .stat(Path::new(remote))
            .map_err(|e| self.ssh(&format!("cannot read {remote}"), e))?;
        if let Some(parent) = local.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| self.io(&format!("cannot make {}", parent.display()), e))?;
        }
        self.get(&sftp, Path::new(remote), local, &stat)
    }

    /// Starts `command` on one exec channel and hands the session to a thread of its own
    /// that carries lines both ways; returns the controller's end. The command's stdin ends
    /// when the controller drops the link's sender. When the channel ends (the command
    /// exited, the connection was lost), `Incoming::Closed` says why once, quoting the
    /// command's last stderr lines.
    pub fn start(self, command: &str) -> Result<Link, SshError> {
        let mut channel = self.run(command)?;
        let (link, incoming, outgoing) = Link::pair();
        let (mut to_carrier, from_controller) = UnixStream::pair()
            .and_then(|(a, b)| b.set_nonblocking(true).map(|()| (a, b)))
            .map_err(|e| self.io("cannot make a socket pair", e))?;
        let host = self.host.clone();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|error| SshError {
                    host: host.clone(),
                    problem: Problem::Io {
                        what: "cannot start a thread".into(),
                        error,
                    },
                })
        };
        // lines from the controller wake the carrier through a socket it polls with the
        // session's; this thread ends when the controller drops its sender (the socket's
        // end then tells the carrier to send EOF) or the carrier has gone
        spawn(
            format!("ssh-in {host}"),
            Box::new(move || {
                for line in outgoing {
                    if to_carrier
                        .write_all(format!("{line}\n").as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
            }),
        )?;
        let command = command.to_string();
        spawn(
            format!("ssh {host}"),
            Box::new(move || {
                let why = self.carry(&mut channel, from_controller, &incoming, &command);
                let _ = incoming.send(Incoming::Closed(why));
            }),
        )?;
        Ok(link)
    }

    /// The started channel's loop (session non-blocking): lines from the controller to the
    /// command, lines from the command to the controller, until the channel ends; why it
    /// ended.
    fn carry(
        &self,
        channel: &mut Channel,
        mut controller: UnixStream,
        incoming: &Sender<Incoming>,
        command: &str,
    ) -> String {
        self.session.set_blocking(false);
        let mut to_agent = Vec::new();
        let (mut controller_open, mut eof_sent) = (true, false);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut tail = VecDeque::new();
        let mut buf = vec![0; 1 << 16];
        let lost = |e: io::Error| format!("host {}: connection lost: {e}", self.host);
        loop {
            let mut busy = false;
            if controller_open && to_agent.is_empty() {
                match controller.read(&mut buf) {
                    Ok(0) => controller_open = false,
                    Ok(n) => to_agent.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => controller_open = false,
                }
            }
            if !to_agent.is_empty() {
                match channel.write(&to_agent) {
                    Ok(n) => {
                        to_agent.drain(..n);
                        busy = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return lost(e),
                }
            }
            if !controller_open && to_agent.is_empty() && !eof_sent {
                match channel.send_eof().map_err(io::Error::from) {
                    Ok(()) => eof_sent = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return lost(e),
                }
            }
            match read_ready(channel, &mut stdout, &mut stderr) {
                Ok(got) => busy |= got,
                Err(e) => return lost(e),
            }
            for line in take_lines(&mut stdout) {
                let _ = incoming.send(Incoming::Line(line));
            }
            for line in take_lines(&mut stderr) {
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.chars().take(200).collect::<String>());
            }
            if channel.eof() {
                break;
            }
            if !busy {
                let wake = (controller_open && to_agent.is_empty()).then_some(&controller);
                if let Err(e) = self.wait(wake, IDLE_POLL) {
                    return lost(e);
                }
            }
        }
        if !stdout.is_empty() {
            let _ = incoming.send(Incoming::Line(
                String::from_utf8_lossy(&stdout).into_owned(),
            ));
        }
        self.session.set_blocking(true);
        let ended = match self.end(channel, command) {
            Ok((_, Some(signal))) => {
                format!("host {}: `{command}` was killed by SIG{signal}", self.host)
            }
            Ok((status, None)) => format!(
                "host {}: `{command}` exited with status {status}",
                self.host
            ),
            Err(e) => e.to_string(),
        };
        if tail.is_empty() {
            ended
        } else {
            format!("{ended}; its last stderr: {}", Vec::from(tail).join(" | "))
        }
    }

    /// Opens a channel and starts `command` on it (session blocking).
    fn run(&self, command: &str) -> Result<Channel, SshError> {
        let mut channel = self
            .session
            .channel_session()
            .map_err(|e| self.ssh("cannot open a channel", e))?;
        channel
            .exec(command)
            .map_err(|e| self.ssh(&format!("cannot run `{command}`"), e))?;
        Ok(channel)
    }

    /// Reads a channel's stdout and stderr until it ends (session non-blocking), waiting
    /// at most the timeout for anything to come.
    fn read_to_eof(
        &self,
        channel: &mut Channel,
        stdout: &mut Vec<u8>,
        stderr: &mut Vec<u8>,
    ) -> io::Result<()> {
        loop {
            let got = read_ready(channel, stdout, stderr)?;
            if channel.eof() {
                return Ok(());
            }
            if !got && !self.wait(None, self.timeout)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nothing for {:?}", self.timeout),
                ));
            }
        }
    }

    /// Waits for the channel to close (session blocking): the command's exit status and
    /// the signal that killed it, if one did.
    fn end(&self, channel: &mut Channel, command: &str) -> Result<(i32, Option<String>), SshError> {
        let what = format!("waiting for `{command}` to end");
        channel.wait_close().map_err(|e| self.ssh(&what, e))?;
        let status = channel.exit_status().map_err(|e| self.ssh(&what, e))?;
        let signal = channel
            .exit_signal()
            .map_err(|e| self.ssh(&what, e))?
            .exit_signal;
        Ok((status, signal))
    }

    /// Sleeps until the session's socket is ready the way libssh2 is waiting for, or
    /// `wake` has something to read, at most `timeout`; false if nothing came.
    fn wait(&self, wake: Option<&UnixStream>, timeout: Duration) -> io::Result<bool> {
        let mut events = PollFlags::POLLIN;
        if matches!(
            self.session.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        ) {
            events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(self.socket.as_fd(), events)];
        fds.extend(wake.map(|w| PollFd::new(w.as_fd(), PollFlags::POLLIN)));
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    fn sftp(&self) -> Result<Sftp, SshError> {
        self.session
            .sftp()
            .map_err(|e| self.ssh("cannot start SFTP", e))
    }

    /// `mkdir -p` over SFTP.
    fn make_dirs(&self, sftp: &Sftp, dir: &str) -> Result<(), SshError> {
        let mut path = PathBuf::new();
        for part in Path::new(dir).components() {
            path.push(part);
            if sftp.stat(&path).is_ok_and(|s| s.is_dir()) {
                continue;
            }
            if let Err(e) = sftp.mkdir(&path, 0o755) {
                // made meanwhile by someone else sharing the file system
                if !sftp.stat(&path).is_ok_and(|s| s.is_dir()) {
                    return Err(self.ssh(&format!("cannot make {}", path.display()), e));
                }
            }
        }
        Ok(())
    }

    /// Copies one local file to `remote`, with its mode.
    fn put_file(&self, sftp: &Sftp, local: &Path, remote: &str) -> Result<(), SshError> {
        let read = |e| self.io(&format!("cannot read {}", local.display()), e);
        let mut from = fs::File::open(local).map_err(read)?;
        let mode = from.metadata().map_err(read)?.permissions().mode() & 0o7777;
        let written = |e| self.ssh(&format!("cannot write {remote}"), e);
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let mut to = sftp
            .open_mode(Path::new(remote), flags, 0o600, OpenType::File)
            .map_err(written)?;
        copy(&mut from, &mut to)
            .map_err(|e| self.io(&format!("cannot copy {} to {remote}", local.display()), e))?;
        to.setstat(perm(mode)).map_err(written)?;
        to.close().map_err(written)
    }

    /// Copies the contents of local directory `local` into remote directory `remote`
    /// (which exists), then gives `remote` mode `mode`.
    fn put_tree(
        &self,
        sftp: &Sftp,
        local: &Path,
        remote: &Path,
        mode: u32,
    ) -> Result<(), SshError> {
        let read = |e| self.io(&format!("cannot read {}", local.display()), e);
        let mut entries = fs::read_dir(local)
            .map_err(read)?
            .collect::<io::Result<Vec<_>>>()
            .map_err(read)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let (from, to) = (entry.path(), remote.join(entry.file_name()));
            let meta = fs::metadata(&from)
                .map_err(|e| self.io(&format!("cannot read {}", from.display()), e))?;
            let to_str = to.to_string_lossy();
            if meta.is_dir() {
                self.make_dirs(sftp, &to_str)?;
                self.put_tree(sftp, &from, &to, meta.permissions().mode())?;
            } else {
                self.put_file(sftp, &from, &to_str)?;
            }
        }
        sftp.setstat(remote, perm(mode & 0o7777))
            .map_err(|e| self.ssh(&format!("cannot set the mode of {}", remote.display()), e))
    }

    /// Copies remote file or directory tree `remote` (whose attributes are `stat`) to
    /// `local`, with its modes; the bytes copied.
    fn get(
        &self,
        sftp: &Sftp,
        remote: &Path,
        local: &Path,
        stat: &ssh2::FileStat,
    ) -> Result<u64, SshError> {
        let write = |e| self.io(&format!("cannot write {}", local.display()), e);
        let mut bytes = 0;
        if stat.is_dir() {
            fs::create_dir_all(local).map_err(write)?;
            let mut entries = sftp
                .readdir(remote)
                .map_err(|e| self.ssh(&format!("cannot list {}", remote.display()), e))?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (from, mut stat) in entries {
                let Some(name) = from.file_name() else {
                    continue;
                };
                if stat.file_type().is_symlink() {
                    stat = sftp
                        .stat(&from)
                        .map_err(|e| self.ssh(&format!("cannot read {}", from.display()), e))?;
                }
                if stat.is_dir() || stat.is_file() {
                    bytes += self.get(sftp, &from, &local.join(name), &stat)?;
                }
            }
        } else {
            let mut from = sftp
                .open(remote)
                .map_err(|e| self.ssh(&format!("cannot read {}", remote.display()), e))?;
            let mut to = fs::File::create(local).map_err(write)?;
            bytes = copy(&mut from, &mut to).map_err(|e| {
                let what = format!("cannot copy {} to {}", remote.display(), local.display());
                self.io(&what, e)
            })?;
        }
        if let Some(mode) = stat.perm {
            fs::set_permissions(local, fs::Permissions::from_mode(mode & 0o7777)).map_err(write)?;
        }
        Ok(bytes)
    }

    fn ssh(&self, what: &str, error: ssh2::Error) -> SshError {
        SshError {
            host: self.host.clone(),
            problem: Problem::Ssh {
                what: what.to_string(),
                error,
            },
        }
    }

    fn io(&self, what: &str, error: io::Error) -> SshError {
        let problem = if error.kind() == io::ErrorKind::TimedOut {
            Problem::Timeout(self.timeout)
        } else {
            Problem::Io {
                what: what.to_string(),
                error,
            }
        };
        SshError {
            host: self.host.clone(),
            problem,
        }
    }
}

/// Connects to many hosts at once, at most [`MAX_HANDSHAKES`] at a time (threads that
/// start in the calling thread's network namespace); the results in the hosts' order.
/// Each host is `(name, address)`.
pub fn connect_all(hosts: &[(String, String)], cfg: &SshConfig) -> Vec<Result<Session, SshError>> {
    let next = AtomicUsize::new(0);
    let (done, results) = channel();
    std::thread::scope(|scope| {
        for _ in 0..hosts.len().min(MAX_HANDSHAKES) {
            let done = done.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, address)) = hosts.get(i) else {
                    break;
                };
                let _ = done.send((i, Session::connect(name, address, cfg)));
            });
        }
    });
    drop(done);
    let mut ordered: Vec<_> = results.into_iter().collect();
    ordered.sort_by_key(|(i, _)| *i);
    ordered.into_iter().map(|(_, result)| result).collect()
}

/// A TCP connection to `address:port` (any of its addresses), within `timeout`.
fn tcp_connect(address: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for addr in (address, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(socket) => {
                // lines to an agent leave at once
                socket.set_nodelay(true)?;
                return Ok(socket);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Checks the host's key against `known_hosts`, adding it when it is unknown and
/// `accept_new_host_keys` says so.
fn check_host_key(session: &ssh2::Session, address: &str, cfg: &SshConfig) -> Result<(), Problem> {
    let ssh = |what: &str| {
        let what = what.to_string();
        move |error| Problem::Ssh { what, error }
    };
    let file = &cfg.known_hosts;
    let (key, kind) = session.host_key().ok_or_else(|| Problem::Io {
        what: "the host showed no key".into(),
        error: io::ErrorKind::InvalidData.into(),
    })?;
    let fingerprint = format!("SHA256:{}", base64(&Sha256::digest(key)));
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(Problem::Io {
                what: format!("cannot read {}", file.display()),
                error,
            })
        }
    };
    let mut known = session
        .known_hosts()
        .map_err(ssh("cannot read known hosts"))?;
    for line in text.lines() {
        // lines libssh2 cannot read (certificate authorities, key types it lacks) hold no
        // key it could be shown
        let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
    }
    match known.check_port(address, cfg.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(Problem::ChangedHostKey {
            fingerprint,
            known_hosts: file.clone(),
        }),
        CheckResult::NotFound if !cfg.accept_new_host_keys => Err(Problem::UnknownHostKey {
            fingerprint,
            known_hosts: file.clone(),
        }),
        CheckResult::NotFound => {
            let name = if cfg.port == 22 {
                address.to_string()
            } else {
                format!("[{address}]:{}", cfg.port)
            };
            let mut new = session
                .known_hosts()
                .map_err(ssh("cannot add a known host"))?;
            new.add(&name, key, "", kind.into())
                .map_err(ssh("cannot add a known host"))?;
            let host = new.hosts().map_err(ssh("cannot add a known host"))?.pop();
            let line = match host {
                Some(host) => new
                    .write_string(&host, KnownHostFileKind::OpenSSH)
                    .map_err(ssh("cannot add a known host"))?,
                None => {
                    return Err(Problem::Io {
                        what: "cannot add a known host".into(),
                        error: io::ErrorKind::InvalidData.into(),
                    })
                }
            };
            append_line(file, line.trim_end()).map_err(|error| Problem::Io {
                what: format!("cannot add the host's key to {}", file.display()),
                error,
            })
        }
        CheckResult::Failure => Err(Problem::Io {
            what: format!("cannot check the host key against {}", file.display()),
            error: io::ErrorKind::InvalidData.into(),
        }),
    }
}

/// Appends one line to a file (made), on a line of its own, one writer at a time.
fn append_line(file: &Path, line: &str) -> io::Result<()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(file)?;
    let mut text = Vec::new();
    f.read_to_end(&mut text)?;
    let sep = if text.is_empty() || text.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{line}\n").as_bytes())
}

/// The SSH agent (if `SSH_AUTH_SOCK` is set), then the identity file.
fn authenticate(session: &ssh2::Session, cfg: &SshConfig) -> Result<(), Problem> {
    let mut tried = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match session.userauth_agent(&cfg.user) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push("the SSH agent".to_string()),
            Err(e) => tried.push(format!("the SSH agent: {}", e.message())),
        }
    }
    if let Some(id) = &cfg.identity_file {
        if !id.exists() {
            tried.push(format!("{}: no such file", id.display()));
        } else {
            match session.userauth_pubkey_file(&cfg.user, None, id, None) {
                Ok(()) if session.authenticated() => return Ok(()),
                Ok(()) => tried.push(id.display().to_string()),
                Err(e) => tried.push(format!("{}: {}", id.display(), e.message())),
            }
        }
    }
    if tried.is_empty() {
        tried.push("no SSH agent and no identity file".into());
    }
    Err(Problem::Auth {
        user: cfg.user.clone(),
        tried: tried.join("; "),
    })
}

/// Reads what a channel has on its stdout and stderr without waiting (session
/// non-blocking); whether anything came. Both streams share the session's socket, so it
/// reads until neither has anything and libssh2 holds nothing more for the channel.
fn read_ready(
    channel: &mut Channel,
    stdout: &mut Vec<u8>,
    stderr: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut buf = [0; 32 * 1024];
    let (mut any, mut looked_again) = (false, false);
    loop {
        let mut got = false;
        for (id, sink) in [(0, &mut *stdout), (1, &mut *stderr)] {
            match channel.stream(id).read(&mut buf) {
                Ok(n) => {
                    sink.extend_from_slice(&buf[..n]);
                    got |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        any |= got;
        if !got {
            // reading stderr may have queued stdout data that came meanwhile
            if looked_again || channel.read_window().available == 0 {
                return Ok(any);
            }
            looked_again = true;
        }
    }
}

/// Takes the complete lines out of `buf` (without their newline).
fn take_lines(buf: &mut Vec<u8>) -> Vec<String> {
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let rest = buf.split_off(end + 1);
    let lines = std::mem::replace(buf, rest);
    lines[..end]
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// Copies with large buffers (SFTP pipelines a large write; 8 KiB ones wait a round trip
/// each).
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0; 1 << 18];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// SFTP attributes that set only the mode.
fn perm(mode: u32) -> ssh2::FileStat {
    ssh2::FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode),
        atime: None,
        mtime: None,
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Base64 without padding, as `ssh-keygen -l` shows fingerprints.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_unpadded_standard_base64() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg");
        assert_eq!(base64(b"fo"), "Zm8");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar?>"), "Zm9vYmFyPz4");
    }

    #[test]
    fn complete_lines_are_taken_and_a_partial_one_stays() {
        let mut buf = b"one\ntwo\nthr".to_vec();
        assert_eq!(take_lines(&mut buf), ["one", "two"]);
        assert_eq!(buf, b"thr");
        assert!(take_lines(&mut buf).is_empty());
        buf.extend_from_slice(b"ee\n");
        assert_eq!(take_lines(&mut buf), ["three"]);
        assert!(buf.is_empty());
    }
}

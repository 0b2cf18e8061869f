//! A line-delimited, two-way channel to one agent, whatever carries it: an SSH exec
//! channel (`ssh`) or the pipes of a local process ([`Link::local`]). Lines go out through
//! a sender and come in through a receiver, so that the controller's one thread can wait
//! on every agent at once; the thread that owns the carrier turns its end into
//! [`Incoming::Closed`], with why, exactly once.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};

/// What arrives from an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One line, without its newline.
    Line(String),
    /// The channel ended (the agent exited, the connection dropped): why, in words. Nothing
    /// follows it.
    Closed(String),
}

/// The controller's end of a channel to one agent.
pub struct Link {
    /// Lines to the agent, without their newline.
    pub send: Sender<String>,
    pub recv: Receiver<Incoming>,
}

impl Link {
    /// A link whose carrier is driven by someone else (the SSH session's thread): the
    /// controller's end, and the carrier's (lines to write, and where to put what it reads).
    pub fn pair() -> (Link, Sender<Incoming>, Receiver<String>) {
        let (send, outgoing) = channel();
        let (incoming, recv) = channel();
        (Link { send, recv }, incoming, outgoing)
    }

    /// Starts `command` as a local agent speaking over its stdin and stdout (its stderr is
    /// left as it was set): two threads carry the lines.
    pub fn local(mut command: Command) -> std::io::Result<(Link, Child)> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (link, incoming, outgoing) = Link::pair();
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in outgoing {
                if writeln!(stdin, "{line}")
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let why = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        if incoming.send(Incoming::Line(line)).is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => break format!("cannot read from the agent: {e}"),
                    None => break "the agent closed its output".to_string(),
                }
            };
            let _ = incoming.send(Incoming::Closed(why));
        });
        Ok((link, child))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_link_carries_lines_both_ways_and_says_when_it_closed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "read a; echo \"got $a\"; read b; echo \"got $b\""]);
        let (link, mut child) = Link::local(cmd).unwrap();
        link.send.send("one".into()).unwrap();
        assert_eq!(link.recv.recv().unwrap(), Incoming::Line("got one".into()));
        link.send.send("two".into()).unwrap();
        assert_eq!(link.recv.recv().unwrap(), Incoming::Line("got two".into()));
        assert!(matches!(link.recv.recv().unwrap(), Incoming::Closed(_)));
        assert!(child.wait().unwrap().success());
    }
}

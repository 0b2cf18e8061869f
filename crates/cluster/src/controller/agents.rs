//! The controller's side of every agent's conversation at once: one receiver for all of
//! them (a forwarding thread per link tags each line with its host), heartbeats sent every
//! [`HEARTBEAT`], and a host counted lost when its channel closes or it is silent for
//! [`SILENCE`]. A lost host is told nothing more.

use crate::link::{Incoming, Link};
use crate::protocol::{self, FromAgent, ToAgent, HEARTBEAT, SILENCE};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// What one agent did.
#[derive(Debug)]
pub enum Event {
    Message(usize, FromAgent),
    /// Host `h` is gone: its channel closed, it was silent too long, or it spoke nonsense.
    Lost(usize, String),
}

/// Every agent of a run.
pub struct Agents {
    sends: Vec<Option<Sender<String>>>,
    rx: Receiver<(usize, Incoming)>,
    heard: Vec<Instant>,
    /// Why each host was lost, if it was.
    lost: Vec<Option<String>>,
    beat: Instant,
}

impl Agents {
    /// Takes over `links`, one per host in inventory order (`None`: a host without an agent,
    /// lost from the start with its reason).
    pub fn new(links: Vec<Result<Link, String>>) -> Agents {
        let (tx, rx) = channel();
        let mut sends = Vec::with_capacity(links.len());
        let mut lost = Vec::with_capacity(links.len());
        for (h, link) in links.into_iter().enumerate() {
            match link {
                Ok(Link { send, recv }) => {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for incoming in recv {
                            if tx.send((h, incoming)).is_err() {
                                return;
                            }
                        }
                    });
                    sends.push(Some(send));
                    lost.push(None);
                }
                Err(why) => {
                    sends.push(None);
                    lost.push(Some(why));
                }
            }
        }
        let now = Instant::now();
        Agents {
            heard: vec![now; sends.len()],
            sends,
            rx,
            lost,
            beat: now,
        }
    }

    pub fn len(&self) -> usize {
        self.sends.len()
    }

    /// Why host `h` was lost, if it was.
    pub fn lost(&self, h: usize) -> Option<&str> {
        self.lost[h].as_deref()
    }

    /// The hosts not lost.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&h| self.lost[h].is_none())
            .collect()
    }

    /// Sends `message` to host `h` (nothing if it was lost).
    pub fn send(&self, h: usize, message: &ToAgent) {
        if let (None, Some(send)) = (&self.lost[h], &self.sends[h]) {
            let _ = send.send(protocol::line(message));
        }
    }

    /// Sends `message` to every host not lost.
    pub fn broadcast(&self, message: &ToAgent) {
        for h in 0..self.len() {
            self.send(h, message);
        }
    }

    /// Counts host `h` lost for `why` (once) and closes its channel: its agent then stops.
    pub fn lose(&mut self, h: usize, why: String) -> Option<Event> {
        if self.lost[h].is_some() {
            return None;
        }
        self.lost[h] = Some(why.clone());
        self.sends[h] = None;
        Some(Event::Lost(h, why))
    }

    /// The next thing an agent did, waiting at most `timeout`; heartbeats go out and
    /// silences are checked meanwhile, and agents' heartbeats are absorbed.
    pub fn next(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.beat.elapsed() >= HEARTBEAT {
                self.beat = Instant::now();
                self.broadcast(&ToAgent::Heartbeat);
            }
            if let Some(h) = (0..self.len())
                .find(|&h| self.lost[h].is_none() && self.heard[h].elapsed() >= SILENCE)
            {
                let why = format!("no word from its agent for {} s", SILENCE.as_secs());
                if let Some(e) = self.lose(h, why) {
                    return Some(e);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wait = (deadline - now).min(HEARTBEAT.saturating_sub(self.beat.elapsed()));
            match self.rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok((h, _)) if self.lost[h].is_some() => {}
                Ok((h, Incoming::Line(line))) => {
                    self.heard[h] = Instant::now();
                    match protocol::parse::<FromAgent>(&line) {
                        Ok(FromAgent::Heartbeat) => {}
                        Ok(m) => return Some(Event::Message(h, m)),
                        Err(e) => return self.lose(h, format!("its agent said: {e}")),
                    }
                }
                Ok((h, Incoming::Closed(why))) => return self.lose(h, why),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Waits, at most `timeout`, until every agent not lost has closed its channel (exited).
    pub fn wait_closed(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.alive().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.next(left);
        }
    }

    /// Waits for one answer from each of `hosts`, as `pick` recognises it (messages it
    /// does not want are given to `other`), for at most `timeout`: per host the answer, or
    /// why there is none (the agent failed, was lost, or did not answer in time).
    pub fn gather<T>(
        &mut self,
        hosts: &[usize],
        timeout: Duration,
        mut pick: impl FnMut(usize, FromAgent) -> Result<T, FromAgent>,
        mut other: impl FnMut(usize, FromAgent),
    ) -> Vec<Result<T, String>> {
        let mut answers: Vec<Option<Result<T, String>>> =
            self.lost.iter().map(|lost| lost.clone().map(Err)).collect();
        let deadline = Instant::now() + timeout;
        while hosts.iter().any(|&h| answers[h].is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                None => break,
                // A channel that closes after its answer (an agent exits after `done`) took
                // nothing from it.
                Some(Event::Lost(h, why)) => {
                    answers[h].get_or_insert(Err(why));
                }
                Some(Event::Message(h, FromAgent::Failed { error })) => {
                    answers[h] = Some(Err(error));
                }
                Some(Event::Message(h, m)) => match pick(h, m) {
                    Ok(t) if answers[h].is_none() => answers[h] = Some(Ok(t)),
                    Ok(_) => {}
                    Err(m) => other(h, m),
                },
            }
        }
        hosts
            .iter()
            .map(|&h| {
                answers[h].take().unwrap_or_else(|| {
                    Err(format!("no answer within {:.1} s", timeout.as_secs_f64()))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Incoming;

    /// An agent played by the test: what it receives and where to put what it says.
    fn fake() -> (Link, Sender<Incoming>, Receiver<String>) {
        Link::pair()
    }

    #[test]
    fn answers_are_gathered_per_host_and_a_closed_channel_is_a_lost_host() {
        let (a, a_says, a_hears) = fake();
        let (b, b_says, _b_hears) = fake();
        let mut agents = Agents::new(vec![Ok(a), Ok(b), Err("cannot connect".into())]);
        agents.broadcast(&ToAgent::Clock { seq: 1 });
        assert_eq!(a_hears.recv().unwrap(), r#"{"type":"clock","seq":1}"#);
        a_says
            .send(Incoming::Line(
                r#"{"type":"clock","seq":1,"unix_us":7}"#.into(),
            ))
            .unwrap();
        b_says
            .send(Incoming::Closed("connection reset".into()))
            .unwrap();
        let got = agents.gather(
            &[0, 1, 2],
            Duration::from_secs(5),
            |_, m| match m {
                FromAgent::Clock { unix_us, .. } => Ok(unix_us),
                m => Err(m),
            },
            |_, _| {},
        );
        assert_eq!(got[0], Ok(7));
        assert_eq!(got[1], Err("connection reset".into()));
        assert_eq!(got[2], Err("cannot connect".into()));
    }

    #[test]
    fn a_host_that_does_not_answer_in_time_is_named_as_such() {
        let (a, _a_says, _a_hears) = fake();
        let mut agents = Agents::new(vec![Ok(a)]);
        let got = agents.gather(
            &[0],
            Duration::from_millis(100),
            |_, m| Err::<(), _>(m),
            |_, _| {},
        );
        assert_eq!(got[0], Err("no answer within 0.1 s".into()));
    }
}

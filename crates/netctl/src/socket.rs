//! One small rtnetlink socket that pipelines requests: messages are packed many to a
//! `sendmsg` (the kernel handles them in order and queues one acknowledgement each), then
//! the acknowledgements are collected and each failure is tied back to its message.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};
use std::io;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Messages per `sendmsg`: their acknowledgements must fit the receive buffer.
const WINDOW_MSGS: usize = 1024;
/// Bytes per `sendmsg`, below the socket's send buffer.
const WINDOW_BYTES: usize = 128 * 1024;
const RCVBUF: usize = 16 << 20;

/// One request that the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Position of the message in the batch.
    pub index: usize,
    /// Positive errno.
    pub errno: i32,
    /// The kernel's extended-ack text, if it gave one.
    pub message: Option<String>,
}

impl Failure {
    /// "File exists" or "Invalid argument (kernel: Specified qdisc kind is unknown)".
    pub fn describe(&self) -> String {
        let base = io::Error::from_raw_os_error(self.errno).to_string();
        let base = base.split(" (os error").next().unwrap_or(&base).to_string();
        match &self.message {
            Some(m) => format!("{base} (kernel: {m})"),
            None => base,
        }
    }
}

/// A rtnetlink socket with pipelined batches.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
}

impl Netlink {
    /// Opens the socket: extended acks on, acks without the echoed request, large buffers.
    pub fn new() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_ext_ack(true)?;
        sock.set_cap_ack(true)?;
        if setsockopt(&sock, RcvBufForce, &RCVBUF).is_err() {
            sock.set_rx_buf_sz(RCVBUF)?;
        }
        Ok(Netlink {
            sock,
            seq: 1,
            rx: vec![0; 1 << 20],
        })
    }

    /// Sends every message with `NLM_F_REQUEST | NLM_F_ACK | flags` (e.g.
    /// [`crate::Op::flags`]), pipelined, and returns the ones that failed. An `Err` means
    /// the socket itself failed.
    pub fn batch<I>(&mut self, msgs: I, flags: u16) -> io::Result<Vec<Failure>>
    where
        I: IntoIterator<Item = RouteNetlinkMessage>,
    {
        let flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut failures = Vec::new();
        let mut out = Vec::with_capacity(WINDOW_BYTES + 4096);
        let mut first_index = 0;
        let mut in_window = 0;
        let mut msgs = msgs.into_iter().peekable();
        while let Some(m) = msgs.next() {
            self.push(&mut out, m, flags);
            in_window += 1;
            if in_window == WINDOW_MSGS || out.len() >= WINDOW_BYTES || msgs.peek().is_none() {
                let first_seq = self.seq - in_window as u32;
                self.sock.send(&out, 0)?;
                out.clear();
                self.collect_acks(first_seq, in_window, first_index, &mut failures)?;
                first_index += in_window;
                in_window = 0;
            }
        }
        Ok(failures)
    }

    /// Sends one request (a dump if `dump`) and returns the kernel's reply messages.
    pub fn query(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        let seq = self.seq;
        self.push(
            &mut out,
            msg,
            NLM_F_REQUEST | NLM_F_ACK | if dump { NLM_F_DUMP } else { 0 },
        );
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.recv()?;
            for (ty, s, off, len) in frames(&self.rx[..n]) {
                if s != seq {
                    continue;
                }
                let frame = &self.rx[off..off + len];
                match ty {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => match parse_error(frame, 0) {
                        None => return Ok(replies),
                        Some(f) => return Err(io::Error::from_raw_os_error(f.errno)),
                    },
                    _ => {
                        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame).map_err(
                            |e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                        )?;
                        if let NetlinkPayload::InnerMessage(inner) = m.payload {
                            replies.push(inner);
                        }
                    }
                }
            }
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16) {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let start = out.len();
        out.resize(start + m.buffer_len(), 0);
        m.serialize(&mut out[start..]);
    }

    fn recv(&mut self) -> io::Result<usize> {
        loop {
            match self.sock.recv(&mut &mut self.rx[..], 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn collect_acks(
        &mut self,
        first_seq: u32,
        count: usize,
        first_index: usize,
        failures: &mut Vec<Failure>,
    ) -> io::Result<()> {
        let mut left = count;
        while left > 0 {
            let n = self.recv()?;
            for (ty, seq, off, len) in frames(&self.rx[..n]) {
                let k = seq.wrapping_sub(first_seq) as usize;
                if ty != NLMSG_ERROR || k >= count {
                    continue;
                }
                left -= 1;
                if let Some(f) = parse_error(&self.rx[off..off + len], first_index + k) {
                    failures.push(f);
                }
            }
        }
        Ok(())
    }
}

/// Splits a datagram into netlink frames: (type, sequence, offset, length).
fn frames(buf: &[u8]) -> Vec<(u16, u32, usize, usize)> {
    let mut v = Vec::new();
    let mut off = 0;
    while let Ok(nb) = NetlinkBuffer::new_checked(&buf[off..]) {
        let len = nb.length() as usize;
        v.push((nb.message_type(), nb.sequence_number(), off, len));
        off += (len + 3) & !3;
        if off >= buf.len() {
            break;
        }
    }
    v
}

/// `None` for a positive acknowledgement, else the failure with its extended-ack text.
fn parse_error(frame: &[u8], index: usize) -> Option<Failure> {
    let nb = NetlinkBuffer::new(frame);
    let payload = nb.payload();
    let code = i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?);
    if code == 0 {
        return None;
    }
    let mut message = None;
    if nb.flags() & NLM_F_ACK_TLVS != 0 {
        // errno + the request's header (capped acks echo no payload), then TLVs
        let mut tlvs = payload.get(4 + 16..).unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let text = &tlvs[4..len];
                let text = text.split(|b| *b == 0).next().unwrap_or(text);
                message = Some(String::from_utf8_lossy(text).into_owned());
            }
            tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
        }
    }
    Some(Failure {
        index,
        errno: -code,
        message,
    })
}

//! rtpengine as a child process in user-space mode, driven with its ng control protocol
//! (bencode over UDP: `offer` / `answer` / `delete`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// A bencode value (only what ng replies use).
#[derive(Debug, Clone, PartialEq)]
pub enum Bencode {
    /// Byte string.
    Bytes(Vec<u8>),
    /// Integer.
    Int(i64),
    /// List.
    List(Vec<Bencode>),
    /// Dictionary.
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    /// Encodes into `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Bencode::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bencode::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Bencode::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `b`; returns it and the rest.
    pub fn decode(b: &[u8]) -> Result<(Bencode, &[u8])> {
        match b.first() {
            Some(b'i') => {
                let end = b
                    .iter()
                    .position(|&c| c == b'e')
                    .ok_or_else(|| anyhow!("bad int"))?;
                let v = std::str::from_utf8(&b[1..end])?.parse()?;
                Ok((Bencode::Int(v), &b[end + 1..]))
            }
            Some(b'l') => {
                let mut rest = &b[1..];
                let mut l = Vec::new();
                while rest.first() != Some(&b'e') {
                    let (v, r) = Bencode::decode(rest)?;
                    l.push(v);
                    rest = r;
                }
                Ok((Bencode::List(l), &rest[1..]))
            }
            Some(b'd') => {
                let mut rest = &b[1..];
                let mut d = BTreeMap::new();
                while rest.first() != Some(&b'e') {
                    let (k, r) = Bencode::decode(rest)?;
                    let (v, r) = Bencode::decode(r)?;
                    let Bencode::Bytes(k) = k else {
                        bail!("non-string key")
                    };
                    d.insert(k, v);
                    rest = r;
                }
                Ok((Bencode::Dict(d), &rest[1..]))
            }
            Some(c) if c.is_ascii_digit() => {
                let colon = b
                    .iter()
                    .position(|&c| c == b':')
                    .ok_or_else(|| anyhow!("bad string"))?;
                let n: usize = std::str::from_utf8(&b[..colon])?.parse()?;
                let s = b
                    .get(colon + 1..colon + 1 + n)
                    .ok_or_else(|| anyhow!("short string"))?;
                Ok((Bencode::Bytes(s.to_vec()), &b[colon + 1 + n..]))
            }
            _ => bail!("bad bencode"),
        }
    }

    fn get(&self, key: &str) -> Option<&Bencode> {
        match self {
            Bencode::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    fn str(&self) -> Option<String> {
        match self {
            Bencode::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

fn dict(pairs: &[(&str, &str)]) -> Bencode {
    Bencode::Dict(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Bencode::Bytes(v.as_bytes().to_vec())))
            .collect(),
    )
}

/// A running rtpengine and an ng client to it.
pub struct Rtpengine {
    child: Child,
    ng: UdpSocket,
    ng_addr: SocketAddr,
    cookie: u64,
}

/// Media ports of one call, as rtpengine hands them out: for each m-line, where the caller
/// sends and where the callee receives from.
#[derive(Debug, Clone)]
pub struct CallPorts {
    /// Per m-line: (port the caller sends to, port rtpengine sends to the callee from).
    pub media: Vec<(u16, u16)>,
}

impl Rtpengine {
    /// The rtpengine process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `binary` in the foreground, user space only, on 127.0.0.1, with ports
    /// `port_min..=port_max`, `threads` worker threads, optionally pinned to `cpu`.
    pub fn start(
        binary: &str,
        ng_port: u16,
        port_min: u16,
        port_max: u16,
        threads: usize,
        cpu: Option<usize>,
    ) -> Result<Self> {
        let mut cmd = match cpu {
            Some(c) => {
                let mut t = Command::new("taskset");
                t.arg("-c").arg(c.to_string()).arg(binary);
                t
            }
            None => Command::new(binary),
        };
        cmd.args([
            "--config-file=none",
            "--table=-1",
            "--foreground",
            "--log-stderr",
            "--log-level=3",
            &format!("--listen-ng=127.0.0.1:{ng_port}"),
            "--interface=127.0.0.1",
            &format!("--port-min={port_min}"),
            &format!("--port-max={port_max}"),
            &format!("--num-threads={threads}"),
            "--delete-delay=0",
            "--timeout=600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd.spawn().with_context(|| format!("spawning {binary}"))?;
        let ng = UdpSocket::bind("127.0.0.1:0")?;
        ng.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut me = Self {
            child,
            ng,
            ng_addr: format!("127.0.0.1:{ng_port}").parse()?,
            cookie: 0,
        };
        // Wait until it answers a ping.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = me.child.try_wait() {
                bail!("rtpengine exited at start-up: {status}");
            }
            if let Ok(r) = me.request(&dict(&[("command", "ping")]))
                && r.get("result").and_then(|v| v.str()).as_deref() == Some("pong")
            {
                return Ok(me);
            }
            if Instant::now() > deadline {
                bail!("rtpengine did not answer ng ping within 10 s");
            }
        }
    }

    fn request(&mut self, msg: &Bencode) -> Result<Bencode> {
        self.cookie += 1;
        let cookie = format!("lg{}", self.cookie);
        let mut out = format!("{cookie} ").into_bytes();
        msg.encode(&mut out);
        self.ng.send_to(&out, self.ng_addr)?;
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = self.ng.recv_from(&mut buf)?;
            let reply = &buf[..n];
            let Some(sp) = reply.iter().position(|&c| c == b' ') else {
                continue;
            };
            if &reply[..sp] != cookie.as_bytes() {
                continue;
            }
            let (v, _) = Bencode::decode(&reply[sp + 1..])?;
            return Ok(v);
        }
    }

    fn sdp_request(&mut self, pairs: &[(&str, &str)]) -> Result<String> {
        let r = self.request(&dict(pairs))?;
        let result = r.get("result").and_then(|v| v.str()).unwrap_or_default();
        if result != "ok" {
            bail!(
                "rtpengine {}: {result} {:?}",
                pairs[0].1,
                r.get("error-reason").and_then(|v| v.str())
            );
        }
        r.get("sdp")
            .and_then(|v| v.str())
            .ok_or_else(|| anyhow!("no sdp in reply"))
    }

    /// Sets up one call: the caller at `caller` and the callee at `callee` (both loadgen
    /// sockets), one m-line per entry of `media` ("audio"/"video").
    pub fn call(
        &mut self,
        call_id: &str,
        caller: SocketAddr,
        callee: SocketAddr,
        media: &[&str],
    ) -> Result<CallPorts> {
        let offer = sdp(caller, media);
        let to_callee = self.sdp_request(&[
            ("command", "offer"),
            ("call-id", call_id),
            ("from-tag", "caller"),
            ("sdp", &offer),
        ])?;
        let answer = sdp(callee, media);
        let to_caller = self.sdp_request(&[
            ("command", "answer"),
            ("call-id", call_id),
            ("from-tag", "caller"),
            ("to-tag", "callee"),
            ("sdp", &answer),
        ])?;
        let send_to = m_ports(&to_caller);
        let recv_from = m_ports(&to_callee);
        if send_to.len() != media.len() || recv_from.len() != media.len() {
            bail!(
                "rtpengine returned {} / {} m-lines for {}",
                send_to.len(),
                recv_from.len(),
                media.len()
            );
        }
        Ok(CallPorts {
            media: send_to.into_iter().zip(recv_from).collect(),
        })
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sdp(at: SocketAddr, media: &[&str]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=loadgen\r\nc=IN IP4 {ip}\r\nt=0 0\r\n",
        ip = at.ip()
    );
    for m in media {
        match *m {
            "video" => s.push_str(&format!(
                "m=video {} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=sendrecv\r\n",
                at.port()
            )),
            _ => s.push_str(&format!(
                "m=audio {} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n",
                at.port()
            )),
        }
    }
    s
}

fn m_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter(|l| l.starts_with("m="))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let d = dict(&[("command", "offer"), ("sdp", "v=0")]);
        let mut out = Vec::new();
        d.encode(&mut out);
        assert_eq!(out, b"d7:command5:offer3:sdp3:v=0e");
        let (back, rest) = Bencode::decode(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(back, d);
        assert!(Bencode::decode(b"d3:abc").is_err());
    }

    #[test]
    fn m_line_ports() {
        assert_eq!(
            m_ports("v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\n"),
            vec![4000, 4002]
        );
    }
}

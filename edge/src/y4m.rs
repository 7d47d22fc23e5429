//! Minimal YUV4MPEG2 (Y4M) reading and writing of I420 pictures.
//!
//! Reading accepts 4:2:0 files (`C420`, `C420jpeg`, `C420paldv`, `C420mpeg2` or no `C`
//! tag) of even width and height; frames are returned as
//! [`I420Frame`]s. Writing produces `C420jpeg` at the
//! given frame rate.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use supernode_media::codec::I420Frame;

use crate::EdgeError;

fn bad(path: &Path, why: &str) -> EdgeError {
    EdgeError::File(format!("{}: {why}", path.display()))
}

/// Reads every frame of a Y4M file (and its frame rate, frames per second).
pub fn read_y4m(path: &Path) -> Result<(Vec<I420Frame>, f64), EdgeError> {
    let f = std::fs::File::open(path).map_err(|e| bad(path, &e.to_string()))?;
    let mut r = BufReader::new(f);
    parse_y4m(&mut r).map_err(|why| bad(path, &why))
}

/// Parses Y4M from a reader (see [`read_y4m`]).
pub fn parse_y4m(r: &mut impl BufRead) -> Result<(Vec<I420Frame>, f64), String> {
    let mut header = String::new();
    r.read_line(&mut header).map_err(|e| e.to_string())?;
    let mut tags = header.trim_end().split(' ');
    if tags.next() != Some("YUV4MPEG2") {
        return Err("not a YUV4MPEG2 file".into());
    }
    let (mut w, mut h, mut fps) = (0usize, 0usize, 30.0f64);
    for t in tags {
        let (k, v) = t.split_at(t.len().min(1));
        match k {
            "W" => w = v.parse().map_err(|_| "bad width")?,
            "H" => h = v.parse().map_err(|_| "bad height")?,
            "F" => {
                let (n, d) = v.split_once(':').ok_or("bad frame rate")?;
                let (n, d): (f64, f64) = (
                    n.parse().map_err(|_| "bad frame rate")?,
                    d.parse().map_err(|_| "bad frame rate")?,
                );
                if n > 0.0 && d > 0.0 {
                    fps = n / d;
                }
            }
            "C" if !v.starts_with("420") => return Err(format!("colour space C{v} is not 4:2:0")),
            _ => {}
        }
    }
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 || w * h > 4096 * 2304 {
        return Err(format!("unsupported size {w}x{h}"));
    }
    let (ylen, clen) = (w * h, (w / 2) * (h / 2));
    let mut frames = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            break;
        }
        if !line.starts_with("FRAME") {
            return Err("expected FRAME".into());
        }
        let mut y = vec![0u8; ylen];
        let mut u = vec![0u8; clen];
        let mut v = vec![0u8; clen];
        r.read_exact(&mut y)
            .and_then(|_| r.read_exact(&mut u))
            .and_then(|_| r.read_exact(&mut v))
            .map_err(|_| "truncated frame")?;
        frames.push(I420Frame::from_planes(w, h, y, u, v).map_err(|e| e.to_string())?);
    }
    if frames.is_empty() {
        return Err("no frames".into());
    }
    Ok((frames, fps))
}

/// Writes Y4M incrementally.
#[derive(Debug)]
pub struct Y4mWriter<W: Write> {
    out: W,
    header_done: bool,
    fps: u32,
}

impl<W: Write> Y4mWriter<W> {
    /// A writer at `fps` frames per second.
    pub fn new(out: W, fps: u32) -> Self {
        Self {
            out,
            header_done: false,
            fps: fps.max(1),
        }
    }

    /// Appends one frame (the first frame fixes the size in the header).
    pub fn write_frame(&mut self, f: &I420Frame) -> std::io::Result<()> {
        if !self.header_done {
            writeln!(
                self.out,
                "YUV4MPEG2 W{} H{} F{}:1 Ip A1:1 C420jpeg",
                f.width(),
                f.height(),
                self.fps
            )?;
            self.header_done = true;
        }
        self.out.write_all(b"FRAME\n")?;
        self.out.write_all(&f.y)?;
        self.out.write_all(&f.u)?;
        self.out.write_all(&f.v)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let a = I420Frame::test_pattern(64, 32, 1).unwrap();
        let b = I420Frame::test_pattern(64, 32, 2).unwrap();
        let mut w = Y4mWriter::new(Vec::new(), 30);
        w.write_frame(&a).unwrap();
        w.write_frame(&b).unwrap();
        let bytes = w.finish().unwrap();
        let (frames, fps) = parse_y4m(&mut &bytes[..]).unwrap();
        assert_eq!(frames, vec![a, b]);
        assert_eq!(fps, 30.0);
        assert!(parse_y4m(&mut &b"YUV4MPEG2 W3 H2\n"[..]).is_err());
        assert!(parse_y4m(&mut &bytes[..bytes.len() - 5]).is_err());
        assert!(parse_y4m(&mut &b"YUV4MPEG2 W4 H4 C444\n"[..]).is_err());
    }
}

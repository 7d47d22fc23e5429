//! GStreamer (`gst-launch-1.0`, Debian's `gstreamer1.0-*` packages) for interop tests.
//!
//! * [`available`]: `gst-launch-1.0` and every element named are installed, else
//!   [`crate::external::unavailable`] (`SKIP:` or, in CI, a failure).
//! * [`Pipeline`]: a running `gst-launch-1.0 -q -e <description>`, killed when dropped so a
//!   failing test leaves nothing behind; [`Pipeline::run`] runs one to its end.
//! * [`av_send`], [`av_receive`], [`Decoded::read`]: the Opus + H.264 pipelines the edge and
//!   host interop tests use (test signals to RTP; RTP to raw files) and how much the
//!   receiving side decoded.
//!
//! Descriptions are split on white space, so caps and properties must not contain spaces.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::external::unavailable;

fn quiet(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing of `gst-launch-1.0` and `elements` (empty: everything is here).
pub fn missing(elements: &[&str]) -> Vec<String> {
    if !quiet("gst-launch-1.0", "--version") {
        return vec!["gst-launch-1.0".to_owned()];
    }
    elements
        .iter()
        .filter(|e| !quiet("gst-inspect-1.0", e))
        .map(|e| (*e).to_owned())
        .collect()
}

/// Whether `gst-launch-1.0` and every element in `elements` are installed. When not, prints
/// `SKIP: <test>: …` and gives `false`, or panics under `SUPERNODE_REQUIRE_EXTERNAL=1`.
pub fn available(test: &str, elements: &[&str]) -> bool {
    let missing = missing(elements);
    missing.is_empty() || unavailable(format!("{test}: GStreamer lacks {missing:?}"))
}

/// A running `gst-launch-1.0 -q -e` pipeline (output discarded); killed on drop.
#[derive(Debug)]
pub struct Pipeline {
    child: Child,
}

fn command(description: &str) -> Command {
    let mut c = Command::new("gst-launch-1.0");
    c.args(["-q", "-e"])
        .args(description.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

impl Pipeline {
    /// Starts `gst-launch-1.0 -q -e <description>`. Panics if it cannot be started.
    pub fn spawn(description: &str) -> Self {
        let child = command(description).spawn().expect("start gst-launch-1.0");
        Self { child }
    }

    /// Runs a pipeline to its end (e.g. sources with `num-buffers`) and gives its status.
    pub fn run(description: &str) -> ExitStatus {
        command(description).status().expect("run gst-launch-1.0")
    }

    /// Its exit status if it has ended by now.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `limit` for it to end: its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (if it still runs) and reaps it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The elements [`av_send`] uses.
pub const AV_SEND_ELEMENTS: &[&str] = &[
    "audiotestsrc",
    "opusenc",
    "rtpopuspay",
    "videotestsrc",
    "openh264enc",
    "rtph264pay",
    "udpsink",
];

/// The elements [`av_receive`] uses.
pub const AV_RECEIVE_ELEMENTS: &[&str] = &[
    "udpsrc",
    "rtpjitterbuffer",
    "rtpopusdepay",
    "opusdec",
    "rtph264depay",
    "avdec_h264",
    "filesink",
];

/// Live test signals as RTP to 127.0.0.1: `audio_buffers` Opus packets (48 kHz mono, 20 ms,
/// PT 111) to `audio_port` and `video_pictures` H.264 pictures (320×240 at 30 fps, PT 96,
/// SPS/PPS with every IDR) to `video_port`. Ends after both.
pub fn av_send(
    audio_port: u16,
    video_port: u16,
    audio_buffers: u32,
    video_pictures: u32,
) -> String {
    format!(
        "audiotestsrc is-live=true num-buffers={audio_buffers} ! audio/x-raw,rate=48000,channels=1 ! \
         opusenc ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={audio_port} \
         videotestsrc is-live=true num-buffers={video_pictures} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! rtph264pay pt=96 config-interval=-1 ! udpsink host=127.0.0.1 port={video_port}"
    )
}

/// Receives Opus RTP (PT 111) on `audio_port` and H.264 RTP (PT 96) on `video_port`, through
/// `rtpjitterbuffer`, decoded to raw files: S16LE 48 kHz mono in `audio_file`, I420 pictures
/// in `video_file`. Runs until killed; read the result with [`Decoded::read`].
pub fn av_receive(
    audio_port: u16,
    video_port: u16,
    audio_file: &Path,
    video_file: &Path,
) -> String {
    format!(
        "udpsrc port={audio_port} caps=application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! \
         rtpjitterbuffer ! rtpopusdepay ! opusdec ! audio/x-raw,rate=48000,channels=1,format=S16LE ! \
         filesink location={} \
         udpsrc port={video_port} caps=application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! \
         rtpjitterbuffer ! rtph264depay ! avdec_h264 ! video/x-raw,format=I420 ! filesink location={}",
        audio_file.display(),
        video_file.display()
    )
}

/// How much an [`av_receive`] pipeline decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    /// Seconds of audio (48 kHz mono S16LE) in the audio file.
    pub audio_seconds: f64,
    /// Whole I420 pictures of `width`×`height` in the video file.
    pub pictures: u64,
}

impl Decoded {
    /// Measures the files of [`av_receive`] (a missing file counts as empty).
    pub fn read(audio_file: &Path, video_file: &Path, width: u64, height: u64) -> Self {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        Self {
            audio_seconds: len(audio_file) as f64 / 96_000.0,
            pictures: len(video_file) / (width * height * 3 / 2),
        }
    }

    /// Asserts that more than `audio_seconds` of audio and more than `pictures` pictures
    /// were decoded (naming `what` in the message), and prints the amounts.
    pub fn assert_more_than(&self, audio_seconds: f64, pictures: u64, what: &str) {
        assert!(
            self.audio_seconds > audio_seconds,
            "{what}: GStreamer decoded {} s of audio, want > {audio_seconds}",
            self.audio_seconds
        );
        assert!(
            self.pictures > pictures,
            "{what}: GStreamer decoded {} pictures, want > {pictures}",
            self.pictures
        );
        eprintln!(
            "{what}: GStreamer decoded {:.1} s of audio and {} pictures",
            self.audio_seconds, self.pictures
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_that_does_not_exist_is_missing() {
        let m = missing(&["no-such-element-xyz"]);
        // Either GStreamer itself is missing, or it lacks the made-up element.
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0] == "gst-launch-1.0" || m[0] == "no-such-element-xyz");
    }

    #[test]
    fn decoded_counts_seconds_and_whole_pictures() {
        let dir = std::env::temp_dir().join(format!("testkit-decoded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, v) = (dir.join("a.raw"), dir.join("v.raw"));
        std::fs::write(&a, vec![0u8; 192_000]).unwrap();
        std::fs::write(&v, vec![0u8; 4 * 6 * 3 / 2 * 3 + 5]).unwrap();
        let d = Decoded::read(&a, &v, 4, 6);
        assert_eq!(d.audio_seconds, 2.0);
        assert_eq!(d.pictures, 3);
        d.assert_more_than(1.9, 2, "test");
        let short = std::panic::catch_unwind(|| d.assert_more_than(2.0, 2, "test"));
        assert!(short.is_err(), "2.0 s is not more than 2.0 s");
        let none = Decoded::read(&dir.join("x"), &dir.join("y"), 4, 6);
        assert_eq!((none.audio_seconds, none.pictures), (0.0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pipeline_runs_to_its_end_and_is_killed_on_drop() {
        if !available("testkit pipeline", &["fakesrc", "fakesink"]) {
            return;
        }
        assert!(Pipeline::run("fakesrc num-buffers=3 ! fakesink").success());
        let mut p = Pipeline::spawn("fakesrc ! fakesink");
        assert!(p.try_exit().is_none(), "an endless source runs");
        let pid = p.child.id();
        drop(p);
        // Killed and reaped: no gst-launch-1.0 (not even a zombie) is left under that id.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(!status.contains("gst-launch"), "{status}");
    }
}

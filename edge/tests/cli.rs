//! The `edge` binary: two `edge media` processes talking plain RTP over loopback write JSON
//! reports and WAV/Y4M files; failures give the documented exit statuses.

use std::process::Command;

use supernode_testkit::net::free_udp_port as free_port;

/// `edge media` between two loopback ports, plain RTP, 4 s, 320×180 video, timing marks
/// every second, a JSON report; `extra` arguments after these.
fn media(local: u16, remote: u16, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edge"));
    c.args([
        "media",
        "--local",
        &format!("127.0.0.1:{local}"),
        "--remote-audio",
        &format!("127.0.0.1:{remote}"),
        "--no-srtp",
        "--duration",
        "4s",
        "--mark-period-ms",
        "1000",
        "--width",
        "320",
        "--height",
        "180",
        "--report-json",
    ]);
    c.args(extra);
    c
}

/// A directory of one test's files, removed when the test ends (passed or failed).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("{tag}_{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn two_media_processes_exchange_audio_and_video() {
    let (pa, pb) = (free_port(), free_port());
    let dir = TempDir::new("edge_cli");
    let spawn = |local: u16, remote: u16, tag: &str| {
        media(local, remote, &["--video-bitrate", "300000", "--audio-out"])
            .arg(dir.join(format!("{tag}.wav")))
            .arg("--video-out")
            .arg(dir.join(format!("{tag}.y4m")))
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(pa, pb, "a").unwrap());
        let b = s.spawn(|| spawn(pb, pa, "b").unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    for (tag, out) in [("a", a), ("b", b)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{tag}: {stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!(v["ok"], true);
        assert!(v["audio"]["packets_received"].as_u64().unwrap() > 100);
        assert!(v["audio"]["similarity"].as_f64().unwrap() > 0.7);
        assert!(v["video"]["frames_decoded"].as_u64().unwrap() > 50);
        assert!(v["video"]["psnr_db"].as_f64().unwrap() > 30.0);
        assert!(v["mouth_to_ear_ms"].as_f64().is_some());
        let wav = supernode_edge::wav::read_wav(&dir.join(format!("{tag}.wav"))).unwrap();
        assert!(wav.len() > 48_000 * 2);
        let (frames, _) = supernode_edge::y4m::read_y4m(&dir.join(format!("{tag}.y4m"))).unwrap();
        assert!(frames.len() > 50);
        assert_eq!((frames[0].width(), frames[0].height()), (320, 180));
    }
}

#[test]
fn exit_statuses() {
    // No server listening: signaling fails with status 2 and a JSON failure report.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "t",
            "call",
            "acc_00000000000000000000000000000000",
            "--report-json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    // Nobody on the other side: media fails with status 1.
    let silent = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "media",
            "--remote-audio",
            &format!("127.0.0.1:{silent}"),
            "--no-video",
            "--duration",
            "500ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no audio received"));
    // Bad arguments: status 3 (bad key) or clap's usage error (2 from clap itself).
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "media",
            "--remote-audio",
            "127.0.0.1:9",
            "--srtp-key",
            "not-base64!",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn wav_and_y4m_inputs_are_sent_with_timing_marks() {
    let dir = TempDir::new("edge_cli_files");
    // A 1 s 440 Hz tone and ten pictures of the test pattern.
    let tone: Vec<i16> = (0..48_000)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin() * 8_000.0) as i16)
        .collect();
    supernode_edge::wav::write_wav(&dir.join("in.wav"), &tone).unwrap();
    let mut w =
        supernode_edge::y4m::Y4mWriter::new(std::fs::File::create(dir.join("in.y4m")).unwrap(), 30);
    for n in 0..10 {
        w.write_frame(&supernode_media::codec::I420Frame::test_pattern(320, 180, n * 7).unwrap())
            .unwrap();
    }
    w.finish().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let run =
        |local: u16, remote: u16, extra: &[&str]| media(local, remote, extra).output().unwrap();
    let (a_in, y_in) = (dir.join("in.wav"), dir.join("in.y4m"));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            run(
                pa,
                pb,
                &[
                    "--audio-in",
                    a_in.to_str().unwrap(),
                    "--video-in",
                    y_in.to_str().unwrap(),
                ],
            )
        });
        let b = s.spawn(|| run(pb, pa, &["--no-reference"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let v: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["audio"]["similarity"].is_null(),
        "no reference for a file"
    );
    assert!(v["video"]["psnr_db"].is_null());
    assert!(v["video"]["frames_decoded"].as_u64().unwrap() > 60, "{v}");
    // The marks were overlaid on the file's audio: mouth-to-ear is still measured.
    assert!(v["audio"]["marks_detected"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["mouth_to_ear_ms"].as_f64().unwrap() < 1000.0);
}

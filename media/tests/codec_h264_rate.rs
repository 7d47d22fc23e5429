//! H.264 rate changes on a running encoder: `set_bitrate` / `set_frame_rate` take effect from
//! the next picture (a keyframe), the byte rate follows, the decoder carries on, and invalid
//! values are typed errors that change nothing.

use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::codec::{CodecError, I420Frame};

const FPS: f32 = 30.0;
/// Pictures encoded per setting (3 s at 30 fps).
const SEGMENT: u64 = 90;
/// Pictures at the start of a segment left out of the rate measure: the keyframe a change
/// costs and rate control settling on the new target.
const SETTLE: u64 = 15;

struct Segment {
    /// Bytes of the pictures after `SETTLE`.
    bytes: usize,
    /// Pictures counted in `bytes`.
    pictures: usize,
    /// Which pictures were keyframes (index within the segment).
    keyframes: Vec<u64>,
    /// Mean luma PSNR of the decoded pictures after `SETTLE`.
    psnr_y: f64,
}

impl Segment {
    fn bits_per_second(&self, fps: f32) -> f64 {
        self.bytes as f64 * 8.0 / self.pictures as f64 * f64::from(fps)
    }
}

/// Encodes the clip (pictures `0..SEGMENT` of the moving test pattern; the pattern wraps
/// around, a scene cut, at picture 160) once more, decoding each picture.
fn run(enc: &mut H264Encoder, dec: &mut H264Decoder) -> Segment {
    let (w, h) = (enc.config().width, enc.config().height);
    let mut src = I420Frame::new(w, h).unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    let mut au = Vec::new();
    let mut seg = Segment {
        bytes: 0,
        pictures: 0,
        keyframes: Vec::new(),
        psnr_y: 0.0,
    };
    for i in 0..SEGMENT {
        src.draw_test_pattern(i);
        let info = enc.encode(&src, &mut au).unwrap();
        if info.keyframe {
            seg.keyframes.push(i);
        }
        assert!(dec.decode(&au, &mut out).unwrap(), "picture {i} decoded");
        if i >= SETTLE {
            seg.bytes += au.len();
            seg.pictures += 1;
            seg.psnr_y += out.psnr_y(&src).unwrap();
        }
    }
    seg.psnr_y /= seg.pictures as f64;
    seg
}

#[test]
fn bitrate_switch_on_a_running_encoder_moves_the_byte_rate() {
    let cfg = H264Config {
        bitrate_bps: 300_000,
        frame_rate: FPS,
        ..H264Config::default()
    };
    let mut enc = H264Encoder::new(&cfg).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let low = run(&mut enc, &mut dec);
    enc.set_bitrate(1_500_000).unwrap();
    assert_eq!(enc.config().bitrate_bps, 1_500_000);
    let high = run(&mut enc, &mut dec);
    // And back down: the rate follows both ways.
    enc.set_bitrate(300_000).unwrap();
    let low2 = run(&mut enc, &mut dec);
    let (l, hi, l2) = (
        low.bits_per_second(FPS),
        high.bits_per_second(FPS),
        low2.bits_per_second(FPS),
    );
    eprintln!(
        "300 kbit/s: {:.0} bit/s (PSNR-Y {:.1} dB); 1.5 Mbit/s: {:.0} bit/s (PSNR-Y {:.1} dB); \
         back to 300 kbit/s: {:.0} bit/s; ratio {:.2}",
        l,
        low.psnr_y,
        hi,
        high.psnr_y,
        l2,
        hi / l
    );
    // One keyframe at the start and one per change, none elsewhere.
    assert_eq!(low.keyframes, vec![0]);
    assert_eq!(high.keyframes, vec![0]);
    assert_eq!(low2.keyframes, vec![0]);
    // Targets are 5x apart: demand at least 2.5x, and each within a factor 2 of its target.
    assert!(hi / l >= 2.5, "ratio {:.2}", hi / l);
    assert!(hi / l2 >= 2.5, "ratio back down {:.2}", hi / l2);
    for (got, target) in [(l, 300_000.0), (hi, 1_500_000.0), (l2, 300_000.0)] {
        assert!(
            (target / 2.0..target * 2.0).contains(&got),
            "{got:.0} bit/s for a {target} bit/s target"
        );
    }
    // The extra bits buy picture quality.
    assert!(
        high.psnr_y > low.psnr_y + 1.0,
        "{} vs {}",
        high.psnr_y,
        low.psnr_y
    );
}

#[test]
fn frame_rate_switch_rebudgets_bits_per_picture() {
    let cfg = H264Config {
        bitrate_bps: 800_000,
        frame_rate: 30.0,
        ..H264Config::default()
    };
    let mut enc = H264Encoder::new(&cfg).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let fast = run(&mut enc, &mut dec);
    // Same bitrate over half as many pictures a second: about twice the bytes per picture.
    enc.set_frame_rate(15.0).unwrap();
    assert_eq!(enc.config().frame_rate, 15.0);
    let slow = run(&mut enc, &mut dec);
    let per_fast = fast.bytes as f64 / fast.pictures as f64;
    let per_slow = slow.bytes as f64 / slow.pictures as f64;
    eprintln!("800 kbit/s: {per_fast:.0} B/picture at 30 fps, {per_slow:.0} B/picture at 15 fps");
    assert_eq!(slow.keyframes, vec![0]);
    assert!(
        per_slow / per_fast >= 1.4,
        "ratio {:.2}",
        per_slow / per_fast
    );
}

#[test]
fn setting_the_rate_in_force_costs_no_keyframe() {
    let mut enc = H264Encoder::new(&H264Config::default()).unwrap();
    let mut au = Vec::new();
    let pic = I420Frame::test_pattern(640, 360, 0).unwrap();
    assert!(enc.encode(&pic, &mut au).unwrap().keyframe);
    enc.set_bitrate(800_000).unwrap();
    enc.set_frame_rate(30.0).unwrap();
    assert!(!enc.encode(&pic, &mut au).unwrap().keyframe);
    // Two changes between pictures: one rebuild, one keyframe, the last values in force.
    enc.set_bitrate(500_000).unwrap();
    enc.set_bitrate(600_000).unwrap();
    enc.set_frame_rate(24.0).unwrap();
    assert!(enc.encode(&pic, &mut au).unwrap().keyframe);
    assert!(!enc.encode(&pic, &mut au).unwrap().keyframe);
    assert_eq!(
        (enc.config().bitrate_bps, enc.config().frame_rate),
        (600_000, 24.0)
    );
}

#[test]
fn invalid_rates_are_typed_errors_and_change_nothing() {
    let mut enc = H264Encoder::new(&H264Config::default()).unwrap();
    let before = *enc.config();
    for bps in [0, 9_999, 50_000_001, u32::MAX] {
        assert!(
            matches!(enc.set_bitrate(bps), Err(CodecError::InvalidConfig(_))),
            "{bps}"
        );
    }
    for fps in [0.0, 0.5, 120.5, -30.0, f32::NAN, f32::INFINITY] {
        assert!(
            matches!(enc.set_frame_rate(fps), Err(CodecError::InvalidConfig(_))),
            "{fps}"
        );
    }
    assert_eq!(*enc.config(), before);
    // Nothing was scheduled: the second picture is not a keyframe.
    let mut au = Vec::new();
    let pic = I420Frame::test_pattern(640, 360, 0).unwrap();
    assert!(enc.encode(&pic, &mut au).unwrap().keyframe);
    assert!(!enc.encode(&pic, &mut au).unwrap().keyframe);
}

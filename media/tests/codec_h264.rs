//! Real openh264 round trips: PSNR, keyframes on demand, rate control, bad input.

use supernode_media::codec::CodecError;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};

fn nal_types(au: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            types.push(au[i + 3] & 0x1f);
            i += 3;
        }
        i += 1;
    }
    types
}

#[test]
fn encode_decode_640x360_keeps_psnr_and_rate() {
    let cfg = H264Config::default();
    let mut enc = H264Encoder::new(&cfg).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut au = Vec::new();
    let mut out = I420Frame::new(2, 2).unwrap();
    let mut src = I420Frame::new(640, 360).unwrap();
    let mut bytes = 0;
    let mut psnrs = Vec::new();
    for n in 0..90 {
        src.draw_test_pattern(n);
        let info = enc.encode(&src, &mut au).unwrap();
        assert_eq!(info.keyframe, n == 0, "frame {n}");
        assert_eq!(info.len, au.len());
        bytes += au.len();
        assert!(dec.decode(&au, &mut out).unwrap(), "frame {n} decoded");
        assert_eq!((out.width(), out.height()), (640, 360));
        psnrs.push(out.psnr(&src).unwrap());
    }
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    let min = psnrs.iter().copied().fold(f64::MAX, f64::min);
    eprintln!("640x360 @ 800 kbit/s: mean PSNR {mean:.2} dB, min {min:.2} dB, {bytes} bytes");
    assert!(min >= 32.0, "min PSNR {min}");
    // 3 s at 800 kbit/s is 300 kB; rate control keeps within a factor of 1.5.
    assert!((200_000..450_000).contains(&bytes), "{bytes} bytes in 3 s");
}

#[test]
fn keyframe_on_demand_carries_parameter_sets() {
    let cfg = H264Config {
        width: 320,
        height: 180,
        bitrate_bps: 300_000,
        ..H264Config::default()
    };
    let mut enc = H264Encoder::new(&cfg).unwrap();
    let mut au = Vec::new();
    let mut src = I420Frame::new(320, 180).unwrap();
    for n in 0..12 {
        if n == 7 {
            enc.force_keyframe();
        }
        src.draw_test_pattern(n);
        let info = enc.encode(&src, &mut au).unwrap();
        let types = nal_types(&au);
        if n == 0 || n == 7 {
            assert!(info.keyframe, "frame {n}");
            assert!(
                types.contains(&7) && types.contains(&8) && types.contains(&5),
                "{types:?}"
            );
        } else {
            assert!(!info.keyframe, "frame {n}");
            assert!(types.contains(&1) && !types.contains(&5), "{types:?}");
        }
    }
}

#[test]
fn periodic_keyframes() {
    let cfg = H264Config {
        width: 160,
        height: 90,
        bitrate_bps: 100_000,
        keyframe_interval: 5,
        ..H264Config::default()
    };
    let mut enc = H264Encoder::new(&cfg).unwrap();
    let mut au = Vec::new();
    let mut src = I420Frame::new(160, 90).unwrap();
    let mut keys = Vec::new();
    for n in 0..11 {
        src.draw_test_pattern(n);
        if enc.encode(&src, &mut au).unwrap().keyframe {
            keys.push(n);
        }
    }
    assert_eq!(keys, vec![0, 5, 10]);
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(
        H264Encoder::new(&H264Config {
            width: 641,
            ..H264Config::default()
        })
        .is_err()
    );
    assert!(
        H264Encoder::new(&H264Config {
            bitrate_bps: 1,
            ..H264Config::default()
        })
        .is_err()
    );
    let mut enc = H264Encoder::new(&H264Config {
        width: 160,
        height: 90,
        bitrate_bps: 100_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut au = Vec::new();
    let wrong = I420Frame::new(320, 180).unwrap();
    assert!(matches!(
        enc.encode(&wrong, &mut au),
        Err(CodecError::FrameGeometry(_))
    ));

    let mut dec = H264Decoder::new().unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPayload));
    // A P-frame without its keyframe is refused.
    let mut src = I420Frame::new(160, 90).unwrap();
    enc.encode(&src, &mut au).unwrap();
    src.draw_test_pattern(1);
    enc.encode(&src, &mut au).unwrap();
    assert!(dec.decode(&au, &mut out).is_err() || !dec.decode(&au, &mut out).unwrap());
    // Garbage of every shape never panics.
    for len in 1..200usize {
        let mut junk: Vec<u8> = vec![0, 0, 0, 1];
        junk.extend((0..len).map(|i| (i * 131 + len * 7) as u8));
        let _ = dec.decode(&junk, &mut out);
    }
}

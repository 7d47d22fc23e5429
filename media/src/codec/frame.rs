//! [`I420Frame`]: a raw video picture in planar YUV 4:2:0, with PSNR and a moving test
//! pattern.

use super::CodecError;

/// A picture in I420 (planar YUV 4:2:0, 8 bits): a full-size Y plane and quarter-size U and
/// V planes, tightly packed (stride = width).
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: usize,
    height: usize,
    /// Luma plane, `width * height` bytes.
    pub y: Vec<u8>,
    /// Blue-difference chroma plane, `(width / 2) * (height / 2)` bytes.
    pub u: Vec<u8>,
    /// Red-difference chroma plane, `(width / 2) * (height / 2)` bytes.
    pub v: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

impl I420Frame {
    /// A mid-grey frame. Width and height must be even and non-zero.
    pub fn new(width: usize, height: usize) -> Result<Self, CodecError> {
        check_size(width, height)?;
        let c = (width / 2) * (height / 2);
        Ok(Self {
            width,
            height,
            y: vec![128; width * height],
            u: vec![128; c],
            v: vec![128; c],
        })
    }

    /// A frame from its three planes (tightly packed).
    pub fn from_planes(
        width: usize,
        height: usize,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<Self, CodecError> {
        check_size(width, height)?;
        let c = (width / 2) * (height / 2);
        if y.len() != width * height || u.len() != c || v.len() != c {
            return Err(CodecError::FrameGeometry(
                "plane sizes do not match the frame size",
            ));
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Resizes the planes (keeping their allocation when it is large enough); contents are
    /// unspecified afterwards.
    pub fn resize(&mut self, width: usize, height: usize) -> Result<(), CodecError> {
        check_size(width, height)?;
        let c = (width / 2) * (height / 2);
        self.width = width;
        self.height = height;
        self.y.resize(width * height, 0);
        self.u.resize(c, 0);
        self.v.resize(c, 0);
        Ok(())
    }

    /// Length of the frame as one I420 buffer (Y, then U, then V).
    pub fn byte_len(&self) -> usize {
        self.y.len() + self.u.len() + self.v.len()
    }

    /// Peak signal-to-noise ratio in dB over all three planes against `reference`
    /// (`f64::INFINITY` when identical). Frames of different sizes give an error.
    pub fn psnr(&self, reference: &I420Frame) -> Result<f64, CodecError> {
        self.same_size(reference)?;
        let sse =
            sse(&self.y, &reference.y) + sse(&self.u, &reference.u) + sse(&self.v, &reference.v);
        Ok(psnr_from(sse, self.byte_len()))
    }

    /// PSNR in dB of the luma plane alone.
    pub fn psnr_y(&self, reference: &I420Frame) -> Result<f64, CodecError> {
        self.same_size(reference)?;
        Ok(psnr_from(sse(&self.y, &reference.y), self.y.len()))
    }

    fn same_size(&self, other: &I420Frame) -> Result<(), CodecError> {
        if self.width != other.width || self.height != other.height {
            return Err(CodecError::FrameGeometry("frames differ in size"));
        }
        Ok(())
    }

    /// Draws frame number `n` of a moving test pattern into this frame: a diagonal colour
    /// gradient scrolling right, textured with fine noise-like detail, and a bright box
    /// bouncing across it. Deterministic for `n`; every frame differs from the last.
    pub fn draw_test_pattern(&mut self, n: u64) {
        self.draw_test_pattern_variant(n, 0);
    }

    /// Frame `n` of variant `variant` of the test pattern: variant 0 is
    /// [`Self::draw_test_pattern`]; the others differ in the gradient's slope and phase, the
    /// colours and the box's path, so that the senders of a conference each send a picture
    /// of their own (tens of dB apart in PSNR) that a receiver can still regenerate.
    pub fn draw_test_pattern_variant(&mut self, n: u64, variant: u8) {
        let (w, h) = (self.width, self.height);
        let v = usize::from(variant);
        let shift = (n as usize * 4) % w.max(1);
        for row in 0..h {
            for col in 0..w {
                let x = col + shift;
                // gradient + a deterministic texture (hash of position) for detail
                let tex = ((x.wrapping_mul(2654435761) ^ row.wrapping_mul(40503)) >> 7) & 15;
                self.y[row * w + col] =
                    ((x + row * (1 + 2 * v) + v * 61) / 3 % 200 + 16 + tex) as u8;
            }
        }
        let (cw, ch) = (w / 2, h / 2);
        for row in 0..ch {
            for col in 0..cw {
                let x = col + shift / 2;
                self.u[row * cw + col] = (64 + (x * 128 / cw.max(1) + v * 40) % 128) as u8;
                self.v[row * cw + col] =
                    (64 + (row * 128 / ch.max(1) + n as usize + v * 77) % 128) as u8;
            }
        }
        // bouncing box, 1/6 of the width
        let bw = (w / 6).max(2);
        let bh = (h / 6).max(2);
        let span_x = (w - bw).max(1);
        let span_y = (h - bh).max(1);
        let t = n as usize * 7 + v * 97;
        let bx = bounce(t, span_x);
        let by = bounce(t / 2 + 3, span_y);
        for row in by..by + bh {
            for col in bx..bx + bw {
                self.y[row * w + col] = 235;
            }
        }
    }

    /// A new frame holding frame `n` of the test pattern (see [`Self::draw_test_pattern`]).
    pub fn test_pattern(width: usize, height: usize, n: u64) -> Result<Self, CodecError> {
        let mut f = Self::new(width, height)?;
        f.draw_test_pattern(n);
        Ok(f)
    }
}

fn bounce(t: usize, span: usize) -> usize {
    let p = t % (2 * span);
    if p < span { p } else { 2 * span - p }
}

fn check_size(width: usize, height: usize) -> Result<(), CodecError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(CodecError::FrameGeometry(
            "width and height must be even and non-zero",
        ));
    }
    if width > 3840 || height > 2160 {
        return Err(CodecError::FrameGeometry("larger than 3840x2160"));
    }
    Ok(())
}

fn sse(a: &[u8], b: &[u8]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum()
}

fn psnr_from(sse: u64, n: usize) -> f64 {
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / n as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_variants_are_far_apart_and_variant_zero_is_the_pattern() {
        let a = I420Frame::test_pattern(320, 180, 42).unwrap();
        let mut z = I420Frame::new(320, 180).unwrap();
        z.draw_test_pattern_variant(42, 0);
        assert_eq!(a.psnr(&z).unwrap(), f64::INFINITY);
        let frames: Vec<I420Frame> = (0..6u8)
            .map(|v| {
                let mut f = I420Frame::new(320, 180).unwrap();
                f.draw_test_pattern_variant(42, v);
                f
            })
            .collect();
        for i in 0..6 {
            for j in 0..6 {
                if i != j {
                    let p = frames[i].psnr(&frames[j]).unwrap();
                    assert!(p < 20.0, "variants {i} and {j}: {p:.1} dB");
                }
            }
        }
    }

    #[test]
    fn psnr_of_known_error() {
        let a = I420Frame::new(4, 2).unwrap();
        let mut b = a.clone();
        assert_eq!(a.psnr(&b).unwrap(), f64::INFINITY);
        for p in b.y.iter_mut() {
            *p += 1; // MSE over 8 + 2 + 2 samples = 8/12
        }
        let expect = 10.0 * (255.0f64 * 255.0 / (8.0 / 12.0)).log10();
        assert!((a.psnr(&b).unwrap() - expect).abs() < 1e-9);
        assert!((a.psnr_y(&b).unwrap() - 48.130_803_608).abs() < 1e-6);
        assert!(a.psnr(&I420Frame::new(2, 2).unwrap()).is_err());
    }

    #[test]
    fn geometry_is_checked() {
        assert!(I420Frame::new(3, 2).is_err());
        assert!(I420Frame::new(0, 2).is_err());
        assert!(I420Frame::from_planes(2, 2, vec![0; 4], vec![0; 1], vec![]).is_err());
    }

    #[test]
    fn pattern_moves() {
        let a = I420Frame::test_pattern(64, 36, 0).unwrap();
        let b = I420Frame::test_pattern(64, 36, 1).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, I420Frame::test_pattern(64, 36, 0).unwrap());
        assert!(a.psnr(&b).unwrap() < 30.0);
    }
}

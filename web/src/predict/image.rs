//! A PNG body of a prediction call: one image, turned into the model's
//! input of `height × width` grayscale values in `[0, 1]`.
//!
//! Luminance is ITU-R BT.601 luma of the 8-bit samples,
//! `0.299 R + 0.587 G + 0.114 B` (what Pillow's `convert("L")` computes, so
//! an image prepared in Python reads the same here), with transparency composited onto black
//! (MNIST's background). An image of another size is resampled by area
//! averaging: each output value is the mean of the source area it covers,
//! with partly covered pixels weighted by their share.
//!
//! Untrusted bytes: the declared size is checked against [`MAX_SIDE`] and
//! [`MAX_PIXELS`] before any pixel buffer exists, and the decoder's own
//! allocations are capped by [`DECODER_LIMIT_BYTES`].

use std::io::Cursor;

use png::{ColorType, Decoder, Limits, Transformations};

/// Widest and tallest image accepted, in pixels.
pub(crate) const MAX_SIDE: u32 = 4096;
/// Most pixels accepted: a 2048 × 2048 image (16 MiB decoded at worst, as RGBA).
pub(crate) const MAX_PIXELS: u64 = 1 << 22;
/// Most bytes the PNG decoder may allocate for itself (row buffers,
/// decompression state), beside the decoded image.
const DECODER_LIMIT_BYTES: usize = 4 << 20;

/// Why a PNG body cannot be used; the message is for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ImageError {
    /// Not a PNG the decoder can read (truncated, corrupt, unsupported).
    #[error("not a readable PNG: {0}")]
    Unreadable(String),
    /// Larger than this server decodes.
    #[error(
        "the PNG is {width}×{height} pixels: at most {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all are accepted"
    )]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
}

/// Decodes `bytes` and returns `height × width` values, row-major.
pub(crate) fn grayscale(bytes: &[u8], height: usize, width: usize) -> Result<Vec<f32>, ImageError> {
    let unreadable = |error: png::DecodingError| ImageError::Unreadable(error.to_string());
    let mut decoder = Decoder::new_with_limits(Cursor::new(bytes), Limits { bytes: DECODER_LIMIT_BYTES });
    decoder.set_transformations(Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(unreadable)?;
    let (source_width, source_height) = (header.width, header.height);
    if source_width > MAX_SIDE
        || source_height > MAX_SIDE
        || u64::from(source_width) * u64::from(source_height) > MAX_PIXELS
    {
        return Err(ImageError::TooLarge { width: source_width, height: source_height });
    }
    let mut reader = decoder.read_info().map_err(unreadable)?;
    let size =
        reader.output_buffer_size().ok_or_else(|| ImageError::Unreadable("the image does not fit in memory".into()))?;
    let mut buffer = vec![0u8; size];
    let frame = reader.next_frame(&mut buffer).map_err(unreadable)?;
    let channels = match frame.color_type {
        ColorType::Grayscale => Channels::Gray,
        ColorType::GrayscaleAlpha => Channels::GrayAlpha,
        ColorType::Rgb => Channels::Rgb,
        ColorType::Rgba => Channels::Rgba,
        // `normalize_to_color8` expands palettes; anything else is a decoder surprise.
        ColorType::Indexed => return Err(ImageError::Unreadable("an indexed image was not expanded".into())),
    };
    let (w, h) = (frame.width as usize, frame.height as usize);
    let pixels: Vec<f32> = buffer[..frame.buffer_size()]
        .chunks_exact(frame.line_size)
        .take(h)
        .flat_map(|line| line.chunks_exact(channels.len()).take(w).map(|pixel| channels.luminance(pixel)))
        .collect();
    if pixels.len() != w * h {
        return Err(ImageError::Unreadable("the image data is shorter than its header says".into()));
    }
    Ok(resample(&pixels, (h, w), (height, width)))
}

/// The channel layout of the decoded 8-bit samples.
#[derive(Debug, Clone, Copy)]
enum Channels {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Channels {
    /// Bytes per pixel.
    fn len(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::GrayAlpha => 2,
            Self::Rgb => 3,
            Self::Rgba => 4,
        }
    }

    /// The pixel's luma in `[0, 1]`, composited onto black.
    fn luminance(self, pixel: &[u8]) -> f32 {
        let value = |i: usize| f32::from(pixel[i]) / 255.0;
        let luma = |r: f32, g: f32, b: f32| 0.299 * r + 0.587 * g + 0.114 * b;
        let result = match self {
            Self::Gray => value(0),
            Self::GrayAlpha => value(0) * value(1),
            Self::Rgb => luma(value(0), value(1), value(2)),
            Self::Rgba => luma(value(0), value(1), value(2)) * value(3),
        };
        result.clamp(0.0, 1.0)
    }
}

/// Area-averaging resampling of a row-major `from = (height, width)` image
/// to `to`. Works for shrinking and enlarging; an image already of size
/// `to` comes back unchanged.
pub(crate) fn resample(pixels: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    if from == to {
        return pixels.to_vec();
    }
    let (rows, columns) = (overlaps(from.0, to.0), overlaps(from.1, to.1));
    let mut sums = vec![0.0f64; to.0 * to.1];
    for (y, row_weights) in rows.iter().enumerate() {
        for (x, column_weights) in columns.iter().enumerate() {
            let value = f64::from(pixels[y * from.1 + x]);
            for &(ty, wy) in row_weights {
                for &(tx, wx) in column_weights {
                    sums[ty * to.1 + tx] += value * (wy * wx) as f64;
                }
            }
        }
    }
    // Each output cell covers `from.0` × `from.1` units of the scaled grid.
    let area = (from.0 * from.1) as f64;
    sums.into_iter().map(|sum| (sum / area) as f32).collect()
}

/// For each of `source` cells along one axis, the target cells it overlaps
/// and by how much, on a grid scaled by `target × source` so that overlaps
/// are whole numbers: source cell `i` spans `[i·target, (i+1)·target)`,
/// target cell `j` spans `[j·source, (j+1)·source)`.
fn overlaps(source: usize, target: usize) -> Vec<Vec<(usize, usize)>> {
    (0..source)
        .map(|i| {
            let (start, end) = (i * target, (i + 1) * target);
            (start / source..end.div_ceil(source))
                .map(|j| (j, end.min((j + 1) * source) - start.max(j * source)))
                .filter(|&(_, weight)| weight > 0)
                .collect()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes `pixels` (`channels` bytes each, row-major) as a PNG.
    pub(crate) fn encode(width: u32, height: u32, color: ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn same_size_grayscale_is_read_as_is() {
        let pixels: Vec<u8> = (0..28 * 28).map(|i| (i % 256) as u8).collect();
        let values = grayscale(&encode(28, 28, ColorType::Grayscale, &pixels), 28, 28).unwrap();
        assert_eq!(values.len(), 784);
        for (value, pixel) in values.iter().zip(&pixels) {
            assert_eq!(*value, f32::from(*pixel) / 255.0);
        }
    }

    #[test]
    fn colour_is_luma_and_alpha_goes_onto_black() {
        // Red, green, blue, white at half alpha.
        let rgba = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 128];
        let values = grayscale(&encode(4, 1, ColorType::Rgba, &rgba), 1, 4).unwrap();
        let expected = [0.299, 0.587, 0.114, 128.0 / 255.0];
        for (value, expected) in values.iter().zip(expected) {
            assert!((value - expected).abs() < 1e-6, "{values:?}");
        }
        let values = grayscale(&encode(2, 1, ColorType::GrayscaleAlpha, &[255, 0, 51, 255]), 1, 2).unwrap();
        assert_eq!(values, [0.0, 0.2]);
    }

    #[test]
    fn larger_images_are_area_averaged() {
        // 56×56: the left half white, the right half black; a 2×2 block maps to one value.
        let pixels: Vec<u8> = (0..56 * 56).map(|i| if i % 56 < 28 { 255 } else { 0 }).collect();
        let values = grayscale(&encode(56, 56, ColorType::Grayscale, &pixels), 28, 28).unwrap();
        for (i, value) in values.iter().enumerate() {
            assert_eq!(*value, if i % 28 < 14 { 1.0 } else { 0.0 }, "{i}");
        }
    }

    #[test]
    fn resampling_weights_partial_pixels_by_their_share() {
        // Three pixels onto two: the middle one is split in half.
        let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        let shrunk = resample(&[0.0, 0.6, 0.3], (1, 3), (1, 2));
        assert!(close(&shrunk, &[0.2, 0.4]), "{shrunk:?}");
        // Two onto three (enlarging): the middle cell straddles both.
        let grown = resample(&[0.0, 0.9], (1, 2), (1, 3));
        assert!(close(&grown, &[0.0, 0.45, 0.9]), "{grown:?}");
        // Rows and columns at once: 2×2 onto 1×1 is the mean.
        assert!(close(&resample(&[0.0, 0.25, 0.5, 1.0], (2, 2), (1, 1)), &[0.4375]));
        // The mean is kept, whatever the sizes.
        let pixels: Vec<f32> = (0..37 * 53).map(|i| ((i * 7919) % 101) as f32 / 100.0).collect();
        let mean = |values: &[f32]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        let small = resample(&pixels, (37, 53), (28, 28));
        assert!((mean(&small) - mean(&pixels)).abs() < 1e-5);
        assert!(small.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn oversized_declarations_are_refused_before_decoding() {
        // A valid header claiming 100 000 × 100 000 pixels, with no image data behind it.
        let mut header = encode(1, 1, ColorType::Grayscale, &[0]);
        header[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        header[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&header[12..29]);
        header[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(grayscale(&header, 28, 28), Err(ImageError::TooLarge { width: 100_000, height: 100_000 }));
        // Within each side but too many pixels in all.
        let wide = encode(4096, 1025, ColorType::Grayscale, &vec![0; 4096 * 1025]);
        assert_eq!(grayscale(&wide, 28, 28), Err(ImageError::TooLarge { width: 4096, height: 1025 }));
    }

    #[test]
    fn corrupt_bytes_are_unreadable() {
        let good = encode(28, 28, ColorType::Grayscale, &[7; 784]);
        for bad in [&b"not a png"[..], &good[..good.len() / 2], &[]] {
            assert!(matches!(grayscale(bad, 28, 28), Err(ImageError::Unreadable(_))), "{bad:?}");
        }
        let mut flipped = good.clone();
        let last = flipped.len() - 20;
        flipped[last] ^= 0xff;
        assert!(matches!(grayscale(&flipped, 28, 28), Err(ImageError::Unreadable(_))));
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks use it.
    pub(crate) fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}

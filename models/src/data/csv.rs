//! Trainers' own data as CSV: one sample per line, the label first, then the
//! pixel values (integers 0–255) row by row.
//!
//! ```text
//! label,p0,p1,...,p783
//! 5,0,0,...,0
//! ```
//!
//! A first line whose first field is not a number is taken as a header.
//! Blank lines are skipped. Anything else that does not fit is an error
//! naming the line: a ragged row, a label that is not an integer below the
//! number of classes, a pixel that is not an integer in 0–255.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::dataset::Dataset;
use super::error::DataError;

/// Reads a CSV dataset of images of `shape` pixels with labels below `classes`.
pub fn read_csv(path: &Path, shape: [usize; 2], classes: usize) -> Result<Dataset, DataError> {
    let io = |source| DataError::Io { path: path.to_owned(), source };
    let features = shape[0] * shape[1];
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let reader = BufReader::new(File::open(path).map_err(io)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let number = i + 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let err = |reason: String| DataError::Csv { path: path.to_owned(), line: number, reason };
        let mut fields = text.split(',').map(str::trim);
        let first = fields.next().unwrap_or_default();
        let label: i64 = match first.parse() {
            Ok(l) => l,
            Err(_) if number == 1 && first.parse::<f64>().is_err() => continue, // a header
            Err(_) => return Err(err(format!("label {first:?} is not an integer"))),
        };
        if label < 0 || label as u64 >= classes as u64 {
            return Err(err(format!("label {label} is not in 0..{classes}")));
        }
        let start = images.len();
        for (k, field) in fields.enumerate() {
            if k == features {
                images.truncate(start);
                let found = text.split(',').count() - 1;
                return Err(err(format!("{found} values, expected {features}")));
            }
            let v: u8 =
                field.parse().map_err(|_| err(format!("value {} ({field:?}) is not an integer in 0–255", k + 1)))?;
            images.push(v);
        }
        let got = images.len() - start;
        if got != features {
            return Err(err(format!("{got} values, expected {features}")));
        }
        labels.push(label as u8);
    }
    Dataset::new(images, labels, shape, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn reads_labels_and_pixels_with_or_without_a_header() {
        let (_d, p) = csv("label,a,b,c,d\n3,0,1,2,255\n\n0, 9 ,8,7,6\n");
        let ds = read_csv(&p, [2, 2], 10).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!((ds.label(0), ds.image(0)), (3, &[0, 1, 2, 255][..]));
        assert_eq!(ds.image(1), &[9, 8, 7, 6]);
        let (_d, p) = csv("1,1,1,1,1\n");
        assert_eq!(read_csv(&p, [2, 2], 10).unwrap().len(), 1);
    }

    #[test]
    fn every_kind_of_bad_row_names_its_line() {
        let cases = [
            ("1,1,1,1,1\n2,1,1,1\n", "d.csv:2: 3 values, expected 4"),
            ("1,1,1,1,1\n2,1,1,1,1,1\n", "d.csv:2: 5 values, expected 4"),
            ("x,1,1,1,1\n1,1,1,1,1\n1.5,1,1,1,1\n", "d.csv:3: label \"1.5\" is not an integer"),
            ("10,1,1,1,1\n", "d.csv:1: label 10 is not in 0..10"),
            ("-1,1,1,1,1\n", "d.csv:1: label -1 is not in 0..10"),
            ("1,1,256,1,1\n", "d.csv:1: value 2 (\"256\") is not an integer in 0–255"),
            ("1,1,,1,1\n", "d.csv:1: value 2 (\"\") is not an integer"),
        ];
        for (text, want) in cases {
            let (_d, p) = csv(text);
            let err = read_csv(&p, [2, 2], 10).unwrap_err().to_string();
            assert!(err.ends_with(want) || err.contains(want), "{text:?}: {err}");
        }
    }
}
